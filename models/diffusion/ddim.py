"""Reference DDIM (eta = 0, epsilon prediction): sampling x_T -> x_0 and inversion x_0 -> x_T.

One deterministic update moves a sample from noise level abar to abar':

    x0_hat = (x - sqrt(1 - abar) eps) / sqrt(abar)               (clamped to [-1, 1] if clip_denoised)
    eps    = (x - sqrt(abar) x0_hat) / sqrt(1 - abar)            (re-derived, consistent with the clamp)
    x'     = sqrt(abar') x0_hat + sqrt(1 - abar') eps

Sampling applies it from the last retained timestep down (abar' = abar of the previous one, 1 after
the first); inversion applies it upwards, evaluating the model at t to reach the next level
(abar' = abar of the next one, 0 after the last), as Diff-AE's `ddim_reverse_sample_loop` does. The
inversion reuses the noise predicted at the lower level for the step up, so a round trip is exact
only in the limit of many steps, and only for a model that behaves like a denoiser (its noise
estimate consistent with x_t, its x_0 estimate tending to x_t as the noise vanishes). The model is any callable `model(x_t, t, **conds) -> eps` with t a
(B,) tensor of original DDPM indices.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch

from .schedule import DiffusionSchedule

EpsModel = Callable[..., torch.Tensor]
Steps = str | int | Sequence[int]


def ddim_step(x: torch.Tensor, eps: torch.Tensor, alpha_bar: float, alpha_bar_to: float,
              clip_denoised: bool) -> torch.Tensor:
    """Deterministic DDIM move of x from noise level alpha_bar to alpha_bar_to (either direction)."""
    x0_hat = (x - math.sqrt(1.0 - alpha_bar) * eps) / math.sqrt(alpha_bar)
    if clip_denoised:
        x0_hat = x0_hat.clamp(-1.0, 1.0)
    eps = (x - math.sqrt(alpha_bar) * x0_hat) / math.sqrt(1.0 - alpha_bar)
    return math.sqrt(alpha_bar_to) * x0_hat + math.sqrt(1.0 - alpha_bar_to) * eps


def _eps(model: EpsModel, x: torch.Tensor, t: int, conds: Mapping[str, torch.Tensor] | None) -> torch.Tensor:
    timesteps = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
    return model(x, timesteps, **(conds or {}))


@torch.no_grad()
def ddim_sample(model: EpsModel, x_T: torch.Tensor, schedule: DiffusionSchedule, steps: Steps = "ddim20", *,
                conds: Mapping[str, torch.Tensor] | None = None, clip_denoised: bool = True) -> torch.Tensor:
    """x_0 from x_T in `len(steps)` model calls (the official samplers: "ddim20", clip_denoised=True)."""
    spaced = schedule.spaced(steps)
    x = x_T
    for i in reversed(range(len(spaced))):
        alpha_bar_prev = spaced.alphas_cumprod[i - 1] if i > 0 else 1.0
        eps = _eps(model, x, spaced.timesteps[i], conds)
        x = ddim_step(x, eps, spaced.alphas_cumprod[i], alpha_bar_prev, clip_denoised)
    return x


@torch.no_grad()
def ddim_reverse(model: EpsModel, x_0: torch.Tensor, schedule: DiffusionSchedule, steps: Steps = "ddim250", *,
                 conds: Mapping[str, torch.Tensor] | None = None, clip_denoised: bool = True) -> torch.Tensor:
    """x_T that `ddim_sample` (same steps and conds) maps back to about x_0 (Diff-AE encodes with T=250)."""
    spaced = schedule.spaced(steps)
    x = x_0
    for i in range(len(spaced)):
        alpha_bar_next = spaced.alphas_cumprod[i + 1] if i + 1 < len(spaced) else 0.0
        eps = _eps(model, x, spaced.timesteps[i], conds)
        x = ddim_step(x, eps, spaced.alphas_cumprod[i], alpha_bar_next, clip_denoised)
    return x
