"""ResNet trunks (no classifier) with torchvision-compatible names.

DECA's encoders and Deep3DFaceRecon's coefficient regressor are built on a ResNet-50, DiffusionRig's
global-latent encoder on a ResNet-18, all laid out like torchvision's (stride on the 3x3 conv of each bottleneck, 1x1 conv + BatchNorm shortcut when the
shape changes), initialised from torchvision's weights, so their checkpoint keys are `conv1`, `bn1`,
`layer1..4.N.{conv1..3,bn1..3,downsample.0/1}`. Written here to keep torchvision out of models/.
"""
from __future__ import annotations

import torch
from torch import nn


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, plus the (projected) input."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class BasicBlock(nn.Module):
    """Two 3x3 conv + BatchNorm layers (the first strided), plus the (projected) input (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != width:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, width, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ResNetTrunk(nn.Module):
    """Image (B, 3, H, W) -> globally averaged features (B, out_features): stem, four stages, no classifier."""

    widths = (64, 128, 256, 512)

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], blocks: tuple[int, int, int, int]):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = 64
        for index, (count, width) in enumerate(zip(blocks, self.widths, strict=True), 1):
            stride = 1 if index == 1 else 2
            layer = []
            for number in range(count):
                layer.append(block(channels, width, stride if number == 0 else 1))
                channels = width * block.expansion
            self.add_module(f"layer{index}", nn.Sequential(*layer))
        self.out_features = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))


class ResNet50Trunk(ResNetTrunk):
    out_features = 512 * Bottleneck.expansion

    def __init__(self):
        super().__init__(Bottleneck, (3, 4, 6, 3))


class ResNet18Trunk(ResNetTrunk):
    out_features = 512

    def __init__(self):
        super().__init__(BasicBlock, (2, 2, 2, 2))
