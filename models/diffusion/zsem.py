"""Arithmetic on Diff-AE semantic codes: blending, attribute directions, moving along them.

Diff-AE's z_sem space is close to linear for attributes: the paper edits by adding a direction
found by a linear classifier. Without labels, the difference between the mean codes of photos
with and without an attribute is that classifier's direction up to scale (equal covariances),
so that is what `attribute_direction` returns, unit-normalised so strengths are comparable
between directions. Directions are stored as one-tensor safetensors files.
"""
from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

DIRECTION_KEY = "direction"
DIRECTION_KIND = "zsem_direction"


def lerp(a: torch.Tensor, b: torch.Tensor, weight: float) -> torch.Tensor:
    """(1 - w) a + w b, row by row (a one-row side is broadcast)."""
    return a + weight * (b - a)


def slerp(a: torch.Tensor, b: torch.Tensor, weight: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation of the directions, with the norm interpolated linearly.

    Keeps an intermediate code as long as its ends, where lerp of two far-apart codes shrinks
    towards the origin, a region the decoder never saw. Falls back to lerp for parallel rows.
    """
    a, b = torch.broadcast_tensors(a, b)
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na.clamp_min(eps), b / nb.clamp_min(eps)
    omega = torch.acos((ua * ub).sum(-1, keepdim=True).clamp(-1.0, 1.0))
    sin = torch.sin(omega)
    parallel = sin.abs() < 1e-4
    safe_sin = torch.where(parallel, torch.ones_like(sin), sin)
    unit = (torch.sin((1 - weight) * omega) * ua + torch.sin(weight * omega) * ub) / safe_sin
    unit = torch.where(parallel, lerp(ua, ub, weight), unit)
    return unit * lerp(na, nb, weight)


def blend(a: torch.Tensor, b: torch.Tensor, weight: float, method: str = "slerp") -> torch.Tensor:
    if method == "slerp":
        return slerp(a, b, weight)
    if method == "lerp":
        return lerp(a, b, weight)
    raise ValueError(f"unknown blend method {method!r} (slerp or lerp)")


def attribute_direction(with_attribute: torch.Tensor, without_attribute: torch.Tensor,
                        eps: float = 1e-8) -> torch.Tensor:
    """Unit vector (D,) from the mean of the codes without an attribute to the mean of those with it."""
    a, b = with_attribute, without_attribute
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected two (N, D) sets of codes, got {tuple(with_attribute.shape)} and "
                         f"{tuple(without_attribute.shape)}")
    diff = with_attribute.double().mean(0) - without_attribute.double().mean(0)
    norm = diff.norm()
    if norm < eps:
        raise ValueError("the two sets have the same mean code: no direction separates them")
    return (diff / norm).to(with_attribute.dtype)


def move(z: torch.Tensor, direction: torch.Tensor, strength: float) -> torch.Tensor:
    """z + strength * direction for every row; strength is in units of the direction's length."""
    if direction.shape[-1] != z.shape[-1]:
        raise ValueError(f"direction has {direction.shape[-1]} dims, the codes {z.shape[-1]}")
    return z + strength * direction.to(z)


def save_direction(path: str | PathLike[str], direction: torch.Tensor, info: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"kind": DIRECTION_KIND, "dims": str(direction.shape[-1]), "info": json.dumps(info or {}, sort_keys=True)}
    save_file({DIRECTION_KEY: direction.detach().float().cpu().contiguous()}, str(path), metadata=meta)
    return path


def load_direction(path: str | PathLike[str]) -> torch.Tensor:
    """The (D,) direction of a file written by `save_direction`."""
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        meta = handle.metadata() or {}
        if meta.get("kind") != DIRECTION_KIND or DIRECTION_KEY not in handle.keys():
            raise ValueError(f"{path}: not a z_sem direction file (kind {meta.get('kind')!r})")
        direction = handle.get_tensor(DIRECTION_KEY)
    if direction.dim() != 1:
        raise ValueError(f"{path}: direction has shape {tuple(direction.shape)}, expected (D,)")
    return direction
