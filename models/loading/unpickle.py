"""Restricted unpickling of legacy model files.

A pickle is a small program: GLOBAL, STACK_GLOBAL, INST, OBJ and EXT opcodes import a name, and
REDUCE, NEWOBJ and BUILD call what was imported. Python resolves every one of those imports through
`Unpickler.find_class`, so a subclass that answers only from an explicit allow-list lets a file
build arrays and containers but never reach `os.system`, `eval` or `subprocess`. Anything else
raises `UnsafePickleError` naming the requested `module.name` and the file, before it is called.

Two allow-lists are provided:

* `LEGACY_MODEL_GLOBALS` for FLAME's Python-2 `generic_model.pkl`: numpy array reconstruction,
  scipy CSC/CSR matrices and chumpy arrays (both mapped onto numpy-only stand-ins), sets, and the
  `copy_reg._reconstructor` path of protocol 0/1 pickles (restricted to those stand-ins). Every
  `chumpy.*` class maps to a stand-in: Ch and the reordering classes evaluate with numpy, any
  other chumpy class is kept inert (its state only), so an unused chumpy expression in the file
  does not stop the load and still cannot run anything.
* `NPY_OBJECT_GLOBALS` for object arrays inside `.npy` files such as DECA's
  `landmark_embedding.npy`, which additionally hold torch tensors; their storages are decoded with
  PyTorch's own restricted loader (`torch.load(weights_only=True)`).
"""
from __future__ import annotations

import _compat_pickle
import io
import pickle
import re
from collections import OrderedDict
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from .errors import ModelFileError
from .legacy_objects import CHUMPY_CLASSES, SPARSE_CLASSES, chumpy_stand_in, legacy_reconstructor

GlobalTable = Mapping[tuple[str, str], Any]

_TORCH_GLOBAL = re.compile(r"GLOBAL ([A-Za-z_][\w.]*)")


class UnsafePickleError(ModelFileError, pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list; nothing it named was called."""

    def __init__(self, file: str | PathLike[str], global_name: str, purpose: str = "model file"):
        self.global_name = global_name
        super().__init__(
            file,
            f"refused to load this {purpose}: its pickle asks for {global_name}, which is not on the "
            f"allow-list of data types (numpy arrays, sparse matrices, chumpy arrays, tensors, plain "
            f"containers). A model file needs nothing else, so this file is either not the expected one "
            f"or carries code; nothing in it was run.")


class _Refused(Exception):
    """Raised inside allow-listed callables; turned into UnsafePickleError with the file name."""

    def __init__(self, global_name: str):
        super().__init__(global_name)
        self.global_name = global_name


def torch_refused_global(exc: BaseException) -> str | None:
    """The global named in a `torch.load(weights_only=True)` refusal, if the error is one."""
    match = _TORCH_GLOBAL.search(str(exc))
    return match.group(1) if match else None


# ----------------------------------------------------------------------------------------------
# allow-listed callables

def _latin1_encode(text: Any, encoding: str = "utf-8") -> bytes:
    """`_codecs.encode` as Python 3 writes bytes in protocol 2 pickles; only latin-1 text is accepted."""
    if not isinstance(text, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1"):
        raise _Refused(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, str):  # a Python 2 str decoded with encoding="latin1"
        return data.encode("latin-1")
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    raise TypeError(f"expected serialized bytes, got {type(data).__name__}")


def _storage_from_bytes(data: Any) -> torch.TypedStorage | torch.UntypedStorage:
    """Stand-in for `torch.storage._load_from_bytes`: decodes the embedded legacy torch.save blob
    with PyTorch's restricted loader instead of an unrestricted `torch.load`."""
    try:
        storage = torch.load(io.BytesIO(_as_bytes(data)), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _Refused(torch_refused_global(exc) or f"a torch storage blob that weights_only refuses ({exc})") from None
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise TypeError(f"embedded torch blob holds a {type(storage).__name__}, not a storage")
    return storage


def _check_storage(storage: Any) -> None:
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise TypeError(f"tensor rebuilt from a {type(storage).__name__}, not a torch storage")


def _rebuild_tensor_v2(storage: Any, storage_offset: int, size: Any, stride: Any, requires_grad: bool = False,
                       backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    """Stand-in for `torch._utils._rebuild_tensor_v2` that refuses backward hooks (callables)."""
    _check_storage(storage)
    if backward_hooks:
        raise _Refused("torch tensor backward hooks")
    return torch._utils._rebuild_tensor_v2(storage, int(storage_offset), tuple(size), tuple(stride),
                                           bool(requires_grad), OrderedDict(), metadata)


def _rebuild_tensor(storage: Any, storage_offset: int, size: Any, stride: Any) -> torch.Tensor:
    """Stand-in for the pre-1.0 `torch._utils._rebuild_tensor`."""
    _check_storage(storage)
    return torch._utils._rebuild_tensor(storage, int(storage_offset), tuple(size), tuple(stride))


def _numpy_globals() -> dict[tuple[str, str], Any]:
    # The reconstruction functions are taken from numpy's own reduce output, so the table is right
    # for numpy 1.x (numpy.core) and 2.x (numpy._core) alike; both spellings occur in files.
    reconstruct = np.empty(1).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    frombuffer = np.empty(1).__reduce_ex__(5)[0]
    table: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                         ("_codecs", "encode"): _latin1_encode}
    for package in ("numpy.core", "numpy._core"):
        table[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        table[(f"{package}.multiarray", "scalar")] = scalar
        table[(f"{package}.numeric", "_frombuffer")] = frombuffer
    return table


_CONTAINERS = {("builtins", "set"): set, ("builtins", "frozenset"): frozenset}


class _LegacyModelGlobals(Mapping):
    """The explicit table below plus one rule: any `chumpy.*` class maps to an inert stand-in."""

    def __init__(self, table: Mapping[tuple[str, str], Any]):
        self._table = dict(table)

    def __getitem__(self, key: tuple[str, str]) -> Any:
        found = self._table.get(key)
        if found is None and isinstance(key, tuple) and len(key) == 2:
            found = chumpy_stand_in(*key)
        if found is None:
            raise KeyError(key)
        return found

    def __iter__(self):
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


LEGACY_MODEL_GLOBALS: GlobalTable = _LegacyModelGlobals({
    **_numpy_globals(),
    **_CONTAINERS,
    ("builtins", "object"): object,  # only as the `base` argument of _reconstructor
    ("copyreg", "_reconstructor"): legacy_reconstructor,
    ("numpy.matrixlib.defmatrix", "matrix"): np.matrix,  # an ndarray subclass some old files use
    ("numpy.core.defmatrix", "matrix"): np.matrix,
    **SPARSE_CLASSES,
    **CHUMPY_CLASSES,
})

NPY_OBJECT_GLOBALS: GlobalTable = {
    **_numpy_globals(),
    **_CONTAINERS,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
}


# ----------------------------------------------------------------------------------------------
# the unpickler

def python3_name(module: str, name: str) -> tuple[str, str]:
    """The Python 3 spelling of a global in a protocol 0-2 pickle (`__builtin__.eval` -> `builtins.eval`).

    pickle's default `find_class` applies this mapping (fix_imports); a replacement must do it
    itself, both to match the allow-list and to name refused globals as users know them.
    """
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose imports come only from `allowed`; everything else is refused by name."""

    def __init__(self, file: BinaryIO, *, source: str, allowed: GlobalTable, purpose: str,
                 encoding: str = "latin1"):
        super().__init__(file, fix_imports=True, encoding=encoding)
        self._source = source
        self._allowed = allowed
        self._purpose = purpose

    def find_class(self, module: str, name: str) -> Any:
        module, name = python3_name(module, name)
        found = self._allowed.get((module, name))
        if found is None:
            raise UnsafePickleError(self._source, f"{module}.{name}", self._purpose)
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(self._source, f"persistent id {pid!r}", self._purpose)


def restricted_load(stream: BinaryIO, *, source: str | PathLike[str], allowed: GlobalTable = LEGACY_MODEL_GLOBALS,
                    purpose: str = "model file", encoding: str = "latin1") -> Any:
    """Unpickle one object from `stream` with the allow-list `allowed`; errors name `source`.

    `encoding="latin1"` is what Python-2 numpy pickles need: their raw array bytes were `str`.
    """
    try:
        return RestrictedUnpickler(stream, source=str(source), allowed=allowed, purpose=purpose,
                                   encoding=encoding).load()
    except ModelFileError:
        raise
    except _Refused as exc:
        raise UnsafePickleError(source, exc.global_name, purpose) from None
    except Exception as exc:  # corrupt data surfaces as many types; all mean "not a readable file"
        raise ModelFileError(source, f"not a readable {purpose}: {type(exc).__name__}: {exc}") from exc


def restricted_loads(data: bytes, *, source: str | PathLike[str] = "<bytes>",
                     allowed: GlobalTable = LEGACY_MODEL_GLOBALS, purpose: str = "model file",
                     encoding: str = "latin1") -> Any:
    """`restricted_load` for a bytes object."""
    return restricted_load(io.BytesIO(data), source=source, allowed=allowed, purpose=purpose, encoding=encoding)


def load_legacy_pickle(path: str | PathLike[str], *, allowed: GlobalTable = LEGACY_MODEL_GLOBALS,
                       purpose: str = "legacy model pickle") -> Any:
    """Load a pickle file such as FLAME's `generic_model.pkl` without chumpy and without running code."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, f"{purpose} not found")
    with path.open("rb") as stream:
        return restricted_load(stream, source=path, allowed=allowed, purpose=purpose)
