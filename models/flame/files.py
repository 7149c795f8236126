"""Runtime loaders for the converted FLAME / DECA files in `ComfyUI/models/likeness/flame/`.

`scripts/convert_flame_deca.py` turns the official files into the safetensors below; these
functions read them back with the strict checks (metadata kind, every key and shape) and build
the modules. Nothing here reads a pickle.
"""
from __future__ import annotations

from os import PathLike
from typing import Any

import torch

from ..loading import ModelFileError, read_checked_safetensors
from .config import DECA_CONFIG, FLAME2020, FlameConfig, FlameTopology, flame_tensor_shapes
from .deca_encoder import DecaFlameEncoder, encoder_state_shapes
from .emoca import EMOCA_OUTPUTS, EmocaExpressionEncoder, emoca_state_shapes
from .landmarks import LANDMARK_SHAPES, OPTIONAL_LANDMARKS, FlameLandmarks
from .model import FlameModel
from .texture import FlameTexture, texture_shapes
from .uv_layout import FlameUV

FLAME_FILE = "flame2020_generic.safetensors"
DECA_E_FLAME_FILE = "deca_e_flame.safetensors"
TEXTURE_FILE = "flame_texture.safetensors"
LANDMARKS_FILE = "flame_landmarks.safetensors"
UV_FILE = "flame_uv.safetensors"
EMOCA_FILE = "emoca_expression.safetensors"

# metadata `kind` tags written by the converter
FLAME_KIND = "flame2020_generic"
DECA_E_FLAME_KIND = "deca_e_flame"
TEXTURE_KIND = "flame_texture"
LANDMARKS_KIND = "flame_landmarks"
UV_KIND = "flame_uv"
EMOCA_KIND = "emoca_expression"

PathArg = str | PathLike[str]
CONVERTER = "scripts/convert_flame_deca.py"


def load_flame_model(path: PathArg, config: FlameConfig = DECA_CONFIG,
                     topology: FlameTopology = FLAME2020) -> FlameModel:
    """FlameModel from `flame2020_generic.safetensors`."""
    tensors, _ = read_checked_safetensors(path, flame_tensor_shapes(topology), what="converted FLAME 2020 model",
                                          kind=FLAME_KIND, converter=CONVERTER)
    return FlameModel(tensors, config, topology, source=path)


def load_deca_encoder(path: PathArg) -> DecaFlameEncoder:
    """DECA's E_flame (eval mode) from `deca_e_flame.safetensors`, loaded with strict=True."""
    tensors, _ = read_checked_safetensors(path, encoder_state_shapes(), what="converted DECA E_flame",
                                          kind=DECA_E_FLAME_KIND, converter=CONVERTER)
    encoder = DecaFlameEncoder()
    encoder.load_state_dict(tensors, strict=True)
    return encoder.eval()


def load_emoca_encoder(path: PathArg) -> EmocaExpressionEncoder:
    """EMOCA's expression encoder (eval mode) from `emoca_expression.safetensors`, strict; its width
    (53 with the jaw head, 50 without) comes from the file's metadata."""

    def expected(meta: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        outputs = meta.get("outputs")
        if outputs not in EMOCA_OUTPUTS:
            raise ModelFileError(path, f"EMOCA metadata 'outputs' is {outputs!r}, expected one of {EMOCA_OUTPUTS}; "
                                       f"re-run {CONVERTER} --emoca")
        return emoca_state_shapes(outputs)

    tensors, meta = read_checked_safetensors(path, expected, what="converted EMOCA expression encoder",
                                             kind=EMOCA_KIND, converter=CONVERTER)
    encoder = EmocaExpressionEncoder(meta["outputs"])
    encoder.load_state_dict(tensors, strict=True)
    return encoder.eval()


def load_flame_texture(path: PathArg) -> FlameTexture:
    """FlameTexture from `flame_texture.safetensors` (component count and resolution from its metadata)."""

    def expected(meta: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        try:
            side = int(meta["resolution"])
            return texture_shapes(int(meta["components_kept"]), side, side)
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(path, "texture metadata lacks 'components_kept' / 'resolution'; "
                                       "re-run scripts/convert_flame_deca.py") from None

    tensors, _ = read_checked_safetensors(path, expected, what="converted FLAME texture space", kind=TEXTURE_KIND,
                                          converter=CONVERTER)
    return FlameTexture(tensors, source=path)


def load_flame_landmarks(path: PathArg, topology: FlameTopology = FLAME2020) -> FlameLandmarks:
    """FlameLandmarks from `flame_landmarks.safetensors` (the full 68-point embedding is optional)."""
    tensors, _ = read_checked_safetensors(path, LANDMARK_SHAPES, what="converted FLAME landmark embedding",
                                          kind=LANDMARKS_KIND, converter=CONVERTER, optional=OPTIONAL_LANDMARKS)
    return FlameLandmarks(tensors, topology, source=path)


def load_flame_uv(path: PathArg, topology: FlameTopology = FLAME2020) -> FlameUV:
    """FLAME's UV layout from `flame_uv.safetensors` (UV count from its metadata)."""

    def expected(meta: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        try:
            return {"uv": (int(meta["uv_coords"]), 2), "uv_faces": (topology.n_faces, 3)}
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(path, f"UV layout metadata lacks 'uv_coords'; re-run {CONVERTER} --uv") from None

    tensors, _ = read_checked_safetensors(path, expected, what="converted FLAME UV layout", kind=UV_KIND,
                                          converter=CONVERTER)
    uv, uv_faces = tensors["uv"].to(torch.float32), tensors["uv_faces"].to(torch.int64)
    if uv_faces.numel() and (int(uv_faces.min()) < 0 or int(uv_faces.max()) >= uv.shape[0]):
        raise ModelFileError(path, f"uv_faces refer outside the {uv.shape[0]} UV coordinates")
    return FlameUV(uv, uv_faces)
