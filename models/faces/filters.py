"""Separable Gaussian blur with one sigma per batch item.

Shared by the aligner (anti-aliasing before a downscale, where every face in a batch has its own
scale), the paste-back (mask feathering) and the colour matcher (low-pass).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

_PAD_MODES = {"replicate": "replicate", "zeros": "constant"}


def gaussian_blur(x: torch.Tensor, sigma: float | Sequence[float], border: str = "replicate") -> torch.Tensor:
    """Blur (N, C, H, W) with a Gaussian of `sigma` pixels (a float, or one per item; 0 = untouched).

    border: "replicate" extends the edge pixels; "zeros" pads with zeros, which is what a normalised
    convolution blur(x * m) / blur(m) needs.
    """
    n, c, h, w = x.shape
    sigmas = [float(sigma)] * n if isinstance(sigma, (int, float)) else [float(s) for s in sigma]
    if len(sigmas) != n:
        raise ValueError(f"{len(sigmas)} sigmas for a batch of {n}")
    radius = math.ceil(3.0 * max(sigmas, default=0.0))
    if radius == 0:
        return x
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    s = torch.tensor(sigmas, device=x.device, dtype=x.dtype).clamp_min(1e-6)[:, None]
    kernel = torch.exp(-0.5 * (taps / s) ** 2)
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (N*C, K)
    mode = _PAD_MODES[border]
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode=mode), kernel[:, None, None, :], groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode=mode), kernel[:, None, :, None], groups=n * c)
    return y.reshape(n, c, h, w)
