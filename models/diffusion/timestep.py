"""Sinusoidal timestep embedding and the MLP that lifts it to the ResBlocks' embedding width."""
from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(B,) timesteps (integer DDPM indices, fractional allowed) -> (B, dim) features `[cos, sin]`.

    Frequencies fall geometrically from 1 to 1/max_period over dim/2 channels; cos comes first, as in
    ADM (both Diff-AE and DiffusionRig inherit it), so trained weights see the layout they expect.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.reshape(-1).float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def time_mlp(model_channels: int, embed_channels: int) -> nn.Sequential:
    """Linear -> SiLU -> Linear (state-dict entries `0.*` and `2.*`)."""
    return nn.Sequential(nn.Linear(model_channels, embed_channels), nn.SiLU(),
                         nn.Linear(embed_channels, embed_channels))


def batch_timesteps(t: torch.Tensor | float, batch: int, device: torch.device) -> torch.Tensor:
    """Timesteps as a (batch,) tensor: a scalar (or one-element tensor) is shared by the whole batch."""
    t = torch.as_tensor(t, device=device)
    if t.numel() == 1:
        return t.reshape(1).expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"expected one timestep or {batch} (one per sample), got shape {tuple(t.shape)}")
    return t
