"""CONDITIONING values of the diffusion backbones: code[:, None, :] in the tensor slot plus a tag.

Keeping the code in `c[0]` (not only in the dict) lets stock conditioning nodes (average, zero-out,
combine) act on it; the `likeness_diffusion` tag lets the model refuse a code made for the other
backbone with a clear message instead of a shape error.
"""
from __future__ import annotations

import torch

import comfy.utils

from .diffusion_model import CODE_KEY, PHYSIC_KEY


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


def stack_conditionings(conditionings: list[list], what: str = "conditioning") -> tuple[list, list]:
    """(positive, negative): the codes (and DiffusionRig buffers) of several one-entry conditionings as one
    batch, item i sampling with its own condition; negative has the same buffers and zero codes.

    Only the code and the buffers are carried, so entries with other settings (areas, strengths, time
    ranges from stock nodes) are refused rather than silently dropped.
    """
    codes, physics, kinds = [], [], set()
    for index, conditioning in enumerate(conditionings, 1):
        name = f"{what}_{index}"
        if len(conditioning) != 1:
            raise ValueError(f"Likeness: {name} has {len(conditioning)} entries; batch single conditionings "
                             "(straight from the encode / condition / z_sem nodes)")
        code, extra = codes_of(conditioning, name)
        other = sorted(set(extra) - {CODE_KEY, PHYSIC_KEY})
        if other:
            raise ValueError(f"Likeness: {name} carries settings {other} that a batch cannot keep per item")
        kinds.add(extra[CODE_KEY])
        codes.append(code)
        physic = extra.get(PHYSIC_KEY)
        physics.append(None if physic is None else comfy.utils.resize_to_batch_size(physic, code.shape[0]))
    if len(kinds) != 1:
        raise ValueError(f"Likeness: cannot batch conditionings of different backbones {sorted(kinds)}")
    if len({code.shape[1] for code in codes}) != 1:
        raise ValueError(f"Likeness: code widths differ {[code.shape[1] for code in codes]}")
    extra = {}
    if any(p is not None for p in physics):
        if any(p is None for p in physics) or len({tuple(p.shape[1:]) for p in physics}) != 1:
            shapes = [None if p is None else tuple(p.shape[1:]) for p in physics]
            raise ValueError(f"Likeness: the DiffusionRig buffers differ in shape {shapes}; render every "
                             "condition at the same crop size")
        extra[PHYSIC_KEY] = torch.cat(physics)
    kind, stacked = kinds.pop(), torch.cat([code.float() for code in codes])
    return make_conditioning(stacked, kind, **extra), make_conditioning(torch.zeros_like(stacked), kind, **extra)
