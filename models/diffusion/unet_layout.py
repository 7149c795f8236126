"""The block layout that Diff-AE's and DiffusionRig's UNets share, built around a ResBlock factory.

Both follow ADM with `resblock_updown=True`: a stem conv; per level `num_res_blocks` ResBlocks
(attention after each at the listed resolutions) and a down-sampling ResBlock except at the last
level; a middle ResBlock, attention, ResBlock; and a mirrored decoder with one extra ResBlock per
level whose input is the decoder features concatenated with the matching encoder output (the
lateral skip), ending each level but the top in an up-sampling ResBlock. Indices in the state dict
(`input_blocks.13.1`, `output_blocks.5.2`, ...) follow from this order, so it is planned once here.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from .attention import AttentionBlock
from .norm import group_norm
from .resample import Resample

ResBlockFactory = Callable[[int, int, Resample | None], nn.Module]  # (in, out, resampling) -> block


class UNetShape(Protocol):
    image_size: int
    model_channels: int
    channel_mult: tuple[int, ...]
    num_res_blocks: int
    attention_resolutions: tuple[int, ...]
    num_heads: int


@dataclass(frozen=True)
class InputSpec:
    """One `input_blocks` entry after the stem: a ResBlock (+ attention) or a down-sampling ResBlock."""

    in_channels: int
    out_channels: int
    resolution: int      # feature-map side this block outputs
    attention: bool = False
    down: bool = False


@dataclass(frozen=True)
class OutputSpec:
    """One `output_blocks` entry: ResBlock over [features, lateral] (+ attention) (+ up-sampling ResBlock)."""

    in_channels: int
    lateral_channels: int
    out_channels: int
    resolution: int      # side before the optional up-sampling
    attention: bool
    up: bool


def plan_encoder_half(image_size: int, model_channels: int, channel_mult: tuple[int, ...], num_res_blocks: int,
                      attention_resolutions: tuple[int, ...]) -> list[InputSpec]:
    if image_size % 2 ** (len(channel_mult) - 1):
        raise ValueError(f"image size {image_size} cannot be halved {len(channel_mult) - 1} times")
    specs: list[InputSpec] = []
    channels, resolution = model_channels, image_size
    for level, mult in enumerate(channel_mult):
        for _ in range(num_res_blocks):
            out = model_channels * mult
            specs.append(InputSpec(channels, out, resolution, attention=resolution in attention_resolutions))
            channels = out
        if level != len(channel_mult) - 1:
            resolution //= 2
            specs.append(InputSpec(channels, channels, resolution, down=True))
    return specs


def plan_decoder_half(image_size: int, model_channels: int, channel_mult: tuple[int, ...], num_res_blocks: int,
                      attention_resolutions: tuple[int, ...]) -> list[OutputSpec]:
    encoder = plan_encoder_half(image_size, model_channels, channel_mult, num_res_blocks, attention_resolutions)
    laterals = [model_channels] + [spec.out_channels for spec in encoder]   # stem output, then every input block
    channels, resolution = encoder[-1].out_channels, encoder[-1].resolution
    specs: list[OutputSpec] = []
    for level, mult in reversed(list(enumerate(channel_mult))):
        for i in range(num_res_blocks + 1):
            out = model_channels * mult
            up = level > 0 and i == num_res_blocks
            specs.append(OutputSpec(channels, laterals.pop(), out, resolution,
                                    attention=resolution in attention_resolutions, up=up))
            channels = out
            if up:
                resolution *= 2
    return specs


class CondSequential(nn.Sequential):
    """The layers at one UNet position, applied in order; ResBlocks also receive the conditions.

    A lateral skip, when given, is concatenated after the features on the channel axis before the
    first layer. (Diff-AE does this inside the output ResBlock, ADM just before it: same tensor.)
    """

    def forward(self, h: torch.Tensor, *conds: torch.Tensor, lateral: torch.Tensor | None = None) -> torch.Tensor:
        if lateral is not None:
            h = torch.cat([h, lateral], dim=1)
        for layer in self:
            h = layer(h, *conds) if getattr(layer, "takes_conditions", False) else layer(h)
        return h


def build_input_blocks(in_channels: int, model_channels: int, specs: list[InputSpec], make_res: ResBlockFactory,
                       num_heads: int) -> nn.ModuleList:
    blocks = [CondSequential(nn.Conv2d(in_channels, model_channels, 3, padding=1))]
    for spec in specs:
        if spec.down:
            blocks.append(CondSequential(make_res(spec.in_channels, spec.out_channels, "down")))
            continue
        layers = [make_res(spec.in_channels, spec.out_channels, None)]
        if spec.attention:
            layers.append(AttentionBlock(spec.out_channels, num_heads))
        blocks.append(CondSequential(*layers))
    return nn.ModuleList(blocks)


def build_middle_block(channels: int, make_res: ResBlockFactory, num_heads: int) -> CondSequential:
    return CondSequential(make_res(channels, channels, None), AttentionBlock(channels, num_heads),
                          make_res(channels, channels, None))


def build_output_blocks(specs: list[OutputSpec], make_res: ResBlockFactory, num_heads: int) -> nn.ModuleList:
    blocks = []
    for spec in specs:
        layers = [make_res(spec.in_channels + spec.lateral_channels, spec.out_channels, None)]
        if spec.attention:
            layers.append(AttentionBlock(spec.out_channels, num_heads))
        if spec.up:
            layers.append(make_res(spec.out_channels, spec.out_channels, "up"))
        blocks.append(CondSequential(*layers))
    return nn.ModuleList(blocks)


def output_head(channels: int, out_channels: int) -> nn.Sequential:
    """GroupNorm, SiLU, zero-initialised 3x3 conv to the predicted epsilon (entries `0.*`, `2.*`)."""
    conv = nn.Conv2d(channels, out_channels, 3, padding=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return nn.Sequential(group_norm(channels), nn.SiLU(), conv)


class DenoisingUNet(nn.Module):
    """Input, middle and output blocks plus head of an ADM UNet, for a given ResBlock type.

    Subclasses add the time embedding and say what the conditions are; `run` threads the lateral
    skips (last in, first out) and passes the conditions to every ResBlock.
    """

    def build(self, shape: UNetShape, in_channels: int, out_channels: int, make_res: ResBlockFactory) -> None:
        plan = (shape.image_size, shape.model_channels, shape.channel_mult, shape.num_res_blocks,
                shape.attention_resolutions)
        encoder_half = plan_encoder_half(*plan)
        self.input_blocks = build_input_blocks(in_channels, shape.model_channels, encoder_half, make_res,
                                               shape.num_heads)
        self.middle_block = build_middle_block(encoder_half[-1].out_channels, make_res, shape.num_heads)
        self.output_blocks = build_output_blocks(plan_decoder_half(*plan), make_res, shape.num_heads)
        self.out = output_head(shape.model_channels, out_channels)

    def run(self, h: torch.Tensor, *conds: torch.Tensor) -> torch.Tensor:
        laterals = []
        for block in self.input_blocks:
            h = block(h, *conds)
            laterals.append(h)
        h = self.middle_block(h, *conds)
        for block in self.output_blocks:
            h = block(h, *conds, lateral=laterals.pop())
        return self.out(h)
