"""DECA's coarse encoder E_flame: a face crop to FLAME, camera and lighting codes.

E_flame is a ResNet-50 trunk (`encoder.*`) followed by an MLP (`layers.0` 2048 -> 1024, ReLU,
`layers.2` 1024 -> 236). Its 236 outputs are, in order: shape 100, tex 50, exp 50, pose 6
(global axis-angle, jaw axis-angle), cam 3 (orthographic scale, tx, ty) and light 27 (9 spherical
harmonics bands x RGB). The state-dict keys are those of `deca_model.tar["E_flame"]`; EMOCA's
expression encoder has the same layout with a narrower last layer (`DecaResnetEncoder(53)`).
"""
from __future__ import annotations

import torch
from torch import nn

from ..backbones.resnet import ResNet50Trunk

INPUT_SIZE = 224  # DECA's crop size; the official AvgPool2d(7) only yields 2048 features at 224
CODE_SPLIT: tuple[tuple[str, int], ...] = (("shape", 100), ("tex", 50), ("exp", 50), ("pose", 6), ("cam", 3),
                                           ("light", 27))
CODE_SIZE = sum(n for _, n in CODE_SPLIT)


class DecaResnetEncoder(nn.Module):
    """ResNet-50 trunk + two-layer MLP regressor, as DECA's and EMOCA's ResnetEncoder."""

    def __init__(self, out_features: int):
        super().__init__()
        self.encoder = ResNet50Trunk()
        self.layers = nn.Sequential(nn.Linear(ResNet50Trunk.out_features, 1024), nn.ReLU(),
                                    nn.Linear(1024, out_features))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, 3, 224, 224) RGB in [0, 1], not mean/std normalised (DECA's convention)."""
        if images.ndim != 4 or images.shape[1:] != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"DECA encoder expects (B, 3, {INPUT_SIZE}, {INPUT_SIZE}) RGB crops in [0, 1], "
                             f"got {tuple(images.shape)}")
        return self.layers(self.encoder(images))


def decompose_code(code: torch.Tensor) -> dict[str, torch.Tensor]:
    """Split E_flame's (B, 236) output into DECA's named codes; light becomes (B, 9, 3)."""
    if code.ndim != 2 or code.shape[1] != CODE_SIZE:
        raise ValueError(f"DECA code must have shape (B, {CODE_SIZE}), got {tuple(code.shape)}")
    parts = dict(zip((name for name, _ in CODE_SPLIT), code.split([n for _, n in CODE_SPLIT], dim=1), strict=True))
    parts["light"] = parts["light"].reshape(code.shape[0], 9, 3)
    return parts


class DecaFlameEncoder(DecaResnetEncoder):
    """DECA's E_flame (236 outputs) with `decompose` / `encode` to named codes."""

    def __init__(self):
        super().__init__(CODE_SIZE)

    @staticmethod
    def decompose(code: torch.Tensor) -> dict[str, torch.Tensor]:
        """shape (B,100), tex (B,50), exp (B,50), pose (B,6), cam (B,3), light (B,9,3)."""
        return decompose_code(code)

    def encode(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named codes for (B, 3, 224, 224) crops in [0, 1]."""
        return decompose_code(self(images))


def encoder_state_shapes(out_features: int = CODE_SIZE) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of the encoder's state dict, computed without allocating weights."""
    with torch.device("meta"):
        module = DecaResnetEncoder(out_features)
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}
