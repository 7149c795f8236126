"""LikenessDiffusionLoader: a converted Diff-AE / DiffusionRig file -> stock MODEL + its encoder."""
from __future__ import annotations

import folder_paths
from comfy_api.latest import io

from .diffusion_wires import DiffusionEncoderWire

FOLDER = "likeness_diffusion"
DIRECTIONS = "directions/"


def backbone_files() -> list[str]:
    """Converted backbones in likeness/diffusion (direction files in its directions/ folder excluded)."""
    return [f for f in folder_paths.get_filename_list(FOLDER) if not f.replace("\\", "/").startswith(DIRECTIONS)]


class DiffusionLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessDiffusionLoader",
            display_name="Load Diff-AE / DiffusionRig",
            category="Likeness/Diffusion",
            description="Loads a converted Diff-AE or DiffusionRig file (scripts/convert_diffae_diffusionrig.py; "
                        "the file's metadata says which) as a stock pixel-space MODEL with ADM's linear "
                        "schedule: sample it with KSampler / SamplerCustomAdvanced, decode with VAELoader's "
                        "'pixel_space' VAE, start from EmptyChromaRadianceLatentImage or VAEEncode(pixel_space). "
                        "Its image encoder comes out separately for DiffAEEncode / DiffusionRigCondition.",
            inputs=[io.Combo.Input("model_file", options=backbone_files(),
                                   tooltip="A converted file in ComfyUI/models/likeness/diffusion.")],
            outputs=[io.Model.Output(display_name="model", tooltip="The denoising UNet (epsilon, pixel space)."),
                     DiffusionEncoderWire.Output(display_name="encoder",
                                                 tooltip="Diff-AE's semantic encoder (512-d z_sem) or "
                                                         "DiffusionRig's global-latent encoder (64-d).")],
        )

    @classmethod
    def execute(cls, model_file: str) -> io.NodeOutput:
        from .diffusion_model import load_backbone

        path = folder_paths.get_full_path(FOLDER, model_file)
        if path is None:
            raise FileNotFoundError(f"Likeness: {model_file} is not in ComfyUI/models/likeness/diffusion")
        model, encoder = load_backbone(path)
        return io.NodeOutput(model, encoder)
