"""Reading torch checkpoints (`torch.save` files such as DECA's `deca_model.tar`) safely.

`torch.load(..., weights_only=True)` runs PyTorch's own restricted unpickler: tensors, storages and
plain containers (dicts, lists, tuples, numbers, strings, OrderedDict) load; any other global is
refused before it is called. That covers model state dicts and also optimiser state dicts
(`opt` in DECA training checkpoints), which are made of the same plain types. A checkpoint that
needs anything more is refused with `UnsafePickleError`: such a file is not a plain weights file,
and loading it would mean trusting its code. An explicit `weights_only=True` cannot be overridden
by the `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` environment variable.
"""
from __future__ import annotations

import pickle
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from .errors import ModelFileError
from .unpickle import UnsafePickleError, torch_refused_global


def load_torch_checkpoint(path: str | PathLike[str], *, what: str = "torch checkpoint") -> Any:
    """Load a `torch.save` file (zip or legacy format) on the CPU with weights_only=True."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, f"{what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        name = torch_refused_global(exc)
        if name is not None:
            raise UnsafePickleError(path, name, what) from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(path, f"refused to load this {what}: torch.load(weights_only=True) rejects it "
                                   f"({first}); nothing in it was run") from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError) as exc:
        raise ModelFileError(path, f"not a readable {what} ({type(exc).__name__}: {exc})") from exc
