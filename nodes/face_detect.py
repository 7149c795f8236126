"""LikenessFaceDetect: find faces and their landmarks in a batch of images."""
from comfy_api.latest import io

from ..models.faces.draw import draw_detections
from .common_inputs import max_detect_side_input, min_score_input
from .detector import detect_faces
from .wires import FaceDetections


class FaceDetect(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessFaceDetect",
            display_name="Face Detect",
            category="Likeness/Faces",
            description="Finds every face in each image (video frames too) with the built-in detector and "
                        "468-point face mesh, which ship with the pack's dependencies and need no download. "
                        "Faces are ordered left to right. The preview draws boxes, scores and alignment points.",
            inputs=[
                io.Image.Input("image", tooltip="Image or batch of frames to search. RGBA and grayscale are "
                                                "converted to RGB."),
                min_score_input(),
                max_detect_side_input(),
            ],
            outputs=[
                FaceDetections.Output(display_name="faces", tooltip="Faces per image, for Face Align Crop."),
                io.Image.Output(display_name="preview", tooltip="The images with each face's box, index and "
                                                                "alignment points drawn on."),
                io.Int.Output(display_name="count", tooltip="Number of faces found in the whole batch."),
            ],
        )

    @classmethod
    def execute(cls, image, min_score: float, max_detect_side: int) -> io.NodeOutput:
        detections, _ = detect_faces(image, min_score, max_detect_side)
        return io.NodeOutput(detections, draw_detections(image, detections), detections.count)
