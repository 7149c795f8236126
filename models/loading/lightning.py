"""Reading a PyTorch Lightning checkpoint (Diff-AE's `last.ckpt`) without running its pickled objects.

`torch.load(weights_only=True)` is tried first. It refuses a Lightning file as soon as the pickle
names a Lightning class, and Lightning 1.4 (which wrote Diff-AE's files) keys the `callbacks`
entry by the callback class itself. Those entries are discarded, but the pickle has to be read
through them to reach `state_dict`, so on that refusal the zip checkpoint is read again with the
pack's restricted unpickler and this allow-list:

* what a state dict needs: tensors rebuilt from the file's own storages (without hooks),
  OrderedDict, numpy arrays and scalars, sets;
* any name in the Lightning packages (`pytorch_lightning`, `lightning`, `lightning_fabric`) becomes
  an inert stand-in: building or calling it records its arguments and state and runs nothing;
* everything else (`os.system`, `builtins.eval`, Diff-AE's own classes, ...) is refused by name
  before it is called.

Callers keep only tensors and check that no stand-in reached what they keep.
"""
from __future__ import annotations

import sys
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import torch

from .checkpoint import load_torch_checkpoint
from .errors import ModelFileError
from .unpickle import NPY_OBJECT_GLOBALS, RestrictedUnpickler, UnsafePickleError

LIGHTNING_PACKAGES = ("pytorch_lightning", "lightning", "lightning_fabric")
PURPOSE = "Lightning checkpoint"


class _Sealed(type):
    """Metaclass forbidding writes to the class, so a pickle cannot rewrite a stand-in's methods."""

    def __setattr__(cls, name: str, value: Any) -> None:
        raise AttributeError(f"{cls.__name__} is a pickle stand-in; its attributes cannot be changed")

    def __delattr__(cls, name: str) -> None:
        raise AttributeError(f"{cls.__name__} is a pickle stand-in; its attributes cannot be deleted")


class InertObject(metaclass=_Sealed):
    """An object of a Lightning class, rebuilt as a record: arguments, pickled state, items.

    Supports exactly what pickle does to objects it builds: construction (`REDUCE`/`NEWOBJ`),
    `__setstate__` (`BUILD`), item assignment (`SETITEMS`, for dict subclasses such as
    `AttributeDict`) and append/extend (`APPENDS`, list subclasses). Nothing else can be set.
    """

    __slots__ = ("_args", "_state", "_items")
    legacy_name: ClassVar[str] = "<lightning object>"

    def __new__(cls, *args: Any, **kwargs: Any) -> InertObject:
        obj = object.__new__(cls)
        object.__setattr__(obj, "_args", args + tuple(kwargs.items()))
        object.__setattr__(obj, "_state", None)
        object.__setattr__(obj, "_items", [])
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Construction only records (done in __new__)."""

    def __setstate__(self, state: Any) -> None:
        object.__setattr__(self, "_state", state)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._items.append((key, value))

    def append(self, value: Any) -> None:
        self._items.append(value)

    def extend(self, values: Any) -> None:
        self._items.extend(values)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self.legacy_name} stand-in is read-only")

    def __repr__(self) -> str:
        return f"<inert {self.legacy_name}>"


_INERT: dict[tuple[str, str], type[InertObject]] = {}
_MAX_NAMED = 256  # a crafted file could name endless classes; past this they share the generic one


def inert_class(module: str, name: str) -> type[InertObject]:
    """The stand-in class for `module.name` (one per name, so class-keyed dicts keep distinct keys)."""
    key = (module, name)
    if key not in _INERT:
        if len(_INERT) >= _MAX_NAMED:
            return InertObject
        _INERT[key] = _Sealed(f"Inert_{name}", (InertObject,),
                              {"__slots__": (), "legacy_name": f"{module}.{name}", "__module__": __name__})
    return _INERT[key]


@dataclass(frozen=True)
class StorageType:
    """What `torch.FloatStorage` & co. resolve to: only the element type of a storage record."""

    name: str
    dtype: torch.dtype


_STORAGE_DTYPES = {"Double": torch.float64, "Float": torch.float32, "Half": torch.float16,
                   "BFloat16": torch.bfloat16, "Long": torch.int64, "Int": torch.int32, "Short": torch.int16,
                   "Char": torch.int8, "Byte": torch.uint8, "Bool": torch.bool,
                   "ComplexFloat": torch.complex64, "ComplexDouble": torch.complex128}
_UNTYPED = StorageType("UntypedStorage", torch.uint8)
STORAGE_TYPES: dict[tuple[str, str], StorageType] = {
    **{("torch", f"{n}Storage"): StorageType(f"{n}Storage", d) for n, d in _STORAGE_DTYPES.items()},
    ("torch", "UntypedStorage"): _UNTYPED,
}


class _CheckpointGlobals(Mapping):
    """The explicit table plus one rule: names in the Lightning packages map to inert stand-ins."""

    def __init__(self, table: Mapping[tuple[str, str], Any]):
        self._table = dict(table)

    def __getitem__(self, key: tuple[str, str]) -> Any:
        if key in self._table:
            return self._table[key]
        module, name = key
        if module.split(".")[0] in LIGHTNING_PACKAGES:
            return inert_class(module, name)
        raise KeyError(key)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


CHECKPOINT_GLOBALS = _CheckpointGlobals({**NPY_OBJECT_GLOBALS, **STORAGE_TYPES})


class _ZipCheckpointUnpickler(RestrictedUnpickler):
    """Restricted unpickler whose storage records are read from the checkpoint's zip archive."""

    def __init__(self, stream: BinaryIO, *, archive: zipfile.ZipFile, prefix: str, source: Path):
        super().__init__(stream, source=str(source), allowed=CHECKPOINT_GLOBALS, purpose=PURPOSE, encoding="utf-8")
        self._archive = archive
        self._prefix = prefix
        self._file = source
        self._storages: dict[str, torch.TypedStorage] = {}

    def persistent_load(self, pid: Any) -> torch.TypedStorage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], StorageType)
                and isinstance(pid[2], str) and isinstance(pid[4], int)):
            raise ModelFileError(self._file, f"not a torch checkpoint: unexpected persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid
        if key not in self._storages:
            self._storages[key] = self._read_storage(key, storage_type, numel)
        return self._storages[key]

    def _read_storage(self, key: str, storage_type: StorageType, numel: int) -> torch.TypedStorage:
        try:
            raw = self._archive.read(f"{self._prefix}data/{key}")
        except KeyError:
            raise ModelFileError(self._file, f"damaged checkpoint: tensor data record {key!r} is missing") from None
        itemsize = 1 if storage_type is _UNTYPED else torch.empty((), dtype=storage_type.dtype).element_size()
        if len(raw) != numel * itemsize:
            raise ModelFileError(self._file, f"damaged checkpoint: tensor data record {key!r} has {len(raw)} bytes, "
                                             f"expected {numel} x {itemsize}")
        untyped = torch.UntypedStorage()  # frombuffer refuses an empty buffer
        if raw:
            untyped = torch.frombuffer(bytearray(raw), dtype=torch.uint8).untyped_storage()
        return torch.TypedStorage(wrap_storage=untyped, dtype=storage_type.dtype, _internal=True)


def _pickle_record(archive: zipfile.ZipFile, path: Path) -> str:
    records = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(records) != 1:
        raise ModelFileError(path, "not a torch checkpoint (zip archive without a single <name>/data.pkl)")
    return records[0]


def read_zip_checkpoint_with_stand_ins(path: str | PathLike[str]) -> Any:
    """Load a zip-format `torch.save` file with the allow-list above (see the module docstring)."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelFileError(path, f"not a readable zip-format torch checkpoint ({exc})") from exc
    with archive:
        record = _pickle_record(archive, path)
        prefix = record[: -len("data.pkl")]
        if f"{prefix}byteorder" in archive.namelist():
            order = archive.read(f"{prefix}byteorder").decode("ascii", "replace").strip()
            if order != sys.byteorder:
                raise ModelFileError(path, f"checkpoint was written on a {order}-endian machine; "
                                           f"this loader reads {sys.byteorder}-endian files only")
        with archive.open(record) as stream:
            try:
                return _ZipCheckpointUnpickler(stream, archive=archive, prefix=prefix, source=path).load()
            except ModelFileError:
                raise
            except Exception as exc:  # allow-listed callables refuse with an exception naming what they refused
                name = getattr(exc, "global_name", None)
                if name is not None:
                    raise UnsafePickleError(path, name, PURPOSE) from None
                raise ModelFileError(path, f"not a readable {PURPOSE}: {type(exc).__name__}: {exc}") from exc


def read_lightning_checkpoint(path: str | PathLike[str]) -> Any:
    """The checkpoint object: via `torch.load(weights_only=True)`, else via the stand-in reader.

    Either way no code from the file runs; a global outside both allow-lists raises
    `UnsafePickleError` naming it.
    """
    try:
        return load_torch_checkpoint(path, what=PURPOSE)
    except ModelFileError:  # refused by weights_only (how torch words that varies by version), or unreadable
        if not zipfile.is_zipfile(path):
            raise
    return read_zip_checkpoint_with_stand_ins(path)


def lightning_weights(path: str | PathLike[str], prefix: str, what: str, hint: str = ""
                      ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors under `prefix` in a Lightning checkpoint's state_dict (prefix removed), read with
    the restricted reader, plus facts about the file (global_step, state_dict_entries). `what` names
    the model in errors; `hint` tells the user which file to give instead."""
    path = Path(path)
    checkpoint = read_lightning_checkpoint(path)
    state = checkpoint.get("state_dict") if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping):
        found = sorted(map(str, checkpoint)) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise ModelFileError(path, f"not a {what} Lightning checkpoint: no 'state_dict' entry (found {found})")
    tensors = {k[len(prefix):]: v for k, v in state.items() if isinstance(k, str) and k.startswith(prefix)}
    if not tensors:
        prefixes = sorted({".".join(str(k).split(".")[:2]) for k in state})
        raise ModelFileError(path, f"no {what} weights: no 'state_dict' key starts with {prefix!r} "
                                   f"(found {prefixes[:12]}){hint}")
    if bad := [f"{k} ({type(v).__name__})" for k, v in tensors.items() if not isinstance(v, torch.Tensor)]:
        raise ModelFileError(path, f"{what} entries that are not tensors: {bad[:5]}")
    step = checkpoint.get("global_step")
    return tensors, {"global_step": step if isinstance(step, int) else None, "state_dict_entries": len(state)}
