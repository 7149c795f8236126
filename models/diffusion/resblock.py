"""What every ADM-style ResBlock shares: the input path, the skip path and the output layers.

The conditioned variants (Diff-AE's two-condition block, DiffusionRig's latent block) differ only
in how they modulate the normalised features before the output conv; each writes that out in its
own `forward`. The semantic encoder's block has no condition and therefore no output layers at all.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from .norm import group_norm
from .resample import Resample, resample


def skip_projection(channels: int, out_channels: int) -> nn.Module:
    """Identity when the width is kept, else a 1x1 conv (the official `skip_connection`)."""
    return nn.Identity() if channels == out_channels else nn.Conv2d(channels, out_channels, 1)


def condition_projection(in_features: int, out_features: int) -> nn.Sequential:
    """SiLU -> Linear from an embedding to per-channel scales (and shifts); entries `1.*`."""
    return nn.Sequential(nn.SiLU(), nn.Linear(in_features, out_features))


def output_layers(channels: int, dropout: float) -> nn.Sequential:
    """GroupNorm, SiLU, Dropout, 3x3 conv starting at zero (entries `0.*`, `3.*`).

    The zero conv makes a freshly built block the identity on its skip path; the modulation sits
    between the norm (index 0) and the SiLU (index 1).
    """
    conv = nn.Conv2d(channels, channels, 3, padding=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return nn.Sequential(group_norm(channels), nn.SiLU(), nn.Dropout(dropout), conv)


class ResBlockBase(nn.Module):
    """`in_layers` = GroupNorm, SiLU, 3x3 conv; an up/down block resamples before that conv."""

    takes_conditions: ClassVar[bool] = True  # read by CondSequential

    def __init__(self, channels: int, out_channels: int, resample_mode: Resample | None = None):
        super().__init__()
        self.resample_mode = resample_mode
        self.in_layers = nn.Sequential(group_norm(channels), nn.SiLU(),
                                       nn.Conv2d(channels, out_channels, 3, padding=1))

    def input_path(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(residual features, skip input), both at the block's output resolution."""
        if self.resample_mode is None:
            return self.in_layers(x), x
        h = resample(self.in_layers[:-1](x), self.resample_mode)
        return self.in_layers[-1](h), resample(x, self.resample_mode)


class PlainResBlock(ResBlockBase):
    """Diff-AE semantic-encoder block (`use_time_condition=False`): skip(x) + in_layers(x), nothing else."""

    takes_conditions: ClassVar[bool] = False

    def __init__(self, channels: int, out_channels: int, resample_mode: Resample | None = None):
        super().__init__(channels, out_channels, resample_mode)
        self.skip_connection = skip_projection(channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, x = self.input_path(x)
        return self.skip_connection(x) + h
