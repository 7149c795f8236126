"""CONDITIONING values of the diffusion backbones: code[:, None, :] in the tensor slot plus a tag.

Keeping the code in `c[0]` (not only in the dict) lets stock conditioning nodes (average, zero-out,
combine) act on it; the `likeness_diffusion` tag lets the model refuse a code made for the other
backbone with a clear message instead of a shape error.
"""
from __future__ import annotations

import torch

from .diffusion_model import CODE_KEY


def make_conditioning(codes: torch.Tensor, kind: str, **extra) -> list:
    return [[codes[:, None, :].float(), {CODE_KEY: kind, **extra}]]


def codes_of(conditioning: list, what: str) -> tuple[torch.Tensor, dict]:
    """(codes (B, D), dict) of the first entry of a Likeness diffusion CONDITIONING."""
    if not conditioning or conditioning[0][1].get(CODE_KEY) is None:
        raise ValueError(f"Likeness: {what} must come from DiffAEEncode or DiffusionRigCondition")
    tensor, extra = conditioning[0]
    return tensor[:, 0, :], extra


def replace_codes(conditioning: list, codes: torch.Tensor) -> list:
    """The same conditioning with new codes (every entry; the dicts are copied, never mutated)."""
    return [[codes[:, None, :].to(t.dtype), dict(d)] for t, d in conditioning]
