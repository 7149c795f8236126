"""Rendering a FACE_RIG into DiffusionRig's physical buffers, pixel-aligned with its aligned crop."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..flame.files import CONVERTER, TEXTURE_FILE, UV_FILE
from ..render.buffers import PHYSIC_ORDERS, PhysicalBuffers, render_buffers, to_physic_cond
from .geometry import RigMesh, rig_mesh
from .rig import FaceRig


@dataclass(frozen=True)
class RigRender:
    """The RENDER_BUFFERS wire value.

    physic_cond: (B, 9, H, W) the three 3-channel buffers concatenated in `order` (DiffusionRig:
    rendered, normal, albedo; unnormalised, as its UNet was trained); buffers: every buffer, channels
    last, including shading, depth and the coverage mask; mesh: the posed mesh that was rendered.
    Faces whose crop is a no-face placeholder render empty.
    """

    physic_cond: torch.Tensor
    order: tuple[str, ...]
    buffers: PhysicalBuffers
    mesh: RigMesh


def render_rig(rig: FaceRig, order: str | tuple[str, ...] = "diffusionrig", flame=None) -> RigRender:
    """`flame`: the FlameAssets a FLAME rig was fitted with (flame_backend.load_flame_assets).

    Per-vertex albedo (B, V, 3) is interpolated; FLAME texture coefficients (B, K) are turned into
    DECA's UV albedo image and read through FLAME's UV layout, as DiffusionRig renders them.
    """
    if rig.albedo.dim() == 2:
        albedo = _texture_albedo(rig, flame)
    elif rig.albedo.dim() == 3:
        albedo = {"albedo_vertex": rig.albedo}
    else:
        raise ValueError(f"rig albedo must be per-vertex (B, V, 3) or texture coefficients (B, K), "
                         f"got {tuple(rig.albedo.shape)}")
    mesh = rig_mesh(rig, flame=flame)
    size = rig.crop_size
    buffers = render_buffers(mesh.screen, mesh.faces, mesh.normals, rig.light, size, size, **albedo)
    if rig.crops is not None and not all(item.valid for item in rig.crops.items):
        keep = torch.tensor([item.valid for item in rig.crops.items], device=buffers.mask.device)
        buffers = PhysicalBuffers(**{name: torch.where(keep.view(-1, *[1] * (value.dim() - 1)), value,
                                                       torch.zeros_like(value))
                                     for name, value in vars(buffers).items()})
    names = PHYSIC_ORDERS[order] if isinstance(order, str) else tuple(order)
    return RigRender(to_physic_cond(buffers, names), names, buffers, mesh)


def _texture_albedo(rig: FaceRig, flame) -> dict[str, torch.Tensor]:
    """render_buffers' uv / uv_faces / texture arguments for a rig whose albedo is FLAME texture coefficients."""
    missing = [f"{name} (convert {source} with {CONVERTER} {flag})"
               for name, source, flag, present in (
                   (TEXTURE_FILE, "FLAME_texture.npz", "--texture", getattr(flame, "texture", None) is not None),
                   (UV_FILE, "DECA's data/head_template.obj", "--uv", getattr(flame, "uv", None) is not None))
               if not present]
    if missing:
        raise ValueError("this rig's albedo is FLAME texture coefficients; rendering them needs FLAME's texture "
                         f"space and UV layout, missing: {'; '.join(missing)}")
    device = rig.albedo.device
    image = flame.texture.albedo_uv(rig.albedo)  # (B, 3, H, W), RGB, DECA's 0..1 scale
    return {"uv": flame.uv.uv.to(device), "uv_faces": flame.uv.uv_faces.to(device),
            "texture": image.permute(0, 2, 3, 1).to(device)}
