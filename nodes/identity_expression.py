"""LikenessExpressionGuidance: what fills Face2Diffusion's 64-d expression slot."""
from __future__ import annotations

from comfy_api.latest import io

from .identity_wires import FaceExpression, FaceExpressionWire

SOURCES = ("learned null vector (official)",)


class ExpressionGuidance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessExpressionGuidance",
            display_name="Expression Guidance (Face2Diffusion)",
            category="Likeness/Identity",
            description="Sets the expression input of Face2Diffusion's mapping network. The official inference "
                        "feeds the network's learned null expression vector, which leaves the expression to the "
                        "prompt; the strength scales that vector (1 = official, 0 = a zero vector, as the vector "
                        "was initialised before training). Only the null vector is offered: driving the slot "
                        "from a FACE_RIG needs a map from rig expressions to Face2Diffusion's 64-d code, and no "
                        "trained map exists yet.",
            inputs=[
                io.Combo.Input("source", options=list(SOURCES), default=SOURCES[0],
                               tooltip="Where the 64-d expression code comes from. Only the learned null vector "
                                       "is available until a rig-to-code map is trained."),
                io.Float.Input("strength", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="Multiplies the null vector: 1 reproduces the official results, lower "
                                       "values weaken its pull, 0 feeds zeros."),
            ],
            outputs=[FaceExpressionWire.Output(display_name="face_expression",
                                               tooltip="For the face_expression input of Face2Diffusion "
                                                       "Condition.")],
        )

    @classmethod
    def execute(cls, source: str, strength: float) -> io.NodeOutput:
        return io.NodeOutput(FaceExpression(null_scale=float(strength)))
