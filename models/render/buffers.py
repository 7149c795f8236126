"""DiffusionRig's physical buffers: what a fitted face rig looks like, pixel-aligned with the photo.

DECA's SRenderY renders three images that DiffusionRig (and CapHuman) feed to the diffusion model:
albedo (texture x mask), normal (interpolated world-space vertex normals x mask) and rendered
(albedo x SH shading x mask, unclamped). We also keep the shading, depth and coverage mask, for
previews and for editing nodes. The buffers are NOT renormalised to [-1, 1]: the models were trained
on these raw ranges.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .interpolate import covered_pixels, interpolate_at, scatter_pixels
from .raster import Fragments, RasterSettings, rasterize
from .sh import scaled_light, sh_basis

# Channel orders of the 9-channel condition: DiffusionRig concatenates [rendered, normal, albedo]
# (train_util.py and inference.py); CapHuman's hint is [normal, albedo, rendered] (its inference.py).
PHYSIC_ORDERS = {
    "diffusionrig": ("rendered", "normal", "albedo"),
    "caphuman": ("normal", "albedo", "rendered"),
}
BUFFER_NAMES = ("rendered", "normal", "albedo", "shading", "depth", "mask")


@dataclass(frozen=True)
class PhysicalBuffers:
    """Pixel-aligned renders of the rig, channels last, all zero where the mesh does not cover.

    rendered, normal, albedo, shading: (B, H, W, 3); depth, mask: (B, H, W) (mask is 0/1, same dtype).
    """

    rendered: torch.Tensor
    normal: torch.Tensor
    albedo: torch.Tensor
    shading: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor


@dataclass(frozen=True)
class BufferSettings:
    """Rendering choices that change buffer values.

    renormalize_normals: rescale interpolated normals to unit length. DECA does not: its normals are
    a hair shorter than 1 inside triangles (by about a^2 / 8 where a is the angle between the
    vertex normals being blended), so False reproduces DECA's buffers, True shades the interpolated
    direction exactly.
    raster: rasterizer options (back-face handling; DECA keeps back faces, pytorch3d's default).
    """

    renormalize_normals: bool = True
    raster: RasterSettings = field(default_factory=RasterSettings)


def _sample_texture(fragments: Fragments, pixels: torch.Tensor, uv: torch.Tensor, uv_faces: torch.Tensor | None,
                    texture: torch.Tensor) -> torch.Tensor:
    """Texture colour (N, 3) at the covered pixels, read through interpolated UVs as DECA does.

    uv is in [0, 1] with v pointing up (OBJ / FLAME head_template convention); DECA maps it to the
    grid (2u - 1, 1 - 2v) and samples bilinearly with align_corners=False and zero padding.
    """
    b, h, w = fragments.face_index.shape
    uv_px = interpolate_at(fragments, pixels, uv, uv_faces)  # (N, 2)
    grid = torch.stack([uv_px[:, 0] * 2 - 1, 1 - uv_px[:, 1] * 2], -1)
    tex = texture.to(grid.dtype)
    if tex.dim() == 3:
        tex = tex[None]
    tex = tex.permute(0, 3, 1, 2)
    if tex.shape[0] == 1:  # one texture for all: sample every pixel in one call
        return F.grid_sample(tex, grid[None, :, None], mode="bilinear", padding_mode="zeros",
                             align_corners=False)[0, :, :, 0].T
    counts = torch.bincount(torch.div(pixels, h * w, rounding_mode="floor"), minlength=b).tolist()
    parts = [F.grid_sample(tex[i:i + 1], g[None, :, None], mode="bilinear", padding_mode="zeros",
                           align_corners=False)[0, :, :, 0].T for i, g in enumerate(grid.split(counts))]
    return torch.cat(parts)


def _shade(fragments: Fragments, pixels: torch.Tensor, normal: torch.Tensor, light: torch.Tensor) -> torch.Tensor:
    """SH shading (N, 3) of the covered pixels' normals, each under its own batch item's light."""
    b, h, w = fragments.face_index.shape
    basis = sh_basis(normal, scaled=False)
    light = scaled_light(light)
    if light.shape[0] == 1:
        return basis @ light[0]
    counts = torch.bincount(torch.div(pixels, h * w, rounding_mode="floor"), minlength=b).tolist()
    return torch.cat([part @ light[i] for i, part in enumerate(basis.split(counts))])


def render_buffers(verts_screen: torch.Tensor, faces: torch.Tensor, normals_world: torch.Tensor,
                   light: torch.Tensor, height: int, width: int, *,
                   albedo_vertex: torch.Tensor | None = None, uv: torch.Tensor | None = None,
                   uv_faces: torch.Tensor | None = None, texture: torch.Tensor | None = None,
                   settings: BufferSettings | None = None,
                   fragments: Fragments | None = None) -> PhysicalBuffers:
    """Render the physical buffers of a batch of posed meshes.

    verts_screen: (B, V, 3) pixel x (right), pixel y (down), depth (smaller = nearer).
    faces: (F, 3). normals_world: (B, V, 3) vertex normals in the rig's world frame (DECA: x right,
    y up, z toward the camera), e.g. face_vertex_normals of the unprojected mesh.
    light: (B, 9, 3) SH coefficients in DECA's convention (see sh.py); a batch of 1 is shared.
    Albedo comes either from albedo_vertex (B, V, 3) / (V, 3), or from texture (B or 1, Ht, Wt, 3)
    read through uv ((B, V', 2) or (V', 2), in [0, 1], v up) indexed by uv_faces (F, 3), which
    defaults to faces when the UVs share the mesh's vertices.
    fragments: reuse a rasterization of the same verts_screen / faces / size.
    Everything is computed in verts_screen's dtype (float32 for half precision) on its device;
    differentiable with respect to normals, albedo, texture and light (not vertex positions).
    """
    settings = settings or BufferSettings()
    if (albedo_vertex is None) == (texture is None):
        raise ValueError("give exactly one albedo source: albedo_vertex, or uv + texture")
    if texture is not None and uv is None:
        raise ValueError("a texture needs uv coordinates")
    if light.dim() != 3 or light.shape[-2:] != (9, 3):
        raise ValueError(f"light must be (B, 9, 3), got {tuple(light.shape)}")
    if fragments is None:
        fragments = rasterize(verts_screen, faces, height, width, settings.raster)
    if light.shape[0] not in (1, fragments.mask.shape[0]):
        raise ValueError(f"light has batch {light.shape[0]}, the meshes {fragments.mask.shape[0]}")
    dtype = fragments.bary.dtype
    device = fragments.bary.device
    pixels = covered_pixels(fragments)

    normals_world = normals_world.to(device=device, dtype=dtype)
    if albedo_vertex is not None:  # one pass over the pixels for both per-vertex attributes
        albedo_vertex = albedo_vertex.to(device=device, dtype=dtype)
        n, a = (t[None] if t.dim() == 2 else t for t in (normals_world, albedo_vertex))
        batch = max(n.shape[0], a.shape[0])
        both = interpolate_at(fragments, pixels, torch.cat([n.expand(batch, -1, -1), a.expand(batch, -1, -1)], -1))
        normal, albedo = both[:, :3], both[:, 3:]
    else:
        normal = interpolate_at(fragments, pixels, normals_world)
        albedo = _sample_texture(fragments, pixels, uv.to(device=device, dtype=dtype), uv_faces,
                                 texture.to(device))
    if settings.renormalize_normals:
        normal = F.normalize(normal, dim=-1, eps=1e-12)
    shading = _shade(fragments, pixels, normal, light.to(device=device, dtype=dtype))
    rendered = albedo * shading

    def image(values: torch.Tensor) -> torch.Tensor:
        return scatter_pixels(fragments, pixels, values)

    return PhysicalBuffers(rendered=image(rendered), normal=image(normal), albedo=image(albedo),
                           shading=image(shading), depth=fragments.depth, mask=fragments.mask.to(dtype))


def to_physic_cond(buffers: PhysicalBuffers, order: str | tuple[str, ...] = "diffusionrig") -> torch.Tensor:
    """The buffers concatenated channels-first as a model's spatial condition.

    order: "diffusionrig" -> [rendered, normal, albedo] (B, 9, H, W), DiffusionRig's physic_cond;
    "caphuman" -> [normal, albedo, rendered], CapHuman's 9-channel hint; or any tuple of buffer names
    (depth and mask contribute one channel each).
    """
    names = PHYSIC_ORDERS[order] if isinstance(order, str) and order in PHYSIC_ORDERS else order
    if isinstance(names, str) or not names or any(n not in BUFFER_NAMES for n in names):
        raise ValueError(f"order must be one of {tuple(PHYSIC_ORDERS)} or a tuple of {BUFFER_NAMES}, got {order!r}")
    parts = []
    for name in names:
        t = getattr(buffers, name)
        parts.append(t[:, None] if t.dim() == 3 else t.permute(0, 3, 1, 2))
    return torch.cat(parts, 1)
