"""DiffusionRig's global-latent encoder: a ResNet-18 whose classifier is Linear(512 -> latent_dim).

Laid out like torchvision's `resnet18()` so the checkpoint's `encoder.*` keys load unchanged
(conv1, bn1, layer1..4 of two basic blocks, 1x1 conv + BatchNorm `downsample` where the shape
changes, fc). Input: the 256 px image in [-1, 1] as DiffusionRig feeds it (no ImageNet normalisation).
"""
from __future__ import annotations

import torch
from torch import nn

from ..backbones.resnet import ResNet18Trunk


class ResNet18Encoder(ResNet18Trunk):
    """Image (B, 3, H, W) -> global latent (B, latent_dim)."""

    def __init__(self, latent_dim: int = 64):
        super().__init__()
        self.fc = nn.Linear(self.out_features, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(super().forward(x))
