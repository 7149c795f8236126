"""LikenessRigLighting: relight a FACE_RIG (rotate, recolour, rescale, or a new directional light)."""
from comfy_api.latest import io

from .wires import FaceRig

MODES = ("adjust fitted light", "directional light")


class RigLighting(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessRigLighting",
            display_name="Rig Lighting",
            category="Likeness/Rig",
            description="Changes the rig's spherical-harmonics lighting: rotate the light fitted from the photo, "
                        "scale its intensity and tint its colour, or replace it by a directional light (keeping "
                        "the fitted overall level). Default values leave the light exactly as fitted.",
            inputs=[
                FaceRig.Input("face_rig", tooltip="The rig whose light to change."),
                io.Combo.Input("mode", options=list(MODES), default=MODES[0],
                               tooltip="Adjust the fitted light, or light the face from a direction."),
                io.Float.Input("rotate_yaw", default=0.0, min=-180.0, max=180.0, step=1.0,
                               tooltip="Swing the light around the head (degrees, about the vertical axis; positive moves it toward the image's right)."),
                io.Float.Input("rotate_pitch", default=0.0, min=-90.0, max=90.0, step=1.0,
                               tooltip="Tilt the light (degrees; positive lowers it, negative raises it)."),
                io.Float.Input("intensity", default=1.0, min=0.0, max=4.0, step=0.05,
                               tooltip="Multiplies the light's strength."),
                io.Float.Input("red", default=1.0, min=0.0, max=2.0, step=0.01, tooltip="Light colour: red gain."),
                io.Float.Input("green", default=1.0, min=0.0, max=2.0, step=0.01, tooltip="Light colour: green gain."),
                io.Float.Input("blue", default=1.0, min=0.0, max=2.0, step=0.01, tooltip="Light colour: blue gain."),
                io.Float.Input("direction_x", default=0.5, min=-1.0, max=1.0, step=0.05,
                               tooltip="Directional mode: light direction, x to the image's right."),
                io.Float.Input("direction_y", default=0.5, min=-1.0, max=1.0, step=0.05,
                               tooltip="Directional mode: light direction, y up."),
                io.Float.Input("direction_z", default=1.0, min=-1.0, max=1.0, step=0.05,
                               tooltip="Directional mode: light direction, z toward the camera."),
                io.Float.Input("ambient", default=1.0, min=0.0, max=3.0, step=0.05,
                               tooltip="Directional mode: the fill light that comes from everywhere, relative to the "
                                       "photo's (1 = as fitted, 0 = hard shadows)."),
            ],
            outputs=[FaceRig.Output(display_name="face_rig", tooltip="The relit rig.")],
        )

    @classmethod
    def execute(cls, face_rig, mode: str, rotate_yaw: float, rotate_pitch: float, intensity: float, red: float,
                green: float, blue: float, direction_x: float, direction_y: float, direction_z: float,
                ambient: float) -> io.NodeOutput:
        from ..models.rig.edit import edit_lighting

        directional = mode == MODES[1]
        rig = edit_lighting(
            face_rig,
            direction=(direction_x, direction_y, direction_z) if directional else None,
            ambient=ambient if directional else None,
            rotate_yaw=rotate_yaw, rotate_pitch=rotate_pitch, scale=intensity,
            colour=None if (red, green, blue) == (1.0, 1.0, 1.0) else (red, green, blue),
        )
        return io.NodeOutput(rig)
