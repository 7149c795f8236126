"""Custom wire types of the identity nodes and the immutable values they carry.

FACE_ID          FaceIdentity: Face2Diffusion MSID features, one (1536,) row per identity (one per
                 face, or one average of several photos of a person), float32 on the CPU.
FACE_EXPRESSION  FaceExpression: what fills the mapping network's 64-d expression slot.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from comfy_api.latest import io

FaceId = io.Custom("FACE_ID")
FaceExpressionWire = io.Custom("FACE_EXPRESSION")


@dataclass(frozen=True)
class FaceIdentity:
    features: torch.Tensor  # (N, 1536)
    labels: tuple[str, ...]  # where each row came from, for reports

    def __post_init__(self):
        if self.features.ndim != 2 or len(self.labels) != len(self.features):
            raise ValueError(f"FaceIdentity needs (N, D) features and N labels, got {tuple(self.features.shape)} "
                             f"and {len(self.labels)}")

    def __len__(self) -> int:
        return len(self.features)


@dataclass(frozen=True)
class FaceExpression:
    """The expression slot as `null_scale * null_exp`, the mapping network's learned null vector.

    Face2Diffusion infers with the null vector (scale 1); no map from the pack's rigs to the
    64-d code has been trained, so the null vector is the only source.
    """
    null_scale: float = 1.0
