"""Readers for the official checkpoints, into the tensors the converter stores.

* Diff-AE `last.ckpt`: a PyTorch Lightning checkpoint; `state_dict` holds the trained model under
  `model.`, its EMA copy under `ema_model.` (what Diff-AE samples with, so what is kept) and the
  fixed evaluation noise `x_T`. Other top-level entries (optimizer, callbacks, hyper-parameters)
  are discarded.
* DiffusionRig `modelNNNNNN.pt`: a plain `torch.save(model.state_dict())`, read with
  `torch.load(weights_only=True)`; keys `denoisingUNet.*` and `encoder.*`.

Both are checked key for key and shape for shape against the model definition (which the tests
check against the published manifests), with a listing of missing, unexpected and mis-shaped keys.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from ..loading import ModelFileError, check_state_dict, lightning_weights, load_torch_checkpoint
from .config import DIFFUSIONRIG_256, FFHQ256_AUTOENC, DiffAEConfig, DiffusionRigConfig
from .files import diffae_state_shapes, diffusionrig_state_shapes

PathArg = str | PathLike[str]
EMA_PREFIX = "ema_model."
BATCHNORM_COUNTER = "num_batches_tracked"


def _non_tensors(entries: Mapping[str, Any]) -> list[str]:
    return [f"{k} ({type(v).__name__})" for k, v in entries.items() if not isinstance(v, torch.Tensor)]


def read_diffae_checkpoint(path: PathArg, config: DiffAEConfig = FFHQ256_AUTOENC
                           ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The EMA model's tensors (prefix removed) and facts about the file (global step, entries)."""
    ema, info = lightning_weights(path, EMA_PREFIX, "Diff-AE EMA")
    check_state_dict(ema, diffae_state_shapes(config), f"Diff-AE {config.name} EMA model", path)
    return ema, {"weights": "ema_model", **info}


def diffusionrig_step(path: PathArg) -> str:
    """The training step in an official file name (`model050000.pt` -> "050000"), else the file stem."""
    match = re.search(r"model(\d+)", Path(path).name)
    return match.group(1) if match else Path(path).stem


def read_diffusionrig_checkpoint(path: PathArg, config: DiffusionRigConfig = DIFFUSIONRIG_256
                                 ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """All tensors of the state dict; BatchNorm step counters that a re-save dropped are restored as 0."""
    path = Path(path)
    state = load_torch_checkpoint(path, what="DiffusionRig checkpoint")
    if not isinstance(state, Mapping):
        raise ModelFileError(path, f"not a DiffusionRig state dict (a {type(state).__name__})")
    if bad := _non_tensors(state):
        raise ModelFileError(path, f"not a DiffusionRig state dict: entries that are not tensors: {bad[:5]}")
    expected = diffusionrig_state_shapes(config)
    check_state_dict(state, expected, f"DiffusionRig {config.name} model", path,
                     optional_suffixes=(BATCHNORM_COUNTER,))
    tensors = dict(state)
    restored = [k for k in expected if k not in tensors]
    for key in restored:
        tensors[key] = torch.tensor(0, dtype=torch.long)
    info = {"step": diffusionrig_step(path), "restored_counters": len(restored)}
    return {k: tensors[k] for k in expected}, info
