"""The official training's expression dropout: each face's expression code is swapped for `null_exp`.

With some probability a sample trains the mapping network with its learned null vector instead of
the face's expression, which is what lets inference feed `null_exp` and leave the expression to
the prompt. The swap is a `torch.where`, so `null_exp` stays in the graph even when no sample of a
batch is swapped (DistributedDataParallel expects every trainable parameter to get a gradient).
"""
from __future__ import annotations

import torch


def swap_null_expression(expression: torch.Tensor, null_exp: torch.Tensor, probability: float,
                         generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, E) codes -> (codes with some rows replaced by `null_exp`, (B,) bool: which rows were)."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"the null-expression probability must be in [0, 1], got {probability}")
    draw = torch.rand(len(expression), generator=generator, device=generator.device if generator else None)
    swapped = (draw < probability).to(expression.device)
    null = null_exp.to(expression.dtype).expand_as(expression)
    return torch.where(swapped[:, None], null, expression), swapped
