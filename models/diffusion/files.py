"""The converted backbone files and their runtime loaders.

`scripts/convert_diffae_diffusionrig.py` writes the official checkpoints as safetensors with a
`kind` tag and the config name in the metadata; the loaders here check both, then every key and
shape against the model definition, and load with `strict=True`. Nothing here reads a pickle.
Models are built on the meta device and take the file's tensors directly, so no time is spent on
random initialisation that would be overwritten.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from os import PathLike
from typing import TypeVar

import torch
from torch import nn

from ..loading import ModelFileError, read_checked_safetensors
from .config import DIFFUSIONRIG_256, FFHQ256_AUTOENC, DiffAEConfig, DiffusionRigConfig
from .diffae import DiffAEAutoencoder
from .rig import DiffusionRig

PathArg = str | PathLike[str]
Shape = tuple[int, ...]
ModelT = TypeVar("ModelT", bound=nn.Module)

DIFFAE_FILE = "diffae_ffhq256_autoenc.safetensors"
DIFFAE_KIND = "diffae_autoencoder"
DIFFUSIONRIG_KIND = "diffusionrig"
CONVERTER = "scripts/convert_diffae_diffusionrig.py"


def diffusionrig_file(step: str) -> str:
    """`diffusionrig_<step>.safetensors`, the step as in the official `model<step>.pt`."""
    return f"diffusionrig_{step}.safetensors"


def state_shapes(build: Callable[[], nn.Module]) -> dict[str, Shape]:
    """Key -> shape of a model's state dict, built on the meta device (no memory, no init)."""
    with torch.device("meta"):
        model = build()
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def diffae_state_shapes(config: DiffAEConfig = FFHQ256_AUTOENC) -> dict[str, Shape]:
    return state_shapes(lambda: DiffAEAutoencoder(config))


def diffusionrig_state_shapes(config: DiffusionRigConfig = DIFFUSIONRIG_256) -> dict[str, Shape]:
    return state_shapes(lambda: DiffusionRig(config))


def _load(path: PathArg, build: Callable[[], ModelT], config_name: str, *, what: str, kind: str,
          dtype: torch.dtype, device: torch.device | str) -> ModelT:
    tensors, meta = read_checked_safetensors(path, state_shapes(build), what=what, kind=kind, converter=CONVERTER)
    if meta.get("config") != config_name:
        raise ModelFileError(path, f"converted for config {meta.get('config')!r}, expected {config_name!r}")
    with torch.device("meta"):
        model = build()
    model.load_state_dict(_cast(tensors, dtype, device), strict=True, assign=True)
    return model.eval()


def _cast(tensors: Mapping[str, torch.Tensor], dtype: torch.dtype,
          device: torch.device | str) -> dict[str, torch.Tensor]:
    """Floating tensors to `dtype`; integer ones (BatchNorm's step counter) keep theirs."""
    return {k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype) for k, v in tensors.items()}


def load_diffae(path: PathArg, config: DiffAEConfig = FFHQ256_AUTOENC, *, dtype: torch.dtype = torch.float32,
                device: torch.device | str = "cpu") -> DiffAEAutoencoder:
    """Diff-AE autoencoder (EMA weights, eval mode) from `diffae_ffhq256_autoenc.safetensors`."""
    return _load(path, lambda: DiffAEAutoencoder(config), config.name, what="converted Diff-AE autoencoder",
                 kind=DIFFAE_KIND, dtype=dtype, device=device)


def load_diffusionrig(path: PathArg, config: DiffusionRigConfig = DIFFUSIONRIG_256, *,
                      dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> DiffusionRig:
    """DiffusionRig (UNet + global-latent encoder, eval mode) from `diffusionrig_<step>.safetensors`."""
    return _load(path, lambda: DiffusionRig(config), config.name, what="converted DiffusionRig model",
                 kind=DIFFUSIONRIG_KIND, dtype=dtype, device=device)

