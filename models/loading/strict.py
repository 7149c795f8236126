"""Key-by-key, shape-by-shape comparison of a file's tensors with what a model expects.

Official code often copies checkpoints non-strictly (DECA's `copy_state_dict` silently skips
missing or mis-shaped keys), which turns a wrong file into a quietly wrong model. Every loader in
this pack compares instead, and on a mismatch raises an error listing the missing keys, the
unexpected keys and the shape mismatches (the first few of each, with counts).

Expectations can come from a dict or from a state-dict manifest: `#` header lines, then one
`key (shape)` line per tensor, the shape written as a Python tuple (`(512, 128)`, `(512,)`, `()`).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from .errors import ModelFileError

Shape = tuple[int, ...]
_LINE = re.compile(r"^(\S+) \(((?:\d+, )*\d+,?|)\)$")


class StateDictMismatchError(ModelFileError):
    """The file's tensors differ from the expected ones; the lists are kept for programmatic use."""

    def __init__(self, file: str | PathLike[str], message: str, missing: list[str], unexpected: list[str],
                 mismatched: list[tuple[str, Shape, Shape]]):
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched
        super().__init__(file, message)


def parse_manifest(path: str | PathLike[str], *, prefix: str | None = None) -> dict[str, Shape]:
    """Read a manifest; with `prefix`, keep only keys starting with it, with the prefix removed."""
    path = Path(path)
    shapes: dict[str, Shape] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ModelFileError(path, f"line {number} is not 'key (shape)': {line!r}")
        key, dims = match.group(1), match.group(2)
        if prefix is not None:
            if not key.startswith(prefix):
                continue
            key = key[len(prefix):]
        shapes[key] = tuple(int(d) for d in dims.replace(" ", "").split(",") if d)
    return shapes


def shapes_of(tensors: Mapping[str, Any]) -> dict[str, Shape]:
    """Shapes of a mapping of tensors / arrays (values already given as shapes pass through)."""
    return {k: tuple(int(d) for d in (v if isinstance(v, tuple) else v.shape)) for k, v in tensors.items()}


def _listing(items: list[str], limit: int) -> str:
    shown = "\n".join(f"    {item}" for item in items[:limit])
    more = f"\n    ... and {len(items) - limit} more" if len(items) > limit else ""
    return shown + more


def _fmt(shape: Shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def check_state_dict(actual: Mapping[str, Any], expected: Mapping[str, Shape] | str | PathLike[str], what: str,
                     file: str | PathLike[str], *, prefix: str | None = None,
                     optional: Iterable[str] = (), optional_suffixes: Iterable[str] = (),
                     allow_unexpected: bool = False, limit: int = 10) -> None:
    """Raise `StateDictMismatchError` unless `actual` has exactly the expected keys and shapes.

    `actual` maps keys to shapes or to tensors/arrays. `expected` is a dict or a manifest path
    (with `prefix` selecting and stripping one model's entries). Keys in `optional`, or ending in
    one of `optional_suffixes` (e.g. BatchNorm's `num_batches_tracked`), may be absent but must have
    the right shape when present. `allow_unexpected` tolerates extra keys (for source files that
    carry entries the pack does not use).
    """
    source = "manifest " + Path(expected).name if isinstance(expected, (str, PathLike)) else "the model definition"
    wanted = parse_manifest(expected, prefix=prefix) if isinstance(expected, (str, PathLike)) else dict(expected)
    found = shapes_of(actual)
    optional = set(optional)
    suffixes = tuple(optional_suffixes)

    missing = [k for k in wanted if k not in found and k not in optional and not (suffixes and k.endswith(suffixes))]
    unexpected = [] if allow_unexpected else [k for k in found if k not in wanted]
    mismatched = [(k, wanted[k], found[k]) for k in wanted if k in found and tuple(wanted[k]) != found[k]]
    if not (missing or unexpected or mismatched):
        return

    parts = [f"not a valid {what}: expected {len(wanted)} tensors (per {source}), found {len(found)}."]
    if missing:
        parts.append(f"  missing {len(missing)} key(s):\n"
                     + _listing([f"{k} {_fmt(wanted[k])}" for k in missing], limit))
    if unexpected:
        parts.append(f"  unexpected {len(unexpected)} key(s):\n"
                     + _listing([f"{k} {_fmt(found[k])}" for k in unexpected], limit))
    if mismatched:
        parts.append(f"  wrong shape for {len(mismatched)} key(s):\n"
                     + _listing([f"{k}: expected {_fmt(w)}, found {_fmt(f)}" for k, w, f in mismatched], limit))
    raise StateDictMismatchError(file, "\n".join(parts), missing, unexpected, mismatched)
