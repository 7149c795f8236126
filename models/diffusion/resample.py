"""The parameter-free resampling inside up/down ResBlocks (`resblock_updown=True` in both models).

Such a ResBlock resamples both its residual path (between SiLU and the first conv) and its skip
path, so the weights only ever see the new resolution; nearest-neighbour x2 up, 2x2 average down.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Resample = Literal["up", "down"]


def resample(x: torch.Tensor, mode: Resample) -> torch.Tensor:
    if mode == "up":
        return F.interpolate(x, scale_factor=2, mode="nearest")
    if mode == "down":
        return F.avg_pool2d(x, kernel_size=2, stride=2)
    raise ValueError(f"resample mode must be 'up' or 'down', got {mode!r}")
