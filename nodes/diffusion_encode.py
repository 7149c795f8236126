"""LikenessDiffAEEncode and LikenessDiffusionRigCondition: photos (and buffers) -> CONDITIONING."""
from __future__ import annotations

import torch
from comfy_api.latest import io

import comfy.samplers
import comfy.utils

from ..models.diffusion.files import DIFFAE_KIND, DIFFUSIONRIG_KIND
from ..models.render.buffers import PHYSIC_ORDERS
from .diffusion_conditioning import make_conditioning
from .diffusion_invert import invert
from .diffusion_model import PHYSIC_KEY
from .diffusion_wires import DiffusionEncoderWire
from .wires import RenderBuffers


def _encoder_for(encoder, kind: str, node: str):
    if encoder.kind != kind:
        raise ValueError(f"Likeness {node}: needs a {kind} encoder, got a {encoder.kind} one")
    return encoder


def _at_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """IMAGE resized to the encoder's training resolution (an aligned crop already is)."""
    if images.shape[1:3] == (size, size):
        return images
    return comfy.utils.common_upscale(images.movedim(-1, 1), size, size, "bicubic", "disabled").movedim(1, -1)


class DiffAEEncode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessDiffAEEncode",
            display_name="DiffAEEncode",
            category="Likeness/Diffusion",
            description="Encodes aligned face crops with Diff-AE: the semantic code z_sem as CONDITIONING "
                        "(negative: z_sem = 0, Diff-AE has no unconditional mode, so keep cfg at 1), and the "
                        "stochastic code x_T by deterministic DDIM inversion. Reconstruct by sampling x_T with "
                        "noise disabled (KSamplerAdvanced add_noise off, or SamplerCustomAdvanced + DisableNoise), "
                        "the same scheduler and step count and sampler 'ddim' or 'euler'.",
            inputs=[
                io.Model.Input("model", tooltip="The Diff-AE MODEL from Load Diff-AE / DiffusionRig (inversion)."),
                DiffusionEncoderWire.Input("encoder", tooltip="The Diff-AE encoder from the same loader."),
                io.Image.Input("image", tooltip="Aligned face crops (Diff-AE: FFHQ-aligned 256 px)."),
                io.Int.Input("inversion_steps", default=50, min=0, max=1000,
                             tooltip="DDIM inversion steps for x_T; more = more faithful reconstruction. "
                                     "0 skips inversion and returns the image itself as the latent."),
                io.Combo.Input("scheduler", options=list(comfy.samplers.KSampler.SCHEDULERS), default="ddim_uniform",
                               tooltip="Scheduler of the inversion; sample back with the same one."),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive", tooltip="z_sem of each image."),
                io.Conditioning.Output(display_name="negative", tooltip="z_sem = 0 (for a cfg of 1, unused)."),
                io.Latent.Output(display_name="latent", tooltip="x_T (sigma scale) or, with 0 steps, the image."),
            ],
        )

    @classmethod
    def execute(cls, model, encoder, image, inversion_steps: int, scheduler: str) -> io.NodeOutput:
        encoder = _encoder_for(encoder, DIFFAE_KIND, "DiffAEEncode")
        z_sem = encoder.encode(_at_size(image, encoder.config.image_size))
        positive = make_conditioning(z_sem, DIFFAE_KIND)
        negative = make_conditioning(torch.zeros_like(z_sem), DIFFAE_KIND)
        x_0 = image[..., :3].movedim(-1, 1).float() * 2 - 1
        if inversion_steps > 0:
            x_0 = invert(model, positive, x_0, scheduler, inversion_steps)
        return io.NodeOutput(positive, negative, {"samples": x_0})


class DiffusionRigCondition(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessDiffusionRigCondition",
            display_name="DiffusionRigCondition",
            category="Likeness/Diffusion",
            description="DiffusionRig's condition: the rendered physical buffers (via c_concat) and the global "
                        "latent of a photo (appearance the buffers do not explain). Give the photo the rig was "
                        "fitted on to edit it, or another photo of the person for DiffusionRig's 'latent' mode. "
                        "Start from random noise (the official script: one x_T shared by every edit), or from the "
                        "photo's own x_T: DDIM Inversion of the photo under its unedited condition. "
                        "Negative: the same buffers with a zero latent.",
            inputs=[
                DiffusionEncoderWire.Input("encoder", tooltip="The DiffusionRig encoder from the loader."),
                RenderBuffers.Input("buffers", tooltip="RenderBuffers output in channel order 'diffusionrig'."),
                io.Image.Input("image", tooltip="Aligned crops to take the global latent from (one, or one per "
                                                "buffer batch item)."),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive", tooltip="Buffers + global latent."),
                io.Conditioning.Output(display_name="negative", tooltip="Buffers + zero latent."),
            ],
        )

    @classmethod
    def execute(cls, encoder, buffers, image) -> io.NodeOutput:
        encoder = _encoder_for(encoder, DIFFUSIONRIG_KIND, "DiffusionRigCondition")
        if tuple(buffers.order) != PHYSIC_ORDERS["diffusionrig"]:
            raise ValueError(f"Likeness DiffusionRigCondition: buffers are in order {buffers.order}; set "
                             "RenderBuffers' channel_order to 'diffusionrig'")
        latent = encoder.encode(_at_size(image, encoder.config.image_size))
        physic = buffers.physic_cond.float().cpu()
        latent = comfy.utils.resize_to_batch_size(latent, physic.shape[0]) if latent.shape[0] == 1 else latent
        if latent.shape[0] != physic.shape[0]:
            raise ValueError(f"Likeness DiffusionRigCondition: {latent.shape[0]} images for "
                             f"{physic.shape[0]} rendered faces")
        positive = make_conditioning(latent, DIFFUSIONRIG_KIND, **{PHYSIC_KEY: physic})
        negative = make_conditioning(torch.zeros_like(latent), DIFFUSIONRIG_KIND, **{PHYSIC_KEY: physic})
        return io.NodeOutput(positive, negative)
