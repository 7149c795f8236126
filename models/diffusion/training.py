"""The objective both backbones were trained with: ADM's "simple" loss, MSE on the predicted noise.

A training example is x_0 noised to a uniformly drawn DDPM timestep t,
x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, and the model is asked for eps. Diff-AE trains its
semantic encoder jointly (z_sem = encode(x_0) is the decoder's condition); DiffusionRig conditions
on the physical buffers and its encoder's global latent the same way. The caller builds the
conditions, so one function serves both.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from .ddim import EpsModel
from .schedule import DiffusionSchedule


def q_sample(x_0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, schedule: DiffusionSchedule) -> torch.Tensor:
    """x_t for a batch of clean images at per-sample timesteps t (B,)."""
    abar = schedule.alphas_cumprod.to(device=x_0.device)[t].to(x_0.dtype).view(-1, *([1] * (x_0.dim() - 1)))
    return abar.sqrt() * x_0 + (1 - abar).sqrt() * noise


def denoising_loss(model: EpsModel, x_0: torch.Tensor, schedule: DiffusionSchedule, *,
                   conds: Mapping[str, torch.Tensor] | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean squared error between the noise added at a random timestep and the model's estimate of it."""
    t = torch.randint(0, schedule.num_timesteps, (x_0.shape[0],), generator=generator).to(x_0.device)
    noise = torch.randn(x_0.shape, generator=generator, dtype=x_0.dtype).to(x_0.device)
    return F.mse_loss(model(q_sample(x_0, t, noise, schedule), t, **(conds or {})), noise)
