"""Diff-AE's semantic encoder: image -> z_sem, the 512-d code the decoder is conditioned on.

A half UNet without any condition (its ResBlocks have only the input path), deeper than the
decoder (down to 4x4 at 256 px), with attention at 16x16, then GroupNorm, SiLU, global average
pooling and a 1x1 conv. Input: the clean image in [-1, 1].
"""
from __future__ import annotations

import torch
from torch import nn

from .config import DiffAEConfig
from .norm import group_norm
from .resample import Resample
from .resblock import PlainResBlock
from .unet_layout import build_input_blocks, build_middle_block, plan_encoder_half


def _plain(channels: int, out_channels: int, resample_mode: Resample | None) -> PlainResBlock:
    return PlainResBlock(channels, out_channels, resample_mode)


class SemanticEncoder(nn.Module):
    def __init__(self, config: DiffAEConfig):
        super().__init__()
        specs = plan_encoder_half(config.image_size, config.model_channels, config.enc_channel_mult,
                                  config.enc_num_res_blocks, config.attention_resolutions)
        self.input_blocks = build_input_blocks(config.in_channels, config.model_channels, specs, _plain,
                                               config.num_heads)
        channels = specs[-1].out_channels
        self.middle_block = build_middle_block(channels, _plain, config.num_heads)
        self.out = nn.Sequential(group_norm(channels), nn.SiLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Conv2d(channels, config.z_sem_channels, 1), nn.Flatten())

    def forward(self, x_0: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) image in [-1, 1] -> z_sem (B, z_sem_channels)."""
        h = x_0
        for block in self.input_blocks:
            h = block(h)
        return self.out(self.middle_block(h))
