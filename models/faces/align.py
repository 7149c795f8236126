"""Aligned face crops: the alignment affines (FFHQ, ArcFace) and an exact, anti-aliased affine warp.

An affine here is a 2x3 matrix A that maps a point p of the source image to A[:, :2] @ p + A[:, 2]
in the crop, both in continuous pixel coordinates (x right, y down, pixel i covers [i, i + 1), so
its centre is i + 0.5). Affines are small host-side metadata (float64 numpy); images stay on their
device.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .filters import gaussian_blur

# InsightFace's ArcFace 112x112 template (eye, eye, nose, mouth corner, mouth corner; image left to
# right), published in OpenCV's convention where pixel centres sit on integers.
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def _rot90(v: np.ndarray) -> np.ndarray:
    """v turned a quarter turn clockwise on screen (y down): right -> down."""
    return np.array([-v[1], v[0]])


def ffhq_affine(points5, size: int, padding: float = 0.0) -> np.ndarray:
    """Affine (2x3) from the source image to a size x size crop framed like the FFHQ dataset.

    The FFHQ recipe builds an oriented square from the eyes and mouth: its half-side vector x points
    along the eye line (tilted by the mouth direction), its length is the larger of 2x the eye
    distance and 1.8x the eye-to-mouth distance, and its centre sits a tenth of the way from the eye
    midpoint to the mouth midpoint. `padding` widens that square by the given fraction of its side on
    every side (0 = exact FFHQ framing, 0.25 = a square 1.5x as wide showing a quarter more context
    on each side), which leaves the face smaller in the crop.
    """
    p = np.asarray(points5, dtype=np.float64).reshape(5, 2)
    eye_avg = 0.5 * (p[0] + p[1])
    eye_to_eye = p[1] - p[0]
    eye_to_mouth = 0.5 * (p[3] + p[4]) - eye_avg
    x = eye_to_eye - _rot90(eye_to_mouth)
    half = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8) * (1.0 + 2.0 * padding)
    norm = np.hypot(*x)
    if not (norm > 0 and half > 0 and np.isfinite(norm * half)):
        raise ValueError(f"degenerate face points: {p.tolist()}")
    scale = size / (2.0 * half)
    u = x / norm
    linear = scale * np.stack([u, _rot90(u)])
    centre = eye_avg + 0.1 * eye_to_mouth
    return np.concatenate([linear, (0.5 * size - linear @ centre)[:, None]], axis=1)


def _similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) src -> dst (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sv, vt = np.linalg.svd(d.T @ s / len(src))
    flip = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
    rotation = u @ flip @ vt
    scale = np.trace(np.diag(sv) @ flip) / (s**2).sum(1).mean()
    linear = scale * rotation
    return np.concatenate([linear, (mu_d - linear @ mu_s)[:, None]], axis=1)


def arcface_affine(points5, size: int = 112) -> np.ndarray:
    """Affine (2x3) to a size x size ArcFace crop: the similarity closest to ARCFACE_TEMPLATE_112.

    The template moves half a pixel to this module's pixel-centre convention, and for sizes other
    than 112 it is scaled with the square it lives in.
    """
    src = np.asarray(points5, dtype=np.float64).reshape(5, 2)
    return _similarity_fit(src, (ARCFACE_TEMPLATE_112 + 0.5) * (size / 112.0))


def invert_affine(affine: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Inverse of one (2, 3) or a batch (..., 2, 3) of affines, numpy or torch."""
    linear, shift = affine[..., :2], affine[..., 2:]
    if isinstance(affine, torch.Tensor):
        inv = torch.linalg.inv(linear)
        return torch.cat([inv, -inv @ shift], dim=-1)
    inv = np.linalg.inv(linear)
    return np.concatenate([inv, -inv @ shift], axis=-1)


def compose_affines(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The affine applying `inner`, then `outer` (numpy, (2, 3) or broadcastable (..., 2, 3))."""
    linear = outer[..., :2] @ inner[..., :2]
    return np.concatenate([linear, outer[..., :2] @ inner[..., 2:] + outer[..., 2:]], axis=-1)


def antialias_sigma(affines: np.ndarray) -> np.ndarray:
    """Gaussian sigma (source pixels) to blur with before warping by each affine in (B, 2, 3).

    Along its most compressed direction the source is sampled every k = 1/s pixels (s = the smallest
    singular value of the linear part). An area resize averages a k-pixel box (variance k^2 / 12);
    the Gaussian plus the bilinear tent (variance 1/6) get the same variance. Measured against area
    averages at 2x to 8x, on a photo and a zone plate, this beats the 0.5 (1/s - 1) rule of thumb.
    """
    k = 1.0 / np.linalg.svd(affines[:, :, :2], compute_uv=False).min(axis=1)
    return np.sqrt(np.maximum(0.0, (k**2 - 2.0) / 12.0))


def _host_affines(affines: np.ndarray | torch.Tensor, batch: int) -> np.ndarray:
    if isinstance(affines, torch.Tensor):
        affines = affines.detach().to("cpu", torch.float64).numpy()
    a = np.asarray(affines, dtype=np.float64).reshape(-1, 2, 3)
    if len(a) != batch:
        raise ValueError(f"{len(a)} affines for {batch} images")
    return a


def _window(lo: float, hi: float, n: int, margin: int, reflect: bool) -> tuple[int, int]:
    """Source pixels [start, stop) that sampling the span [lo, hi] of an axis of n pixels can read."""
    if reflect:  # the mirrored span is read too
        lo, hi = min(lo, 2 * n - hi), max(hi, -lo)
    lo, hi = min(max(lo, 0.0), n), min(max(hi, 0.0), n)
    return max(math.floor(lo) - margin, 0), min(math.ceil(hi) + margin, n)


def _apply_border(coords: torch.Tensor, size: torch.Tensor, border: str) -> torch.Tensor:
    """(..., 2) source coordinates moved inside an image of size (w, h) by the border rule."""
    if border == "reflect":
        coords = size - (torch.remainder(coords, 2 * size) - size).abs()
    return torch.minimum(coords.clamp_min(0.5), size - 0.5)  # the edge pixel's value reaches out to the edge


def _next_pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


def warp_affine(
    images: torch.Tensor,
    affines: np.ndarray | torch.Tensor,
    out_hw: int | tuple[int, int],
    *,
    antialias: bool = True,
    border: str = "reflect",
) -> torch.Tensor:
    """Warp (B, H, W, C) images by (B, 2, 3) source -> output affines into (B, h, w, C).

    Output pixel centre q samples the source bilinearly at A^-1 q. With `antialias`, a downscaling
    affine first blurs the source (antialias_sigma). Only the source window the output can see is
    filtered and sampled, so small crops of large frames stay cheap. border: what lies outside the
    source, "reflect" (mirrored at the edges), "replicate" (edge pixels) or "zeros".

    grid_sample normalises coordinates by the sampled tensor's size; the window is zero-padded to
    power-of-two sides so that normalising is exact in float32, which makes the identity reproduce
    the image and integer shifts move it by whole pixels bit for bit.
    """
    if border not in ("reflect", "replicate", "zeros"):
        raise ValueError(f"unknown border {border!r}")
    b, h, w, c = images.shape
    oh, ow = (out_hw, out_hw) if isinstance(out_hw, int) else out_hw
    fwd = _host_affines(affines, b)
    if b == 0:
        return images.new_zeros((0, oh, ow, c))
    inv = invert_affine(fwd)
    sigmas = antialias_sigma(fwd) if antialias else np.zeros(b)
    margin = math.ceil(3.0 * sigmas.max(initial=0.0)) + 2

    corners = np.array([[0.0, 0.0, 1.0], [ow, 0.0, 1.0], [0.0, oh, 1.0], [ow, oh, 1.0]])
    seen = np.einsum("bij,kj->bki", inv, corners)  # (B, 4, 2): where the output's corners come from
    reflect = border == "reflect"
    x0, x1 = _window(seen[..., 0].min(), seen[..., 0].max(), w, margin, reflect)
    y0, y1 = _window(seen[..., 1].min(), seen[..., 1].max(), h, margin, reflect)
    src = gaussian_blur(images[:, y0:y1, x0:x1].permute(0, 3, 1, 2), sigmas.tolist())
    pw, ph = _next_pow2(x1 - x0), _next_pow2(y1 - y0)
    if (pw, ph) != (x1 - x0, y1 - y0):
        src = F.pad(src, (0, pw - (x1 - x0), 0, ph - (y1 - y0)))

    # grid_sample's normalised coordinates of the window: -1 and 1 at its (padded) edges.
    to_grid = np.array([[2.0 / pw, 0.0, -2.0 * x0 / pw - 1.0], [0.0, 2.0 / ph, -2.0 * y0 / ph - 1.0]])
    device, dtype = images.device, images.dtype
    centres = torch.ones(oh, ow, 3, device=device, dtype=dtype)
    centres[..., 0] = torch.arange(ow, device=device, dtype=dtype) + 0.5
    centres[..., 1] = (torch.arange(oh, device=device, dtype=dtype) + 0.5)[:, None]
    if border == "zeros":
        m = torch.as_tensor(compose_affines(to_grid, inv), device=device, dtype=dtype)
        grid = centres @ m.transpose(1, 2)[:, None]
    else:
        m = torch.as_tensor(inv, device=device, dtype=dtype)
        coords = _apply_border(centres @ m.transpose(1, 2)[:, None], images.new_tensor([w, h]), border)
        grid = torch.addcmul(images.new_tensor(to_grid[:, 2]), coords, images.new_tensor(to_grid.diagonal().copy()))
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.permute(0, 2, 3, 1)
