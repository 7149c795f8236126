"""FLAME's 68 facial landmarks, embedded in the mesh by triangle and barycentric weights.

DECA's `landmark_embedding.npy` provides three embeddings:

* static: 51 inner-face points (brows, eyes, nose, mouth), fixed triangles;
* dynamic: the 17 jaw-contour points for 79 yaw bins (0..39 degrees, then -1..-39 degrees),
  because the visible silhouette of the cheek moves as the head turns;
* full (optional): all 68 points at fixed triangles, used for 3D landmarks.

`FlameLandmarks.deca68` concatenates contour then static, the order of DECA's 2D landmarks.
The shapes below follow DECA's use of the file (51 static points, 79 yaw bins of 17 contour points,
68 full points, possibly stored with a leading axis of 1); they are not verified against a real
`landmark_embedding.npy`, which is registration-gated.
"""
from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

import torch
from torch import nn

from ..loading import ModelFileError, check_state_dict
from .config import FLAME2020, FlameTopology
from .rotation import axis_angle_to_matrix, yaw_degrees

N_STATIC, N_CONTOUR, N_FULL = 51, 17, 68
MAX_YAW_BIN = 39  # degrees; bins 0..39 for yaw >= 0 and 40..78 for yaw -1..-39
N_YAW_BINS = 2 * MAX_YAW_BIN + 1

LANDMARK_SHAPES = {
    "static_lmk_faces_idx": (N_STATIC,),
    "static_lmk_bary_coords": (N_STATIC, 3),
    "dynamic_lmk_faces_idx": (N_YAW_BINS, N_CONTOUR),
    "dynamic_lmk_bary_coords": (N_YAW_BINS, N_CONTOUR, 3),
    "full_lmk_faces_idx": (N_FULL,),
    "full_lmk_bary_coords": (N_FULL, 3),
}
OPTIONAL_LANDMARKS = ("full_lmk_faces_idx", "full_lmk_bary_coords")


def barycentric_landmarks(vertices: torch.Tensor, faces: torch.Tensor, faces_idx: torch.Tensor,
                          bary: torch.Tensor) -> torch.Tensor:
    """Points (B, L, 3): for each landmark, its triangle's corners weighted by `bary`.

    faces_idx is (L,) or (B, L) triangle indices into faces (F, 3); bary is (L, 3) or (B, L, 3).
    """
    batch = vertices.shape[0]
    faces_idx = faces_idx.expand(batch, -1) if faces_idx.ndim == 1 else faces_idx
    bary = bary.expand(batch, -1, -1) if bary.ndim == 2 else bary
    corners = faces[faces_idx]                                           # (B, L, 3) vertex ids
    picked = torch.gather(vertices, 1, corners.reshape(batch, -1, 1).expand(-1, -1, 3))
    picked = picked.reshape(batch, -1, 3, 3)                             # (B, L, corner, xyz)
    return (bary.to(vertices).unsqueeze(-1) * picked).sum(2)


def yaw_bins(yaw: torch.Tensor) -> torch.Tensor:
    """DECA's contour bin for a head yaw in degrees: round, then 0..39 for >= 0, 40..78 for < 0
    (beyond +-39 degrees the outermost bin is kept)."""
    degrees = torch.round(yaw).long()
    return torch.where(degrees >= 0, degrees.clamp(max=MAX_YAW_BIN), MAX_YAW_BIN + (-degrees).clamp(max=MAX_YAW_BIN))


class FlameLandmarks(nn.Module):
    """Landmark embedding buffers and the static / dynamic / full landmark lookups."""

    def __init__(self, tensors: Mapping[str, torch.Tensor], topology: FlameTopology = FLAME2020,
                 source: str | PathLike[str] = "<landmark tensors>"):
        super().__init__()
        check_state_dict(tensors, LANDMARK_SHAPES, "FLAME landmark embedding", source, optional=OPTIONAL_LANDMARKS)
        present = [k for k in OPTIONAL_LANDMARKS if k in tensors]
        if len(present) == 1:
            raise ModelFileError(source, f"has {present[0]} without its partner; the full 68-point embedding "
                                         f"needs both {OPTIONAL_LANDMARKS}")
        for name in LANDMARK_SHAPES:
            if name not in tensors:
                continue
            value = tensors[name]
            if name.endswith("faces_idx"):
                value = value.long()
                if value.numel() and (value.min() < 0 or value.max() >= topology.n_faces):
                    raise ModelFileError(source, f"{name} indexes triangles outside [0, {topology.n_faces})")
            else:
                value = value.to(torch.float32)
            self.register_buffer(name, value.detach().contiguous(), persistent=False)
        self.has_full = bool(present)

    def static(self, vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """The 51 inner-face landmarks (B, 51, 3)."""
        return barycentric_landmarks(vertices, faces, self.static_lmk_faces_idx, self.static_lmk_bary_coords)

    def contour_bins(self, pose: torch.Tensor, neck_pose: torch.Tensor | None = None) -> torch.Tensor:
        """Yaw bin (B,) from the head's rotation relative to the body: global rotation after the neck."""
        rotation = axis_angle_to_matrix(pose[:, :3])
        if neck_pose is not None:
            rotation = rotation @ axis_angle_to_matrix(neck_pose)
        return yaw_bins(yaw_degrees(rotation))

    def contour(self, vertices: torch.Tensor, faces: torch.Tensor, pose: torch.Tensor,
                neck_pose: torch.Tensor | None = None) -> torch.Tensor:
        """The 17 jaw-contour landmarks (B, 17, 3) for the head yaw given by `pose` (B, 6)."""
        bins = self.contour_bins(pose, neck_pose)
        return barycentric_landmarks(vertices, faces, self.dynamic_lmk_faces_idx[bins],
                                     self.dynamic_lmk_bary_coords[bins])

    def deca68(self, vertices: torch.Tensor, faces: torch.Tensor, pose: torch.Tensor,
               neck_pose: torch.Tensor | None = None) -> torch.Tensor:
        """DECA's 68 2D-fitting landmarks (B, 68, 3): 17 contour points, then the 51 static ones."""
        return torch.cat([self.contour(vertices, faces, pose, neck_pose), self.static(vertices, faces)], 1)

    def full68(self, vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """The fixed 68-point embedding (B, 68, 3) (DECA's 3D landmarks)."""
        if not self.has_full:
            raise ValueError("this landmark embedding has no full_lmk_* entries (68 fixed points)")
        return barycentric_landmarks(vertices, faces, self.full_lmk_faces_idx, self.full_lmk_bary_coords)
