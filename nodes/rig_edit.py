"""LikenessRigEdit: pose, jaw and FACS action-unit controls on a FACE_RIG."""
from comfy_api.latest import io

from ..models.rig.action_units import ACTION_UNITS
from .wires import FaceRig


def _angle(name: str, limit: float, what: str) -> io.Float.Input:
    return io.Float.Input(name, default=0.0, min=-limit, max=limit, step=0.5,
                          tooltip=f"{what}, in degrees, added to the fitted pose. 0 keeps the face as fitted.")


class RigEdit(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        units = [io.Float.Input(u.key, default=0.0, min=-1.5, max=1.5, step=0.05, display_name=u.label,
                                tooltip=f"{u.label}: added to the fitted expression. 1.0 is a strong, natural "
                                        "movement; negative values undo what the photo shows. 0 = as fitted.")
                 for u in ACTION_UNITS]
        return io.Schema(
            node_id="LikenessRigEdit",
            display_name="Rig Edit (pose, jaw, expression)",
            category="Likeness/Rig",
            description="Edits a fitted face rig: head yaw, pitch and roll, jaw opening, and expression controls "
                        "named after FACS action units (brow raisers, lid controls, cheek raiser, nose wrinkler, "
                        "lip corner puller, lip stretcher, lips part, blink, ...). Every control at 0 leaves the "
                        "face exactly as fitted. Works the same on every face of the batch.",
            inputs=[
                FaceRig.Input("face_rig", tooltip="The rig to edit (from FaceFit, Load Face Rig, ...)."),
                _angle("yaw", 60.0, "Turn the face (positive: toward the image's right)"),
                _angle("pitch", 45.0, "Nod (positive: the head tilts down)"),
                _angle("roll", 45.0, "Tilt toward a shoulder (positive: counter-clockwise in the image)"),
                io.Float.Input("jaw_open", default=0.0, min=-10.0, max=35.0, step=0.5,
                               tooltip="Jaw opening in degrees added to the fit; 0 = as fitted."),
                *units,
            ],
            outputs=[FaceRig.Output(display_name="face_rig", tooltip="The edited rig (the input is unchanged).")],
        )

    @classmethod
    def execute(cls, face_rig, yaw: float, pitch: float, roll: float, jaw_open: float, **units) -> io.NodeOutput:
        from ..models.rig.edit import edit_action_units, edit_jaw, edit_pose

        rig = edit_pose(face_rig, yaw=yaw, pitch=pitch, roll=roll)
        rig = edit_jaw(rig, open=jaw_open)
        rig = edit_action_units(rig, {k: v for k, v in units.items() if v != 0.0})
        return io.NodeOutput(rig)
