"""LikenessExpressionGuidance: what fills Face2Diffusion's 64-d expression slot."""
from __future__ import annotations

from comfy_api.latest import io

from ..models.identity import DEEP3D_FILE
from ..models.identity.rig_expression import RIG_MAP_FILE
from .identity_expression_sources import deep3d_expression, rig_expression
from .identity_files import f2d_files
from .identity_wires import FaceExpression, FaceExpressionWire
from .wires import FaceDetections, FaceRig

NULL, RIG, DEEP3D = "learned null vector (official)", "face rig (trained map)", "Deep3DFaceRecon (photo)"
SOURCES = (NULL, RIG, DEEP3D)


class ExpressionGuidance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        rig_options, rig_default = f2d_files(RIG_MAP_FILE)
        deep3d_options, deep3d_default = f2d_files(DEEP3D_FILE)
        return io.Schema(
            node_id="LikenessExpressionGuidance",
            display_name="Expression Guidance (Face2Diffusion)",
            category="Likeness/Identity",
            description="Sets the expression input of Face2Diffusion's mapping network, for Face2Diffusion "
                        "Condition. Sources: (1) the network's learned null vector, which the official inference "
                        "uses and which leaves the expression to the prompt; (2) a FACE_RIG's expression through "
                        "a linear map to the 64-d code, f2d_rig_expression.safetensors, made by "
                        "scripts/train_face2diffusion.py; (3) the expression of the face in a photo measured by "
                        "Deep3DFaceRecon (its 64 BFM expression coefficients), from deep3d_recon.safetensors "
                        "made by scripts/convert_deep3d.py from the released epoch_20.pth. The official mapping "
                        "weights were trained with expression features of an off-the-shelf 3D face "
                        "reconstruction model, most likely Deep3DFaceRecon's BFM expression coefficients (the "
                        "slot is 64-d like them; not confirmed by the authors), so (3) is the closest to "
                        "training. Files go in models/likeness/face2diffusion.",
            inputs=[
                io.Combo.Input("source", options=list(SOURCES), default=NULL,
                               tooltip="Where the 64-d expression code comes from: the official null vector, the "
                                       "face_rig input through the trained map, or the faces in the images input "
                                       "through Deep3DFaceRecon."),
                io.Float.Input("strength", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="Null vector: multiplies it (1 = official, 0 = zeros). Rig or photo: blends "
                                       "from the null vector (0) to the measured expression (1); above 1 "
                                       "exaggerates."),
                io.Combo.Input("rig_map_file", options=rig_options, default=rig_default,
                               tooltip="The trained rig-to-expression map in models/likeness/face2diffusion "
                                       "(source 'face rig')."),
                io.Combo.Input("deep3d_file", options=deep3d_options, default=deep3d_default,
                               tooltip="The converted Deep3DFaceRecon regressor in models/likeness/face2diffusion "
                                       "(source 'Deep3DFaceRecon')."),
                FaceRig.Input("face_rig", optional=True,
                              tooltip="Fitted faces whose expressions to use (source 'face rig'); one code per "
                                      "face. The map must be trained on the same rig backend."),
                io.Image.Input("images", optional=True,
                               tooltip="Photos whose expressions to use (source 'Deep3DFaceRecon'): the largest "
                                       "face of each image, e.g. the identity photo itself or another person's "
                                       "expression reference."),
                FaceDetections.Input("face_detections", optional=True,
                                     tooltip="Faces found by Face Detect on the same images; without it the "
                                             "pack's detector runs here."),
            ],
            outputs=[FaceExpressionWire.Output(display_name="face_expression",
                                               tooltip="For the face_expression input of Face2Diffusion "
                                                       "Condition: the null vector, or one code per face.")],
        )

    @classmethod
    def execute(cls, source: str, strength: float, rig_map_file: str, deep3d_file: str, face_rig=None,
                images=None, face_detections=None) -> io.NodeOutput:
        if source == RIG:
            if face_rig is None:
                raise ValueError("Expression Guidance: source 'face rig' needs a FACE_RIG on the face_rig input "
                                 "(from Face Fit)")
            return io.NodeOutput(rig_expression(face_rig, rig_map_file, strength))
        if source == DEEP3D:
            if images is None:
                raise ValueError("Expression Guidance: source 'Deep3DFaceRecon' needs photos on the images input")
            return io.NodeOutput(deep3d_expression(images, face_detections, deep3d_file, strength))
        return io.NodeOutput(FaceExpression(None, strength))
