"""Reading `.npy` files without `np.load(allow_pickle=True)`.

An `.npy` file is a magic string, a header (a Python dict literal with `descr`, `fortran_order`
and `shape`) and then either raw array bytes or, for object arrays, a pickle. numpy unpickles the
latter with no restrictions, so this module parses the header itself (with `ast.literal_eval`,
which evaluates literals only) and hands an object payload to the restricted unpickler.
"""
from __future__ import annotations

import ast
import io
import math
import struct
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import ModelFileError
from .unpickle import NPY_OBJECT_GLOBALS, GlobalTable, restricted_load

MAGIC = b"\x93NUMPY"
_MAX_HEADER = 1 << 20  # real headers are ~100 bytes; this bounds literal_eval's work


@dataclass(frozen=True)
class NpyHeader:
    dtype: np.dtype
    fortran_order: bool
    shape: tuple[int, ...]


def read_npy_header(stream: BinaryIO, source: str) -> NpyHeader:
    """Parse the magic, version and header dict; leaves `stream` at the start of the data."""
    if stream.read(6) != MAGIC:
        raise ModelFileError(source, "not an .npy file (the magic string \\x93NUMPY is missing)")
    version = stream.read(2)
    if len(version) != 2 or version[0] not in (1, 2, 3):
        raise ModelFileError(source, f"unsupported .npy format version {tuple(version)}; expected 1.0, 2.0 or 3.0")
    length_format = "<H" if version[0] == 1 else "<I"
    raw_length = stream.read(struct.calcsize(length_format))
    if len(raw_length) != struct.calcsize(length_format):
        raise ModelFileError(source, ".npy header is truncated")
    (length,) = struct.unpack(length_format, raw_length)
    if length > _MAX_HEADER:
        raise ModelFileError(source, f".npy header claims {length} bytes; refusing headers over {_MAX_HEADER}")
    raw = stream.read(length)
    if len(raw) != length:
        raise ModelFileError(source, ".npy header is truncated")
    try:
        header = ast.literal_eval(raw.decode("utf-8" if version[0] == 3 else "latin-1"))
    except (ValueError, SyntaxError, UnicodeDecodeError) as exc:
        raise ModelFileError(source, f".npy header is not a dict literal ({exc})") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ModelFileError(source, f".npy header should hold exactly descr, fortran_order and shape; got {header!r}")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise ModelFileError(source, f".npy header has an invalid shape {shape!r}")
    if not isinstance(header["fortran_order"], bool):
        raise ModelFileError(source, f".npy header has an invalid fortran_order {header['fortran_order']!r}")
    try:
        descr = header["descr"]
        dtype = np.dtype(descr) if isinstance(descr, str) else np.lib.format.descr_to_dtype(descr)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(source, f".npy header has an invalid dtype {header['descr']!r} ({exc})") from None
    return NpyHeader(dtype, header["fortran_order"], shape)


def _read_npy(stream: BinaryIO, source: str, allow_objects: bool, allowed: GlobalTable) -> np.ndarray:
    header = read_npy_header(stream, source)
    if header.dtype.hasobject:
        if not allow_objects:
            raise ModelFileError(source, "holds a pickled object array, which this loader does not accept")
        array = restricted_load(stream, source=source, allowed=allowed, purpose="pickled .npy object array")
        if not isinstance(array, np.ndarray) or array.shape != header.shape:
            found = f"{type(array).__name__} {getattr(array, 'shape', '')}".strip()
            raise ModelFileError(source, f"the pickled payload is a {found}, not the {header.shape} array "
                                         f"its header announces")
        return array
    count = math.prod(header.shape)
    buffer = bytearray(count * header.dtype.itemsize)
    got = stream.readinto(buffer)
    if got != len(buffer):
        raise ModelFileError(source, f".npy data is truncated: {got} of {len(buffer)} bytes for shape {header.shape}")
    flat = np.frombuffer(buffer, dtype=header.dtype, count=count)
    return flat.reshape(header.shape, order="F" if header.fortran_order else "C")


def load_npy(path: str | PathLike[str], *, allow_objects: bool = False,
             allowed: GlobalTable = NPY_OBJECT_GLOBALS) -> np.ndarray:
    """Load an `.npy` file; object arrays only with `allow_objects`, and then through `allowed`."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, ".npy file not found")
    with path.open("rb") as stream:
        return _read_npy(stream, str(path), allow_objects, allowed)


def loads_npy(data: bytes, *, source: str = "<bytes>", allow_objects: bool = False,
              allowed: GlobalTable = NPY_OBJECT_GLOBALS) -> np.ndarray:
    """`load_npy` for bytes already in memory (e.g. a member of an archive)."""
    return _read_npy(io.BytesIO(data), source, allow_objects, allowed)
