"""GroupNorm as the ADM family uses it: statistics in float32, at most 32 groups."""
from __future__ import annotations

import torch
from torch import nn


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 and cast back, so half-precision runs keep stable statistics."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


def group_norm(channels: int) -> GroupNorm32:
    """`min(32, channels)` groups (Diff-AE's rule; DiffusionRig's fixed 32 is the same for its >= 128 channels).

    The cap only matters for narrow test-sized networks, which then still normalise per group.
    """
    groups = min(32, channels)
    if channels % groups:
        raise ValueError(f"GroupNorm: {channels} channels do not split into {groups} groups; "
                         f"use a model width that is a multiple of 32")
    return GroupNorm32(groups, channels)
