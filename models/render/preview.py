"""Displayable previews of the rig: buffers as RGB images, and mesh / landmark overlays on photos.

Images are (B, H, W, 3) floats in [0, 1], channels last (ComfyUI's IMAGE layout). Coordinates are
pixels, x right and y down, pixel i covering [i, i + 1) (the rasterizer's convention).
"""
from __future__ import annotations

import math

import torch

from .buffers import PhysicalBuffers


def buffers_to_images(buffers: PhysicalBuffers) -> dict[str, torch.Tensor]:
    """Every buffer as a [0, 1] RGB image, black where the mesh does not cover.

    rendered / albedo / shading are clamped; normals map [-1, 1] to [0, 1]; depth is rescaled per
    image within the mask, near = bright; the mask is white on black.
    """
    m = buffers.mask
    m3 = m[..., None]
    d = buffers.depth
    inside = m > 0
    big = torch.finfo(d.dtype).max
    near = torch.where(inside, d, big).flatten(1).amin(1)[:, None, None]
    far = torch.where(inside, d, -big).flatten(1).amax(1)[:, None, None]
    span = far - near
    depth = torch.where(span > 0, (far - d) / span.clamp(min=torch.finfo(d.dtype).tiny), 1.0).clamp(0, 1) * m
    return {
        "rendered": buffers.rendered.clamp(0, 1) * m3,
        "normal": ((buffers.normal + 1) * 0.5).clamp(0, 1) * m3,
        "albedo": buffers.albedo.clamp(0, 1) * m3,
        "shading": buffers.shading.clamp(0, 1) * m3,
        "depth": depth[..., None].expand(*depth.shape, 3),
        "mask": m3.expand(*m.shape, 3),
    }


def _blend(image: torch.Tensor, hits: torch.Tensor, colour, alpha: float) -> torch.Tensor:
    """image with the flat pixel indices `hits` painted `colour` at opacity `alpha`."""
    b, h, w, c = image.shape
    m = torch.zeros(b * h * w, dtype=torch.bool, device=image.device)
    m[hits] = True
    a = (m.view(b, h, w, 1).to(image.dtype)) * alpha
    col = torch.as_tensor(colour, dtype=image.dtype, device=image.device).reshape(-1)[:c]
    return image * (1 - a) + col * a


def _clip_segments(p0: torch.Tensor, p1: torch.Tensor, width: int, height: int):
    """Liang-Barsky clipping of segments (N, 2) to [0, width] x [0, height]; returns ends and a keep flag."""
    d = p1 - p0
    p = torch.stack([-d[:, 0], d[:, 0], -d[:, 1], d[:, 1]], 1)
    q = torch.stack([p0[:, 0], width - p0[:, 0], p0[:, 1], height - p0[:, 1]], 1)
    safe = torch.where(p == 0, torch.ones_like(p), p)
    r = q / safe
    t0 = torch.where(p < 0, r, torch.zeros_like(r)).amax(1).clamp(min=0)
    t1 = torch.where(p > 0, r, torch.ones_like(r)).amin(1).clamp(max=1)
    keep = (t0 <= t1) & ~((p == 0) & (q < 0)).any(1)
    return p0 + t0[:, None] * d, p0 + t1[:, None] * d, keep


def wireframe_overlay(image: torch.Tensor, verts_screen: torch.Tensor, faces: torch.Tensor,
                      colour=(0.0, 1.0, 0.0), alpha: float = 1.0, backface: str = "keep") -> torch.Tensor:
    """The mesh's edges drawn as 1-pixel lines over image (B, H, W, 3).

    verts_screen: (B, V, 2 or 3) pixel coordinates. backface="cull" draws only edges of front-facing
    (counter-clockwise on screen) triangles, which hides the far side of a closed mesh.
    """
    b, h, w, _ = image.shape
    dev = image.device
    faces = faces.to(device=dev, dtype=torch.long)
    xy = verts_screen[..., :2].to(device=dev, dtype=torch.float64).detach()
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).sort(1).values
    unique, inverse = torch.unique(edges, dim=0, return_inverse=True)
    if backface == "cull":
        t = xy[:, faces]  # (B, F, 3, 2)
        e1, e2 = t[:, :, 1] - t[:, :, 0], t[:, :, 2] - t[:, :, 0]
        front = (e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]) < 0
        visible = torch.zeros(b, unique.shape[0], device=dev).index_add_(1, inverse, front.repeat(1, 3).float()) > 0
    elif backface == "keep":
        visible = torch.ones(b, unique.shape[0], dtype=torch.bool, device=dev)
    else:
        raise ValueError(f"backface must be 'keep' or 'cull', got {backface!r}")
    p0 = xy[:, unique[:, 0]].reshape(-1, 2)
    p1 = xy[:, unique[:, 1]].reshape(-1, 2)
    batch = torch.arange(b, device=dev).repeat_interleave(unique.shape[0])
    ok = visible.reshape(-1) & torch.isfinite(p0).all(1) & torch.isfinite(p1).all(1)
    a, z, keep = _clip_segments(p0[ok], p1[ok], w, h)
    a, z, batch = a[keep], z[keep], batch[ok][keep]
    steps = torch.ceil((z - a).abs().amax(1)).long().clamp(min=1)  # <= 1 pixel per step: no gaps
    seg = torch.repeat_interleave(torch.arange(a.shape[0], device=dev), steps + 1)
    k = torch.arange(seg.numel(), device=dev) - (torch.cumsum(steps + 1, 0) - (steps + 1))[seg]
    pts = a[seg] + (k / steps[seg])[:, None] * (z - a)[seg]
    ix = pts[:, 0].floor().long().clamp(0, w - 1)
    iy = pts[:, 1].floor().long().clamp(0, h - 1)
    return _blend(image, batch[seg] * (h * w) + iy * w + ix, colour, alpha)


def points_overlay(image: torch.Tensor, points: torch.Tensor, colour=(1.0, 0.0, 0.0),
                   radius: float = 1.0, alpha: float = 1.0) -> torch.Tensor:
    """Dots over image (B, H, W, 3): every pixel whose centre is within `radius` of a point (B, N, 2+).

    The pixel containing the point is always painted, so radius 0 draws single pixels.
    Non-finite points are skipped.
    """
    b, h, w, _ = image.shape
    dev = image.device
    p = points[..., :2].to(device=dev, dtype=torch.float64).detach()
    r = max(float(radius), 0.0)
    reach = int(math.ceil(r)) + 1
    off = torch.arange(-reach, reach + 1, device=dev)
    oy, ox = torch.meshgrid(off, off, indexing="ij")
    base = torch.nan_to_num(p, nan=-1e9, posinf=-1e9, neginf=-1e9).clamp(-1e9, 1e9).floor()
    ix = base[..., 0, None] + ox.reshape(-1)  # (B, N, K)
    iy = base[..., 1, None] + oy.reshape(-1)
    dist2 = (ix + 0.5 - p[..., 0, None]) ** 2 + (iy + 0.5 - p[..., 1, None]) ** 2
    centre = (ox.reshape(-1) == 0) & (oy.reshape(-1) == 0)
    hit = ((dist2 <= r * r) | centre) & torch.isfinite(p).all(-1, keepdim=True)
    hit &= (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    batch = torch.arange(b, device=dev)[:, None, None].expand_as(ix)
    flat = batch * (h * w) + iy.long() * w + ix.long()
    return _blend(image, flat[hit], colour, alpha)
