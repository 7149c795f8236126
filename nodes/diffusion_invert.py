"""Deterministic DDIM inversion through ComfyUI's own sampler: x_0 -> x_T (Diff-AE's stochastic code).

Euler on an EPS model is DDIM with eta = 0, so integrating the probability-flow ODE over the
flipped sigmas of a scheduler is Diff-AE's `ddim_reverse_sample_loop`; the result is in ComfyUI's
sigma scale (x_0 + sigma_max * eps), which is what a sampler started with noise disabled expects.
Sampling back with the same scheduler and step count retraces the path, so the round-trip error
falls with the step count. `DDIMInvert` offers the same for any conditioning, e.g. DiffusionRig's.
"""
from __future__ import annotations

import torch
from comfy_api.latest import io

import comfy.model_management
import comfy.samplers
import comfy.utils

from .diffusion_conditioning import codes_of


def inversion_sigmas(model, scheduler: str, steps: int) -> torch.Tensor:
    """The scheduler's sigmas reversed; the leading 0 becomes 1e-4 (as stock FlipSigmas does)."""
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), scheduler, steps).cpu()
    flipped = sigmas.flip(0).clone()
    flipped[0] = max(float(flipped[0]), 1e-4)
    return flipped


def invert(model, conditioning: list, x_0: torch.Tensor, scheduler: str, steps: int) -> torch.Tensor:
    """x_T (B, 3, H, W) in sigma scale for the pixel-space latent x_0 in [-1, 1]."""
    guider = comfy.samplers.CFGGuider(model)
    guider.set_conds(conditioning, conditioning)
    guider.set_cfg(1.0)
    sigmas = inversion_sigmas(model, scheduler, steps)
    bar = comfy.utils.ProgressBar(steps)
    x_T = guider.sample(torch.zeros_like(x_0), x_0, comfy.samplers.sampler_object("euler"), sigmas,
                        callback=lambda *_: bar.update(1), disable_pbar=True, seed=0)
    return x_T.to(comfy.model_management.intermediate_device())


class DDIMInvert(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LikenessDDIMInvert",
            display_name="DDIM Inversion",
            category="Likeness/Diffusion",
            description="Deterministic DDIM inversion of images under a conditioning: the x_T that sampling back "
                        "with the same conditioning, scheduler and step count (noise disabled: KSamplerAdvanced "
                        "add_noise off, sampler 'ddim' or 'euler', cfg 1) turns into the images again. For "
                        "DiffusionRig, invert the photo under its own condition (its fitted rig's buffers and "
                        "global latent) and sample edited conditions from that x_T: what the edit does not "
                        "touch stays as in the photo. (DiffAEEncode does the same for Diff-AE.)",
            inputs=[
                io.Model.Input("model", tooltip="The Diff-AE or DiffusionRig MODEL to invert with."),
                io.Conditioning.Input("conditioning", tooltip="The images' own condition (one, or one per image)."),
                io.Image.Input("image", tooltip="The aligned crops the condition was made from."),
                io.Int.Input("steps", default=20, min=1, max=1000,
                             tooltip="Inversion steps; sample back with the same number. More = more faithful."),
                io.Combo.Input("scheduler", options=list(comfy.samplers.KSampler.SCHEDULERS), default="ddim_uniform",
                               tooltip="Scheduler of the inversion; sample back with the same one."),
            ],
            outputs=[io.Latent.Output(display_name="latent", tooltip="x_T (sigma scale), one per image.")],
        )

    @classmethod
    def execute(cls, model, conditioning, image, steps: int, scheduler: str) -> io.NodeOutput:
        codes, _ = codes_of(conditioning, "DDIM Inversion's conditioning")
        if codes.shape[0] not in (1, image.shape[0]):
            raise ValueError(f"Likeness DDIM Inversion: {codes.shape[0]} conditions for {image.shape[0]} images "
                             "(give one, or one per image)")
        x_0 = image[..., :3].movedim(-1, 1).float() * 2 - 1
        return io.NodeOutput({"samples": invert(model, conditioning, x_0, scheduler, steps)})
