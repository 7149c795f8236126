"""Diff-AE's decoder ResBlock (`resnet_two_cond=True`): time by scale and shift, z_sem by scale only."""
from __future__ import annotations

import torch

from .resample import Resample
from .resblock import ResBlockBase, condition_projection, output_layers, skip_projection


class TwoCondResBlock(ResBlockBase):
    """After the output GroupNorm: h*(1+s_t)+b_t, then h*(1+s_z); then SiLU, Dropout, zero conv.

    `emb_layers` maps the time embedding to 2C (scale, shift); `cond_emb_layers` maps the raw
    512-d z_sem to C (a scale only: the semantic code re-weights channels but adds nothing).
    """

    def __init__(self, channels: int, out_channels: int, resample_mode: Resample | None = None, *,
                 embed_channels: int, z_sem_channels: int, dropout: float):
        super().__init__(channels, out_channels, resample_mode)
        self.emb_layers = condition_projection(embed_channels, 2 * out_channels)
        self.cond_emb_layers = condition_projection(z_sem_channels, out_channels)
        self.out_layers = output_layers(out_channels, dropout)
        self.skip_connection = skip_projection(channels, out_channels)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, z_sem: torch.Tensor) -> torch.Tensor:
        h, x = self.input_path(x)
        time_scale, time_shift = self.emb_layers(emb).to(h.dtype)[..., None, None].chunk(2, dim=1)
        z_scale = self.cond_emb_layers(z_sem).to(h.dtype)[..., None, None]
        norm, act, dropout, conv = self.out_layers
        h = norm(h) * (1 + time_scale) + time_shift
        h = h * (1 + z_scale)
        h = conv(dropout(act(h)))
        return self.skip_connection(x) + h
