"""From FACE_RIG parameters to a posed mesh in the aligned crop: world and screen vertices.

World frame: DECA's (x right, y up, z toward the camera). The orthographic camera maps world xy
to the crop's NDC (x right, y up, [-1, 1]) as s * (X_xy + t); screen pixels then run x right and
y down with pixel centres at +0.5, and depth = -z scaled like x (smaller = nearer), which is what
models/render expects.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..render.interpolate import face_vertex_normals
from .action_units import action_unit_basis
from .jaw import apply_jaw
from .rig import FaceRig
from .rotation import axis_angle_to_matrix
from .topology import load_mesh468


@dataclass(frozen=True)
class RigMesh:
    world: torch.Tensor  # (B, V, 3) posed vertices, world frame
    screen: torch.Tensor  # (B, V, 3) crop pixels x, y and depth
    normals: torch.Tensor  # (B, V, 3) world-frame vertex normals
    faces: torch.Tensor  # (F, 3)


def canonical_vertices(rig: FaceRig) -> torch.Tensor:
    """The face in its own frame, before the global pose: identity + expression + edits + jaw."""
    if rig.geometry != "mesh468":
        raise ValueError(f"canonical_vertices handles mesh468 rigs; this rig is {rig.geometry!r}")
    mesh = load_mesh468()
    basis = action_unit_basis(mesh).to(rig.identity)
    weights = rig.expression + rig.action_units
    verts = rig.identity + torch.einsum("bk,kvc->bvc", weights, basis)
    return apply_jaw(verts, rig.jaw, mesh)


def to_screen(world: torch.Tensor, camera: torch.Tensor, size: int) -> torch.Tensor:
    s, t = camera[:, None, :1], camera[:, None, 1:]
    ndc = s * (world[..., :2] + t)
    half = size / 2.0
    x = (ndc[..., 0] + 1.0) * half
    y = (1.0 - ndc[..., 1]) * half
    depth = -world[..., 2] * s[..., 0] * half
    return torch.stack([x, y, depth], -1)


def from_screen_xy(points: torch.Tensor, camera: torch.Tensor, size: int) -> torch.Tensor:
    """Crop pixel (x, y) back to world xy (the inverse of to_screen's first two rows)."""
    half = size / 2.0
    ndc = torch.stack([points[..., 0] / half - 1.0, 1.0 - points[..., 1] / half], -1)
    return ndc / camera[:, None, :1] - camera[:, None, 1:]


def rig_mesh(rig: FaceRig, flame=None) -> RigMesh:
    """The posed mesh; a FLAME rig needs its FlameAssets (`flame`, from flame_backend.load_flame_assets)."""
    if rig.geometry == "flame":
        if flame is None:
            raise ValueError("a FLAME rig needs its FLAME assets to build a mesh: pass flame=load_flame_assets(folder)")
        from .flame_backend import flame_rig_mesh  # imported here: flame_backend builds on this module

        return flame_rig_mesh(rig, flame)
    mesh = load_mesh468()
    local = canonical_vertices(rig)
    world = local @ axis_angle_to_matrix(rig.pose).transpose(-1, -2)
    faces = mesh.triangles.to(world.device)
    return RigMesh(world, to_screen(world, rig.camera, rig.crop_size), face_vertex_normals(world, faces), faces)
