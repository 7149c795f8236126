"""FLAME head model (Li et al. 2017) as a PyTorch module with DECA's parameterisation.

DECA drives FLAME with 100 shape and 50 expression coefficients and a 6-vector pose: the global
head rotation and the jaw rotation, both axis-angle. The neck and eyeball rotations are zero in
DECA; they are optional inputs here. The buffers come from a converted FLAME 2020 file
(`files.load_flame_model`) or directly from `official.read_flame_pickle`.
"""
from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

import torch
from torch import nn

from ..loading import ModelFileError, check_state_dict
from .config import DECA_CONFIG, FLAME2020, FlameConfig, FlameTopology, flame_tensor_shapes
from .landmarks import barycentric_landmarks
from .lbs import linear_blend_skinning


def _batched(name: str, value: torch.Tensor | None, batch: int, width: int, like: torch.Tensor) -> torch.Tensor:
    if value is None:
        return like.new_zeros(batch, width)
    if value.ndim != 2 or value.shape != (batch, width):
        raise ValueError(f"FLAME {name} must have shape ({batch}, {width}), got {tuple(value.shape)}")
    return value.to(like)


class FlameModel(nn.Module):
    """Vertices (B, 5023, 3) from DECA's shape, expression and pose codes by linear blend skinning.

    Buffers: `v_template` (V, 3); `shapedirs` (V, 3, n_shape + n_exp), the first n_shape identity
    components followed by the first n_exp expression components; `posedirs` (V, 3, 36);
    `J_regressor` (5, V) dense; `lbs_weights` (V, 5); `faces` (F, 3); `parents` (5,).
    They are non-persistent: they come from the FLAME file, not from training.
    """

    def __init__(self, tensors: Mapping[str, torch.Tensor], config: FlameConfig = DECA_CONFIG,
                 topology: FlameTopology = FLAME2020, source: str | PathLike[str] = "<FLAME tensors>"):
        super().__init__()
        config.check(topology)
        check_state_dict(tensors, flame_tensor_shapes(topology), "FLAME 2020 model", source)
        parents = tuple(int(p) for p in tensors["parents"].tolist())
        if parents[0] != -1 or any(not 0 <= p < i for i, p in enumerate(parents[1:], 1)):
            raise ModelFileError(source, f"FLAME kinematic tree {parents} is not a tree rooted at joint 0 "
                                         f"with parents before children (FLAME 2020: {topology.parents})")
        faces = tensors["faces"].long()
        if faces.numel() and (faces.min() < 0 or faces.max() >= topology.n_vertices):
            raise ModelFileError(source, f"FLAME faces index vertices outside [0, {topology.n_vertices})")
        self.config = config
        self.topology = topology
        self.parents = parents
        dirs = torch.cat([tensors["shapedirs"][..., :config.n_shape], tensors["exprdirs"][..., :config.n_exp]], -1)
        for name, value in (("v_template", tensors["v_template"]), ("shapedirs", dirs),
                            ("posedirs", tensors["posedirs"]), ("J_regressor", tensors["J_regressor"]),
                            ("lbs_weights", tensors["lbs_weights"])):
            self.register_buffer(name, value.detach().to(torch.float32).contiguous(), persistent=False)
        self.register_buffer("faces", faces.contiguous(), persistent=False)
        self.register_buffer("parents_index", torch.tensor(parents, dtype=torch.long), persistent=False)

    def full_pose(self, pose: torch.Tensor, neck_pose: torch.Tensor | None = None,
                  eye_pose: torch.Tensor | None = None) -> torch.Tensor:
        """The 15-vector FLAME pose (global, neck, jaw, eye, eye) from DECA's 6-vector pose."""
        batch = pose.shape[0]
        pose = _batched("pose", pose, batch, 6, self.v_template)
        neck = _batched("neck_pose", neck_pose, batch, 3, self.v_template)
        eyes = _batched("eye_pose", eye_pose, batch, 6, self.v_template)
        return torch.cat([pose[:, :3], neck, pose[:, 3:], eyes], dim=1)

    def forward(self, shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor,
                neck_pose: torch.Tensor | None = None, eye_pose: torch.Tensor | None = None) -> torch.Tensor:
        """Vertices (B, V, 3).

        shape (B, n_shape), expression (B, n_exp); pose (B, 6) = global axis-angle then jaw
        axis-angle; neck_pose (B, 3) and eye_pose (B, 6) (the two eyeball joints, in the file's
        joint order) default to zeros, as in DECA.
        """
        vertices, _ = self.posed(shape, expression, pose, neck_pose, eye_pose)
        return vertices

    def posed(self, shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor,
              neck_pose: torch.Tensor | None = None,
              eye_pose: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertices (B, V, 3) and posed joints (B, 5, 3)."""
        batch = shape.shape[0]
        shape = _batched("shape", shape, batch, self.config.n_shape, self.v_template)
        expression = _batched("expression", expression, batch, self.config.n_exp, self.v_template)
        full = self.full_pose(pose, neck_pose, eye_pose)
        return linear_blend_skinning(torch.cat([shape, expression], 1), full, self.v_template, self.shapedirs,
                                     self.posedirs, self.J_regressor, self.parents, self.lbs_weights)

    def landmarks(self, vertices: torch.Tensor, faces_idx: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
        """Points (B, L, 3) embedded in this mesh's triangles `faces_idx` with barycentric weights `bary`."""
        return barycentric_landmarks(vertices, self.faces, faces_idx, bary)
