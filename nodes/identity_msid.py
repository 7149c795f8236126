"""LikenessMSIDEncoder: Face2Diffusion's multi-scale identity features of the face in each photo."""
from __future__ import annotations

from comfy_api.latest import io

from ..models.identity import MSID_FILE
from .common_inputs import max_detect_side_input, min_score_input
from .identity_files import f2d_files, largest_faces, msid_encoder
from .identity_wires import FaceId, FaceIdentity
from .wires import FaceDetections


class MSIDEncoder(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        options, default = f2d_files(MSID_FILE)
        return io.Schema(
            node_id="LikenessMSIDEncoder",
            display_name="MSID Encoder (Face2Diffusion)",
            category="Likeness/Identity",
            description="Encodes who is in each photo with Face2Diffusion's multi-scale identity (MSID) encoder: "
                        "the largest face of every image is aligned to the ArcFace template and turned into a "
                        "1536-d feature. Several photos of one person can be averaged into one identity. Feed "
                        "the FACE_ID to Face2Diffusion Condition. Needs f2d_msid.safetensors (converted from the "
                        "official msid.pt) in models/likeness/face2diffusion.",
            inputs=[
                io.Image.Input("images", tooltip="Photos with a face; the largest face of each image is used."),
                io.Combo.Input("msid_file", options=options, default=default,
                               tooltip="The converted MSID encoder in models/likeness/face2diffusion."),
                io.Boolean.Input("average", default=False,
                                 tooltip="On: all photos show the same person and their features are averaged "
                                         "into one identity (steadier than a single photo). Off: one identity "
                                         "per image."),
                FaceDetections.Input("face_detections", optional=True,
                                     tooltip="Faces found by Face Detect on the same images; without it the "
                                             "pack's detector runs here."),
                min_score_input(),
                max_detect_side_input(),
            ],
            outputs=[FaceId.Output(display_name="face_id",
                                   tooltip="MSID features: one row per image, or one averaged row.")],
        )

    @classmethod
    def execute(cls, images, msid_file: str, average: bool, min_score: float, max_detect_side: int,
                face_detections=None) -> io.NodeOutput:
        faces = largest_faces(images, face_detections, min_score, max_detect_side)
        missing = [i for i, f in enumerate(faces) if f is None]
        if missing:
            raise ValueError(f"Likeness MSID Encoder: no face found in image(s) {missing} of the batch; lower "
                             f"min_score or remove those images")
        features = msid_encoder(msid_file).encode_faces(images[..., :3], faces).float().cpu()
        labels = tuple(f"image {i}" for i in range(len(faces)))
        if average:
            features = features.mean(dim=0, keepdim=True)
            labels = (f"mean of {len(faces)} image(s)",)
        return io.NodeOutput(FaceIdentity(features, labels))
