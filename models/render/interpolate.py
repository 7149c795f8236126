"""Vertex attributes to pixels, and the smooth vertex normals the buffers interpolate."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .raster import Fragments


def covered_pixels(fragments: Fragments) -> torch.Tensor:
    """Flat indices (into B * H * W, ascending, so grouped by batch item) of the covered pixels."""
    return torch.nonzero(fragments.face_index.reshape(-1) >= 0).squeeze(1)


def interpolate_at(fragments: Fragments, pixels: torch.Tensor, vertex_attrs: torch.Tensor,
                   faces: torch.Tensor | None = None) -> torch.Tensor:
    """interpolate() evaluated only at the given covered pixels (from covered_pixels): (N, C).

    Working on the list of covered pixels instead of whole images is what keeps the buffers cheap.
    """
    faces = fragments.faces if faces is None else faces.to(device=fragments.faces.device, dtype=torch.long)
    b, h, w = fragments.face_index.shape
    if faces.shape != fragments.faces.shape:
        raise ValueError(f"faces must have shape {tuple(fragments.faces.shape)}, got {tuple(faces.shape)}")
    attrs = vertex_attrs.to(fragments.bary.device)
    if attrs.dim() == 2:
        attrs = attrs[None]
    if attrs.dim() != 3 or attrs.shape[0] not in (1, b):
        raise ValueError(f"vertex_attrs must be (B={b}, V, C) or (V, C), got {tuple(vertex_attrs.shape)}")
    if not attrs.is_floating_point():
        attrs = attrs.to(fragments.bary.dtype)
    nv, c = attrs.shape[1], attrs.shape[2]
    flat = attrs.reshape(-1, c)
    vid = faces.index_select(0, fragments.face_index.reshape(-1).index_select(0, pixels))  # (N, 3)
    if attrs.shape[0] > 1:
        vid = vid + (torch.div(pixels, h * w, rounding_mode="floor") * nv)[:, None]
    weights = fragments.bary.reshape(-1, 3).index_select(0, pixels).to(flat.dtype)
    out = flat.index_select(0, vid[:, 0]) * weights[:, 0:1]
    out = out.addcmul(flat.index_select(0, vid[:, 1]), weights[:, 1:2])
    return out.addcmul(flat.index_select(0, vid[:, 2]), weights[:, 2:3])


def scatter_pixels(fragments: Fragments, pixels: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Per-pixel values (N, C) at `pixels` written into zero images (B, H, W, C). Differentiable."""
    b, h, w = fragments.face_index.shape
    out = values.new_zeros(b * h * w, values.shape[-1])
    out.index_copy_(0, pixels, values)
    return out.view(b, h, w, values.shape[-1])


def interpolate(fragments: Fragments, vertex_attrs: torch.Tensor, faces: torch.Tensor | None = None) -> torch.Tensor:
    """Barycentric blend of per-vertex attributes at every covered pixel; background is 0.

    vertex_attrs: (B, V, C), or (V, C) / (1, V, C) shared by the whole batch.
    faces: the triangles to read attributes through, (F, 3), defaulting to the rasterized ones. Pass a
    different table with the same F when attributes live on another indexing of the same triangles,
    e.g. FLAME's UV coordinates, which are split along seams (uv_faces index the UV list).
    Differentiable with respect to vertex_attrs. Returns (B, H, W, C).
    """
    pixels = covered_pixels(fragments)
    return scatter_pixels(fragments, pixels, interpolate_at(fragments, pixels, vertex_attrs, faces))


def face_vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unit vertex normals, each the area-weighted mean of its faces' right-handed normals.

    verts: (B, V, 3) or (V, 3); faces: (F, 3). Counter-clockwise faces (seen from outside) give
    outward normals. Vertices used by no face get a zero normal. Differentiable.
    """
    faces = faces.to(device=verts.device, dtype=torch.long)
    v0 = verts[..., faces[:, 0], :]
    v1 = verts[..., faces[:, 1], :]
    v2 = verts[..., faces[:, 2], :]
    face_n = torch.linalg.cross(v1 - v0, v2 - v0, dim=-1)  # length = twice the area: the weight
    n = torch.zeros_like(verts)
    for k in range(3):
        n = n.index_add(-2, faces[:, k], face_n)
    return F.normalize(n, dim=-1, eps=1e-20)
