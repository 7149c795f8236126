"""Per-vertex albedo and SH lighting estimated from the photo, by least squares on the mesh normals.

The photo's colour at a visible vertex is modelled as albedo * (SH basis(normal) . light), DECA's
image formation. With one photo the split between albedo and light is ambiguous, so the fit fixes
it the way an artist would expect: the light's constant band is white and the mean shading over
the visible face is 1, so `albedo` carries the skin colour and `light` the direction, contrast and
tint of the illumination.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..render.raster import rasterize
from ..render.sh import sh_basis
from .geometry import RigMesh

MIN_VISIBLE = 24  # vertices needed for a 9-coefficient fit per channel
RIDGE = 1e-3
DEPTH_TOLERANCE = 1.5  # px: a vertex within this of the visible surface counts as seen


def sample_colours(images: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear colours (B, V, 3) of (B, H, W, 3) images at (B, V, 2) pixel positions (centres at +0.5)."""
    h, w = images.shape[1:3]
    grid = torch.stack([points[..., 0] * 2 / w - 1, points[..., 1] * 2 / h - 1], -1)[:, :, None]
    out = F.grid_sample(images.permute(0, 3, 1, 2), grid.to(images.dtype), mode="bilinear",
                        padding_mode="border", align_corners=False)
    return out[..., 0].permute(0, 2, 1)


def visible_vertices(mesh: RigMesh, size: int) -> torch.Tensor:
    """(B, V) bool: the vertex faces the camera and nothing of the mesh lies in front of it."""
    frags = rasterize(mesh.screen, mesh.faces, size, size)
    xy = mesh.screen[..., :2].floor().long()
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < size) & (xy[..., 1] >= 0) & (xy[..., 1] < size)
    xs, ys = xy[..., 0].clamp(0, size - 1), xy[..., 1].clamp(0, size - 1)
    batch = torch.arange(xy.shape[0], device=xy.device)[:, None]
    surface = frags.depth[batch, ys, xs]
    covered = frags.mask[batch, ys, xs]
    return inside & covered & (mesh.screen[..., 2] <= surface + DEPTH_TOLERANCE) & (mesh.normals[..., 2] > 0.05)


def fit_appearance(images: torch.Tensor, mesh: RigMesh, mirror: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """albedo (B, V, 3) in [0, 1] and light (B, 9, 3) from the aligned crops the mesh was fitted to."""
    size = images.shape[1]
    colours = sample_colours(images, mesh.screen[..., :2])
    seen = visible_vertices(mesh, size)
    basis = sh_basis(mesh.normals)  # (B, V, 9), DECA's constants included
    albedo, light = [], []
    for b in range(images.shape[0]):
        a, l = _fit_one(colours[b], basis[b], seen[b], mirror)
        albedo.append(a)
        light.append(l)
    return torch.stack(albedo), torch.stack(light)


def _fit_one(colours: torch.Tensor, basis: torch.Tensor, seen: torch.Tensor, mirror: torch.Tensor):
    dtype = colours.dtype
    if int(seen.sum()) < MIN_VISIBLE:  # nothing to fit: flat light, the mean colour as albedo
        light = torch.zeros(9, 3, dtype=dtype, device=colours.device)
        light[0] = 1.0 / float(basis[0, 0])
        return colours.clamp(0, 1), light
    a, y = basis[seen].double(), colours[seen].double()
    gram = a.T @ a + RIDGE * len(a) * torch.diag(torch.tensor([0.0] + [1.0] * 8, dtype=a.dtype, device=a.device))
    raw = torch.linalg.solve(gram, a.T @ y)  # (9, 3): light scaled by each channel's mean albedo
    dc = raw[0].clamp_min(1e-6)
    shape = (a @ raw) / dc  # shading up to a per-channel factor, constant band normalised to 1
    gain = 1.0 / shape.mean().clamp_min(1e-6)
    light = raw / dc * gain
    shading = (basis.double() @ light).clamp_min(0.05)
    albedo = (colours.double() / shading).clamp(0, 1)
    # unseen vertices borrow their mirror's albedo, else the mean of what was seen
    fallback = torch.where(seen[mirror, None], albedo[mirror], albedo[seen].mean(0, keepdim=True))
    albedo = torch.where(seen[:, None], albedo, fallback)
    return albedo.to(dtype), light.to(dtype)
