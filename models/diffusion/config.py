"""Hyper-parameters of the two backbones, as frozen dataclasses.

The official configurations are the module constants; tests build narrow, low-resolution variants
of the same code by changing the numbers. `attention_resolutions` are feature-map sides in both
(Diff-AE writes them that way; DiffusionRig's "16" is a downsampling factor of 256 px, which is the
same 16x16 map).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DiffAEConfig:
    """Diff-AE `BeatGANsAutoencModel`: a two-condition decoder UNet plus its semantic encoder."""

    name: str
    image_size: int = 256
    in_channels: int = 3
    out_channels: int = 3
    model_channels: int = 128
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4, 4)
    num_res_blocks: int = 2              # per level on the encoder half; the decoder half has one more
    attention_resolutions: tuple[int, ...] = (16,)
    num_heads: int = 1
    embed_channels: int = 512            # time-embedding width
    z_sem_channels: int = 512            # semantic code width (`style_ch`, `enc_out_channels`)
    enc_channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4, 4, 4)   # semantic encoder, down to 4x4
    enc_num_res_blocks: int = 2
    dropout: float = 0.1


@dataclass(frozen=True)
class DiffusionRigConfig:
    """DiffusionRig: ADM UNet over x_t ++ physical buffers, conditioned on a ResNet-18 global latent."""

    name: str
    image_size: int = 256
    in_channels: int = 3                 # x_t
    physic_channels: int = 9             # rendered, normal, albedo (3 each), concatenated to x_t
    out_channels: int = 3                # epsilon (learn_sigma=False)
    model_channels: int = 128
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4, 4)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (16,)
    num_heads: int = 1
    embed_channels: int = 512            # ADM: 4 x model_channels
    latent_dim: int = 64
    dropout: float = 0.1


FFHQ256_AUTOENC = DiffAEConfig(name="ffhq256_autoenc")
DIFFUSIONRIG_256 = DiffusionRigConfig(name="diffusionrig_256")
