"""FLAME head model, DECA's encoder and their assets, in plain PyTorch.

The official files (FLAME 2020 `generic_model.pkl`, DECA's `deca_model.tar`, a texture space,
`landmark_embedding.npy` and optionally EMOCA's checkpoint) are registration-gated: users bring them,
`scripts/convert_flame_deca.py` converts them once to safetensors, and `files.load_*` build the
modules from those.
"""
from .config import FLAME2020, FlameConfig, FlameTopology, flame_tensor_shapes
from .deca_encoder import CODE_SPLIT, DecaFlameEncoder, DecaResnetEncoder, decompose_code, encoder_state_shapes
from .emoca import EmocaExpressionEncoder, emoca_state_shapes, read_emoca_checkpoint
from .files import (DECA_E_FLAME_FILE, EMOCA_FILE, FLAME_FILE, LANDMARKS_FILE, TEXTURE_FILE, UV_FILE,
                    load_deca_encoder, load_emoca_encoder, load_flame_landmarks, load_flame_model, load_flame_texture,
                    load_flame_uv)
from .landmarks import FlameLandmarks, barycentric_landmarks, yaw_bins
from .lbs import linear_blend_skinning
from .model import FlameModel
from .official import read_deca_e_flame, read_flame_pickle, read_landmark_embedding, read_texture_space
from .rotation import axis_angle_to_matrix, yaw_degrees
from .texture import FlameTexture
from .uv_layout import FlameUV, read_head_template_obj

__all__ = [
    "CODE_SPLIT", "DECA_E_FLAME_FILE", "DecaFlameEncoder", "DecaResnetEncoder", "EMOCA_FILE", "EmocaExpressionEncoder",
    "FLAME2020", "FLAME_FILE", "FlameConfig", "FlameLandmarks", "FlameModel", "FlameTexture", "FlameTopology",
    "FlameUV", "LANDMARKS_FILE", "TEXTURE_FILE", "UV_FILE", "axis_angle_to_matrix", "barycentric_landmarks",
    "decompose_code", "emoca_state_shapes", "encoder_state_shapes", "flame_tensor_shapes", "linear_blend_skinning",
    "load_deca_encoder", "load_emoca_encoder", "load_flame_landmarks", "load_flame_model", "load_flame_texture",
    "load_flame_uv", "read_deca_e_flame", "read_emoca_checkpoint", "read_flame_pickle", "read_head_template_obj",
    "read_landmark_embedding", "read_texture_space", "yaw_bins", "yaw_degrees",
]
