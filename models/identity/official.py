"""Readers for Face2Diffusion's released checkpoints, `checkpoints/msid.pt` and `checkpoints/mapping.pt`.

Both are plain state dicts written with `torch.save` (the official inference loads them with
`load_state_dict(torch.load(...))`, strict). They are read with `torch.load(weights_only=True)`,
which builds tensors and plain containers and refuses anything else before calling it, and then
compared key by key and shape by shape with the modules here; a mismatch lists the missing,
unexpected and mis-shaped keys. BatchNorm's `num_batches_tracked` (a step counter with no effect
at inference) may be absent, as re-saved checkpoints sometimes drop it, and is then filled with 0.
"""
from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import torch

from ..loading import ModelFileError, check_state_dict, load_torch_checkpoint
from .mapping import F2D_MAPPING, MappingConfig, mapping_state_shapes
from .msid import F2D_MSID, MSIDConfig, msid_state_shapes

PathArg = str | PathLike[str]
OPTIONAL_SUFFIXES = ("num_batches_tracked",)


def checked_state_dict(state: Mapping, expected: Mapping[str, tuple[int, ...]], what: str, path: Path
                       ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """`state` checked key by key and shape by shape against `expected`, in its key order (floats as
    float32, integers as int64), and the BatchNorm step counters that were absent and filled with 0."""
    not_tensors = sorted(str(k) for k, v in state.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        shown = ", ".join(not_tensors[:5]) + (f" and {len(not_tensors) - 5} more" if len(not_tensors) > 5 else "")
        raise ModelFileError(path, f"expected a {what} (a plain state dict of tensors); these entries are not "
                                   f"tensors: {shown}")
    check_state_dict(state, expected, what, path, optional_suffixes=OPTIONAL_SUFFIXES)
    out, filled = {}, []
    for key in expected:
        value = state.get(key)
        if value is None:
            value = torch.zeros((), dtype=torch.long)
            filled.append(key)
        out[key] = value.detach().to(torch.float32) if value.is_floating_point() else value.detach().long()
    return out, filled


def read_official_state_dict(path: PathArg, expected: Mapping[str, tuple[int, ...]], what: str
                             ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A plain `torch.save`d state dict, read safely and checked (see checked_state_dict)."""
    path = Path(path)
    state = load_torch_checkpoint(path, what=what)
    if not isinstance(state, Mapping):
        raise ModelFileError(path, f"expected a {what} (a plain state dict of tensors), found {type(state).__name__}")
    return checked_state_dict(state, expected, what, path)


def read_f2d_msid(path: PathArg, config: MSIDConfig = F2D_MSID) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The MSID encoder's tensors from the official msid.pt (and the keys that were filled in)."""
    return read_official_state_dict(path, msid_state_shapes(config), "Face2Diffusion MSID encoder (msid.pt)")


def read_f2d_mapping(path: PathArg, config: MappingConfig = F2D_MAPPING
                     ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The mapping network's tensors from the official mapping.pt (and the keys that were filled in)."""
    return read_official_state_dict(path, mapping_state_shapes(config), "Face2Diffusion mapping network (mapping.pt)")
