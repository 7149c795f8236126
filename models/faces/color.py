"""Colour matching of an edited crop to the original crop it was made from, before pasting it back.

Edits (diffusion in particular) drift in white balance and exposure; pulling their colour back to
the original's keeps the pasted face from standing out of the frame. Both matchers work in CIE Lab
(sRGB, D65), where the channels are roughly perceptually even and lightness is apart from colour.
Images are (..., H, W, 3) in [0, 1]; masks are (..., H, W) weights, None meaning the whole image.
"""
from __future__ import annotations

import numpy as np
import torch

from .filters import gaussian_blur

_RGB_TO_XYZ = np.array([
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
])
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_DELTA = 6.0 / 29.0


def _const(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(values, device=like.device, dtype=like.dtype)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] (clamped) -> CIE Lab (L in [0, 100])."""
    c = rgb.clamp(0.0, 1.0)
    linear = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    t = linear @ _const(_RGB_TO_XYZ.T, rgb) / _const(_WHITE_D65, rgb)
    f = torch.where(t > _DELTA**3, t.clamp_min(_DELTA**3) ** (1.0 / 3.0), t / (3.0 * _DELTA**2) + 4.0 / 29.0)
    fx, fy, fz = f.unbind(-1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab -> sRGB, clamped to [0, 1]."""
    big_l, a, b = lab.unbind(-1)
    fy = (big_l + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, fy - b / 200.0], dim=-1)
    t = torch.where(f > _DELTA, f**3, 3.0 * _DELTA**2 * (f - 4.0 / 29.0))
    linear = ((t * _const(_WHITE_D65, lab)) @ _const(_XYZ_TO_RGB.T, lab)).clamp(0.0, 1.0)
    return torch.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1.0 / 2.4) - 0.055).clamp(0.0, 1.0)


def _weights(image: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return torch.ones_like(image[..., :1])
    return mask.to(image.dtype)[..., None]


def match_mean_std(src: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor | None = None,
                   eps: float = 0.1) -> torch.Tensor:
    """src with each Lab channel's mean and std inside `mask` moved to ref's, applied to all of src.

    eps (Lab units) keeps near-constant channels (the chroma of a grey photo) from blowing up: a
    grey reference pulls a coloured edit's chroma to grey, a grey edit stays grey. An empty mask
    leaves src as it is.
    """
    w = _weights(src, mask)
    total = w.sum(dim=(-3, -2), keepdim=True).clamp_min(1e-8)

    def stats(lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = (lab * w).sum(dim=(-3, -2), keepdim=True) / total
        var = (((lab - mean) ** 2) * w).sum(dim=(-3, -2), keepdim=True) / total
        return mean, var.sqrt()

    src_lab, ref_lab = rgb_to_lab(src), rgb_to_lab(ref)
    mu_s, sd_s = stats(src_lab)
    mu_r, sd_r = stats(ref_lab)
    return lab_to_rgb((src_lab - mu_s) * ((sd_r + eps) / (sd_s + eps)) + mu_r)


def match_low_frequency(src: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor | None = None,
                        sigma: float = 8.0) -> torch.Tensor:
    """src with its Lab content coarser than `sigma` pixels replaced by ref's: ref's colour and
    illumination, src's details.

    The difference ref - src is low-passed by a normalised convolution over the mask (blur(d m) /
    blur(m)), so only masked pixels set the correction and it fades out away from the mask.
    """
    lead, (h, w) = src.shape[:-3], src.shape[-3:-1]
    src_lab, ref_lab = rgb_to_lab(src), rgb_to_lab(ref)
    weight = _weights(src, mask).expand(*lead, h, w, 1)

    def low(x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, h, w, x.shape[-1]).permute(0, 3, 1, 2)
        return gaussian_blur(flat, sigma, border="zeros").permute(0, 2, 3, 1).reshape(x.shape)

    correction = low((ref_lab - src_lab) * weight) / (low(weight) + 1e-3)
    return lab_to_rgb(src_lab + correction)
