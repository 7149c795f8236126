"""DiffusionRig's global-latent encoder: a ResNet-18 whose classifier is Linear(512 -> latent_dim).

Laid out like torchvision's `resnet18()` so the checkpoint's `encoder.*` keys load unchanged
(conv1, bn1, layer1..4 of two basic blocks, 1x1 conv + BatchNorm `downsample` where the shape
changes, fc). Written here to keep torchvision out of models/. Input: the 256 px image in [-1, 1]
as DiffusionRig feeds it (no ImageNet normalisation).
"""
from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 conv + BatchNorm layers (the first strided), plus the (projected) input."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ResNet18Encoder(nn.Module):
    """Image (B, 3, H, W) -> global latent (B, latent_dim)."""

    widths = (64, 128, 256, 512)

    def __init__(self, latent_dim: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = 64
        for index, width in enumerate(self.widths, 1):
            stride = 1 if index == 1 else 2
            self.add_module(f"layer{index}", nn.Sequential(BasicBlock(channels, width, stride),
                                                           BasicBlock(width, width)))
            channels = width
        self.fc = nn.Linear(channels, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean(dim=(2, 3)))
