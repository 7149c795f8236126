"""LikenessRigTransfer: DiffusionRig's edit modes, taking pose / expression / lighting from another rig."""
from comfy_api.latest import io

from .wires import FaceRig

WHAT = ("pose", "expression", "lighting", "all")


class RigTransfer(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessRigTransfer",
            display_name="Rig Transfer",
            category="Likeness/Rig",
            description="Copies the head pose, the expression (with jaw and eyes), the lighting, or all three from a "
                        "second rig onto the first, keeping the first face's identity and skin: DiffusionRig's "
                        "edit modes. Fit the second rig on another photo, e.g. to transfer an expression.",
            inputs=[
                FaceRig.Input("face_rig", tooltip="The face to change (keeps its identity)."),
                FaceRig.Input("source_rig", tooltip="Where pose / expression / lighting come from: one face "
                                                    "(used for all) or as many faces as face_rig."),
                io.Combo.Input("what", options=list(WHAT), default="expression", tooltip="What to take over."),
            ],
            outputs=[FaceRig.Output(display_name="face_rig", tooltip="The first rig with the transferred parts.")],
        )

    @classmethod
    def execute(cls, face_rig, source_rig, what: str) -> io.NodeOutput:
        from ..models.rig.edit import transfer

        return io.NodeOutput(transfer(face_rig, source_rig, what))
