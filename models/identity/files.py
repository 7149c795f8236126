"""Runtime loaders for the converted Face2Diffusion files in `ComfyUI/models/likeness/face2diffusion/`.

`scripts/convert_face2diffusion.py` turns the official `msid.pt` / `mapping.pt` into the
safetensors below; these functions check the metadata kind and every key and shape, then load the
tensors with `strict=True` into a module built on the meta device (no random initialisation of
weights that are overwritten anyway). Nothing here reads a pickle.
"""
from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from ..loading import ModelFileError, read_checked_safetensors
from .mapping import F2D_MAPPING, Img2TextMapping, MappingConfig, mapping_state_shapes
from .msid import F2D_MSID, MSIDConfig, MSIDEncoder, msid_state_shapes

MSID_FILE = "f2d_msid.safetensors"
MAPPING_FILE = "f2d_mapping.safetensors"

# metadata `kind` tags written by the converter
MSID_KIND = "f2d_msid"
MAPPING_KIND = "f2d_mapping"

CONVERTER = "scripts/convert_face2diffusion.py"

PathArg = str | PathLike[str]
M = TypeVar("M", bound=nn.Module)


def _load(path: PathArg, build: Callable[[], M], shapes: dict[str, tuple[int, ...]], what: str, kind: str,
          device: str | torch.device, dtype: torch.dtype) -> M:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, f"{what} not found (convert the official Face2Diffusion checkpoints with "
                                   f"{CONVERTER})")
    tensors, _ = read_checked_safetensors(path, shapes, what=what, kind=kind, converter=CONVERTER)
    with torch.device("meta"):
        module = build()
    module.load_state_dict(tensors, strict=True, assign=True)
    left = [name for name, t in (*module.named_parameters(), *module.named_buffers()) if t.is_meta]
    if left:  # a tensor outside the state dict would stay unallocated
        raise ModelFileError(path, f"{what}: tensors not provided by the file: {left}")
    return module.to(device=device, dtype=dtype).eval()


def load_msid_encoder(path: PathArg, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                      config: MSIDConfig = F2D_MSID) -> MSIDEncoder:
    """MSIDEncoder (eval mode) from `f2d_msid.safetensors`."""
    return _load(path, lambda: MSIDEncoder(config), msid_state_shapes(config), "converted Face2Diffusion MSID encoder",
                 MSID_KIND, device, dtype)


def load_mapping(path: PathArg, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 config: MappingConfig = F2D_MAPPING) -> Img2TextMapping:
    """Img2TextMapping (eval mode) from `f2d_mapping.safetensors`."""
    return _load(path, lambda: Img2TextMapping(config), mapping_state_shapes(config),
                 "converted Face2Diffusion mapping network", MAPPING_KIND, device, dtype)
