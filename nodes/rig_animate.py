"""LikenessRigAnimate: keyframe interpolation between two rigs, a batch of rigs for face animation."""
from comfy_api.latest import io

from .wires import FaceRig

EASINGS = ("linear", "ease_in_out")


class RigAnimate(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessRigAnimate",
            display_name="Rig Animate (keyframes)",
            category="Likeness/Rig",
            description="Turns two rigs (start and end keyframes) into a batch of in-between rigs: rotations are "
                        "slerped, everything else blended. Render or preview-edit the batch to animate a face; "
                        "every frame pastes back into the start rig's photo.",
            inputs=[
                FaceRig.Input("start", tooltip="First keyframe (one face)."),
                FaceRig.Input("end", tooltip="Last keyframe (one face, same geometry)."),
                io.Int.Input("frames", default=8, min=1, max=512, tooltip="Number of frames, endpoints included."),
                io.Combo.Input("easing", options=list(EASINGS), default="ease_in_out",
                               tooltip="Timing of the motion between the keyframes."),
            ],
            outputs=[FaceRig.Output(display_name="face_rig", tooltip="A batch of `frames` rigs.")],
        )

    @classmethod
    def execute(cls, start, end, frames: int, easing: str) -> io.NodeOutput:
        from ..models.rig.animate import interpolate_rigs

        return io.NodeOutput(interpolate_rigs(start, end, frames, easing))
