"""The user's converted FLAME / DECA files, found in ComfyUI's likeness_flame model folders."""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import torch

from ..models.flame.files import FLAME_FILE
from .model_files import folder_dirs


def flame_folder() -> Path:
    dirs = folder_dirs("likeness_flame")
    for folder in dirs:
        if (folder / FLAME_FILE).is_file():
            return folder
    raise FileNotFoundError(
        f"FLAME backend: {FLAME_FILE} (and deca_e_flame.safetensors) not found in any likeness_flame folder "
        f"({', '.join(map(str, dirs))}). Download FLAME 2020 (generic_model.pkl) and DECA (deca_model.tar) after "
        "registering with their authors, then run: python scripts/convert_flame_deca.py --flame generic_model.pkl "
        f"--deca deca_model.tar --out {dirs[0]}")


@functools.lru_cache(maxsize=2)
def _load(folder: str, stamp: tuple):
    from ..models.rig.flame_backend import load_flame_assets

    # FLAME's texture space renders only through its UV layout (flame_uv.safetensors): with both, fits keep
    # DECA's texture code and light, as DiffusionRig does; with the texture alone, fit per-vertex albedo instead
    with torch.inference_mode(False):  # FaceFit's landmark refinement differentiates through these tensors
        assets = load_flame_assets(folder)
    return assets if assets.uv is not None else dataclasses.replace(assets, texture=None)


def flame_assets():
    folder = flame_folder()
    stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()))
    return _load(str(folder), stamp)


def assets_for(rig):
    """The FLAME assets a FLAME rig needs for rendering, or None for the embedded mesh."""
    return flame_assets() if rig.geometry == "flame" else None
