"""Rendering a FACE_RIG into DiffusionRig's physical buffers, pixel-aligned with its aligned crop."""
from __future__ import annotations

from dataclasses import dataclass

import torch

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
    """`flame`: the FlameAssets a FLAME rig was fitted with (flame_backend.load_flame_assets)."""
    if rig.albedo.dim() != 3:
        raise ValueError("this rig's albedo is FLAME texture coefficients; rendering them needs FLAME's UV layout, "
                         "which the pack does not convert yet: fit without FLAME_texture so albedo comes per vertex")
    mesh = rig_mesh(rig, flame=flame)
    size = rig.crop_size
    buffers = render_buffers(mesh.screen, mesh.faces, mesh.normals, rig.light, size, size, albedo_vertex=rig.albedo)
    if rig.crops is not None and not all(item.valid for item in rig.crops.items):
        keep = torch.tensor([item.valid for item in rig.crops.items], device=buffers.mask.device)
        buffers = PhysicalBuffers(**{name: torch.where(keep.view(-1, *[1] * (value.dim() - 1)), value,
                                                       torch.zeros_like(value))
                                     for name, value in vars(buffers).items()})
    names = PHYSIC_ORDERS[order] if isinstance(order, str) else tuple(order)
    return RigRender(to_physic_cond(buffers, names), names, buffers, mesh)
