"""LikenessFaceAlignCrop: FFHQ-style aligned face crops plus the FACE_CROP needed to paste them back."""
from comfy_api.latest import io

from ..models.faces.cropping import ON_NO_FACE, CropSettings, NoFaceError, crop_faces
from ..models.faces.select import SELECTION_MODES
from .common_inputs import max_detect_side_input, min_score_input
from .detector import detect_faces
from .wires import FaceCrop, FaceDetections


class FaceAlignCrop(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessFaceAlignCrop",
            display_name="Face Align Crop",
            category="Likeness/Faces",
            description="Cuts FFHQ-style aligned squares around faces (eyes level, face centred, the framing the "
                        "pack's diffusion models expect) from an image or a batch of frames. Outputs the crops and a "
                        "FACE_CROP record that Face Paste Back uses to put an edited crop back. Detects faces itself "
                        "unless a Face Detect result is wired in.",
            inputs=[
                io.Image.Input("image", tooltip="Image or batch of frames to crop faces from."),
                io.Int.Input("size", default=512, min=64, max=2048, step=64,
                             tooltip="Side of the square crop in pixels: 256 for Diff-AE / DiffusionRig, 512 for "
                                     "Stable Diffusion based edits."),
                io.Float.Input("padding", default=0.0, min=0.0, max=1.0, step=0.05,
                               tooltip="Extra context around the FFHQ framing, as a fraction of the crop side "
                                       "added on each side. 0 = FFHQ exactly; 0.25 shows more hair and neck."),
                io.Combo.Input("selection", options=list(SELECTION_MODES), default="largest",
                               tooltip="Which faces to crop in each frame: the largest, the one at face_index "
                                       "(left to right), or all of them."),
                io.Int.Input("face_index", default=0, min=0, max=63,
                             tooltip="With selection 'index': which face, counting from 0 left to right."),
                io.Combo.Input("on_no_face", options=list(ON_NO_FACE), default="error",
                               tooltip="A frame without a face (or too small, under 48 px): 'error' stops with a "
                                       "message; 'passthrough' emits a placeholder crop that Face Paste Back "
                                       "skips, so the frame comes out unchanged with an empty mask."),
                min_score_input(),
                max_detect_side_input(),
                FaceDetections.Input("faces", optional=True,
                                     tooltip="Optional Face Detect result for this same image; when not wired the "
                                             "node runs the detector itself."),
            ],
            outputs=[
                io.Image.Output(display_name="crops", tooltip="Aligned face crops, size x size, one per selected "
                                                              "face (one per frame with 'largest' or 'index')."),
                FaceCrop.Output(display_name="face_crop", tooltip="Where each crop came from; wire it into Face "
                                                                  "Paste Back."),
            ],
        )

    @classmethod
    def execute(cls, image, size: int, padding: float, selection: str, face_index: int, on_no_face: str,
                min_score: float, max_detect_side: int, faces=None) -> io.NodeOutput:
        reasons: dict[int, str] = {}
        if faces is None:
            faces, reasons = detect_faces(image, min_score, max_detect_side)
        settings = CropSettings(size, padding, selection, face_index, on_no_face)
        try:
            crops, info = crop_faces(image, faces, settings, reasons)
        except NoFaceError as err:
            raise ValueError(f"Likeness Face Align Crop: {err}") from None
        return io.NodeOutput(crops, info)
