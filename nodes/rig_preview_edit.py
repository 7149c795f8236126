"""LikenessRigPreviewEdit: apply a rig edit to the photo itself, with no diffusion weights."""
from comfy_api.latest import io

from .flame_assets import assets_for
from .wires import FaceRig


class RigPreviewEdit(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessRigPreviewEdit",
            display_name="Rig Preview Edit (no diffusion)",
            category="Likeness/Rig",
            description="Shows a rig edit on the photo without any diffusion model: the face is warped along the "
                        "mesh's motion (small pose and expression changes) and relit by the ratio of the edited to "
                        "the fitted shading, then pasted back into the photo. With a batch of edited rigs made "
                        "from one face (Rig Animate) it produces one frame per rig. The diffusion nodes replace "
                        "this when their weights are installed.",
            inputs=[
                io.Image.Input("image", tooltip="The original photo or frames the crops were cut from."),
                io.Image.Input("crops", tooltip="The aligned crops the rig was fitted on."),
                FaceRig.Input("fitted_rig", tooltip="The rig as FaceFit produced it."),
                FaceRig.Input("edited_rig", tooltip="The same rig after Rig Edit / Lighting / Transfer / Animate."),
                io.Float.Input("feather", default=0.08, min=0.0, max=0.5, step=0.01,
                               tooltip="Soft edge of the paste, as a fraction of the crop side."),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip="The photo (one frame per edited face) with the edit."),
                io.Image.Output(display_name="edited_crops", tooltip="The edited aligned crops."),
                io.Mask.Output(display_name="mask", tooltip="Where the edit changed the photo."),
            ],
        )

    @classmethod
    def execute(cls, image, crops, fitted_rig, edited_rig, feather: float) -> io.NodeOutput:
        from ..models.faces.paste import paste_crops
        from ..models.rig.rig_preview import edit_crops, frames_for_paste

        try:
            edited, _ = edit_crops(crops, fitted_rig, edited_rig, flame=assets_for(fitted_rig))
            frames, records = frames_for_paste(image[..., :3], fitted_rig, len(edited_rig))
        except ValueError as err:
            raise ValueError(f"Likeness Rig Preview Edit: {err}") from None
        out, mask = paste_crops(frames, edited, records, feather=feather, preserve_unchanged=True)
        return io.NodeOutput(out, edited, mask)
