"""Custom wire types of the identity nodes and the immutable values they carry.

FACE_ID          FaceIdentity: Face2Diffusion MSID features, one (1536,) row per identity (one per
                 face, or one average of several photos of a person), float32 on the CPU.
FACE_EXPRESSION  FaceExpression: what fills the mapping network's 64-d expression slot: the learned
                 null vector with a scale, or (N, 64) expression codes with a blend strength.
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
    """What fills the mapping network's 64-d expression slot (Img2TextMapping.expression_input).

    codes None     the learned null vector `null_exp` times `strength`: the official inference is
                   strength 1, which leaves the expression to the prompt; 0 feeds zeros.
    codes (N, 64)  one expression code per face (from a FACE_RIG through the trained map, or
                   Deep3DFaceRecon's BFM expression coefficients of a photo); the slot is
                   `null_exp + strength * (code - null_exp)`, so 0 is the official null vector and 1
                   the code itself.
    The codes tensor is float32 on the CPU and never written to (clone before changing).
    """
    codes: torch.Tensor | None = None
    strength: float = 1.0
    source: str = "learned null vector"
    labels: tuple[str, ...] = ()  # where each code came from, for reports

    def __post_init__(self):
        object.__setattr__(self, "strength", float(self.strength))
        if self.codes is None:
            return
        if self.codes.ndim != 2 or len(self.codes) == 0:
            raise ValueError(f"FaceExpression codes must be (N, D) with N >= 1, got {tuple(self.codes.shape)}")
        labels = tuple(self.labels) or tuple(f"face {i}" for i in range(len(self.codes)))
        if len(labels) != len(self.codes):
            raise ValueError(f"FaceExpression has {len(self.codes)} codes but {len(labels)} labels")
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return 0 if self.codes is None else len(self.codes)
