"""Deterministic DDIM inversion through ComfyUI's own sampler: x_0 -> x_T (Diff-AE's stochastic code).

Euler on an EPS model is DDIM with eta = 0, so integrating the probability-flow ODE over the
flipped sigmas of a scheduler is Diff-AE's `ddim_reverse_sample_loop`; the result is in ComfyUI's
sigma scale (x_0 + sigma_max * eps), which is what a sampler started with noise disabled expects.
Sampling back with the same scheduler and step count retraces the path, so the round-trip error
falls with the step count.
"""
from __future__ import annotations

import torch

import comfy.model_management
import comfy.samplers
import comfy.utils


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
