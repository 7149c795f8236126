"""LikenessFacePasteBack: put edited face crops back into the frames they were cut from."""
from comfy_api.latest import io

from ..models.faces.paste import COLOR_MATCH_MODES, paste_crops
from .wires import FaceCrop


class FacePasteBack(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessFacePasteBack",
            display_name="Face Paste Back",
            category="Likeness/Faces",
            description="Pastes edited face crops back into the original image or frames, undoing the alignment of "
                        "Face Align Crop, with a feathered edge and optional colour matching. Frames whose crop is "
                        "a no-face placeholder come out unchanged with an empty mask.",
            inputs=[
                io.Image.Input("image", tooltip="The original image or frames the crops were cut from."),
                io.Image.Input("crops", tooltip="The edited crops, in the same order as Face Align Crop emitted "
                                                "them. They may have been resized; they are assumed to cover the "
                                                "same square."),
                FaceCrop.Input("face_crop", tooltip="The FACE_CROP output of the Face Align Crop that made the crops."),
                io.Float.Input("feather", default=0.08, min=0.0, max=0.5, step=0.01,
                               tooltip="Width of the soft edge, as a fraction of the crop side. Larger hides "
                                       "seams better but keeps less of the edit near the crop border."),
                io.Combo.Input("color_match", options=list(COLOR_MATCH_MODES), default="none",
                               tooltip="Match the edit's colours to the original crop before pasting: "
                                       "'mean_std' matches overall colour statistics, 'low_frequency' keeps the "
                                       "original's lighting and colour cast but the edit's details."),
                io.Boolean.Input("preserve_unchanged", default=True,
                                 tooltip="Where the edit left the crop unchanged, keep the original pixels "
                                         "instead of the resampled crop, so untouched areas stay sharp."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Optional mask in crop space limiting what is pasted, e.g. only the face "
                                      "skin: one square mask per crop, or a single one used for every crop."),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip="The frames with the edited faces pasted in."),
                io.Mask.Output(display_name="mask", tooltip="Where pasting changed each frame (feathered)."),
            ],
        )

    @classmethod
    def execute(cls, image, crops, face_crop, feather: float, color_match: str, preserve_unchanged: bool,
                mask=None) -> io.NodeOutput:
        if crops.shape[0] != len(face_crop):
            raise ValueError(f"Likeness Face Paste Back: {crops.shape[0]} crops but FACE_CROP describes "
                             f"{len(face_crop)}; wire the crops that came from the same Face Align Crop.")
        frames, masks = paste_crops(image, crops, face_crop, feather=feather, color_match=color_match,
                                    preserve_unchanged=preserve_unchanged, mask=mask)
        return io.NodeOutput(frames, masks)
