"""Which backbone and configuration a converted file holds, read from its metadata alone.

The converter stores the config name and, since configs are frozen dataclasses, every field as
`config_fields`. The official names resolve to the module constants; any other name (a narrow test
model, a retrained variant) is rebuilt from its fields, so a loader needs no out-of-band knowledge.
"""
from __future__ import annotations

import dataclasses
import json
from os import PathLike
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from ..loading import ModelFileError
from ..loading.safetensors_file import META_KEY
from .config import DIFFUSIONRIG_256, FFHQ256_AUTOENC, DiffAEConfig, DiffusionRigConfig
from .files import CONVERTER, DIFFAE_KIND, DIFFUSIONRIG_KIND

Config = DiffAEConfig | DiffusionRigConfig
KNOWN = {DIFFAE_KIND: (DiffAEConfig, {FFHQ256_AUTOENC.name: FFHQ256_AUTOENC}),
         DIFFUSIONRIG_KIND: (DiffusionRigConfig, {DIFFUSIONRIG_256.name: DIFFUSIONRIG_256})}


def config_fields(config: Config) -> dict[str, Any]:
    """The dataclass as JSON-ready values (tuples become lists)."""
    return dataclasses.asdict(config)


def read_metadata(path: str | PathLike[str]) -> dict[str, Any]:
    """The pack's provenance JSON of a converted safetensors file (header only, no tensor data)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            raw = (handle.metadata() or {}).get(META_KEY)
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(path, f"not a readable safetensors file ({exc})") from exc
    try:
        return json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        raise ModelFileError(path, f"metadata is not JSON ({exc})") from exc


def config_from_metadata(path: str | PathLike[str], meta: dict[str, Any]) -> tuple[str, Config]:
    """(kind, config) a converted file was written for."""
    kind = meta.get("kind")
    if kind not in KNOWN:
        raise ModelFileError(path, f"not a converted Diff-AE or DiffusionRig file (metadata kind {kind!r}; "
                                   f"convert the official checkpoints with {CONVERTER})")
    cls, official = KNOWN[kind]
    name = meta.get("config")
    if name in official:
        return kind, official[name]
    fields = meta.get("config_fields")
    if not isinstance(fields, dict):
        raise ModelFileError(path, f"config {name!r} is not an official one and the file stores no config_fields")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - set(names))
    if unknown or fields.get("name") != name:
        raise ModelFileError(path, f"config_fields do not describe a {cls.__name__} named {name!r} "
                                   f"(unknown fields {unknown})")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    return kind, cls(**values)


def file_config(path: str | PathLike[str]) -> tuple[str, Config]:
    return config_from_metadata(Path(path), read_metadata(path))
