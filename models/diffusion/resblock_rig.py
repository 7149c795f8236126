"""DiffusionRig's ResBlock: time and the global latent each give a scale and a shift."""
from __future__ import annotations

import torch

from .resample import Resample
from .resblock import ResBlockBase, condition_projection, output_layers, skip_projection


class LatentResBlock(ResBlockBase):
    """After the output GroupNorm: h*(1+s_t)+b_t, then h*(1+s_l)+b_l; then SiLU, Dropout, zero conv.

    `emb_layers` maps the time embedding to 2C and `cond_emb_layers` the 64-d global latent to 2C
    (`use_scale_shift_norm=True` for both; unlike Diff-AE's z_sem, the latent also shifts).
    """

    def __init__(self, channels: int, out_channels: int, resample_mode: Resample | None = None, *,
                 embed_channels: int, latent_dim: int, dropout: float):
        super().__init__(channels, out_channels, resample_mode)
        self.emb_layers = condition_projection(embed_channels, 2 * out_channels)
        self.cond_emb_layers = condition_projection(latent_dim, 2 * out_channels)
        self.out_layers = output_layers(out_channels, dropout)
        self.skip_connection = skip_projection(channels, out_channels)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, global_latent: torch.Tensor) -> torch.Tensor:
        h, x = self.input_path(x)
        time_scale, time_shift = self.emb_layers(emb).to(h.dtype)[..., None, None].chunk(2, dim=1)
        latent_scale, latent_shift = self.cond_emb_layers(global_latent).to(h.dtype)[..., None, None].chunk(2, dim=1)
        norm, act, dropout, conv = self.out_layers
        h = norm(h) * (1 + time_scale) + time_shift
        h = h * (1 + latent_scale) + latent_shift
        h = conv(dropout(act(h)))
        return self.skip_connection(x) + h
