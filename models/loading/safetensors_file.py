"""The pack's own converted weights: safetensors written atomically, read with strict checks.

safetensors holds only tensors and a string-to-string header, so reading it cannot run code. The
pack stores its provenance (source file, sha256, counts, a `kind` tag) as one JSON string under
the metadata key `likeness`; the `kind` tag lets a loader reject a file converted for another
purpose even when its tensors happen to have plausible names.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .errors import ModelFileError
from .strict import Shape, check_state_dict

META_KEY = "likeness"


def sha256_file(path: str | PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (model files can be hundreds of MB)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _unshared(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors, copying any that share storage (safetensors refuses aliases)."""
    seen: set[int] = set()
    out = {}
    for key, value in tensors.items():
        value = value.detach().to("cpu").contiguous()
        storage = value.untyped_storage().data_ptr()
        if storage in seen:
            value = value.clone()
        seen.add(value.untyped_storage().data_ptr())
        out[key] = value
    return out


def write_safetensors_atomic(path: str | PathLike[str], tensors: Mapping[str, torch.Tensor],
                             metadata: Mapping[str, Any]) -> Path:
    """Write `tensors` to `path` via a temporary file in the same folder and `os.replace`.

    A crash or a full disk leaves either the old file or none, never a truncated one that a later
    run would try to load.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(_unshared(tensors), str(tmp), metadata={META_KEY: json.dumps(dict(metadata), sort_keys=True)})
        with tmp.open("rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_checked_safetensors(path: str | PathLike[str],
                             expected: Mapping[str, Shape] | Callable[[dict[str, Any]], Mapping[str, Shape]], *,
                             what: str, kind: str, converter: str,
                             optional: Iterable[str] = ()) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a converted file after checking its `kind` tag and every key and shape.

    `expected` may be a function of the parsed metadata, for files whose sizes vary (the texture
    resolution). Shapes come from the header, so a wrong file is rejected before any tensor data
    is read. Returns the tensors (CPU) and the parsed provenance metadata. `converter` names the
    script that writes such files, for the error a user sees.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, f"{what} not found (convert the official files with {converter})")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            raw_meta = (handle.metadata() or {}).get(META_KEY)
            try:
                meta = json.loads(raw_meta) if raw_meta else {}
            except json.JSONDecodeError:
                meta = {}
            if meta.get("kind") != kind:
                raise ModelFileError(path, f"not a {what}: its metadata kind is {meta.get('kind')!r}, "
                                           f"expected {kind!r} (files are written by {converter})")
            names = handle.keys()
            shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in names}
            wanted = expected(meta) if callable(expected) else expected
            check_state_dict(shapes, wanted, what, path, optional=optional)
            tensors = {k: handle.get_tensor(k) for k in shapes}
    except SafetensorError as exc:
        raise ModelFileError(path, f"not a readable safetensors file ({exc})") from exc
    return tensors, meta
