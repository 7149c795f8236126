"""EMOCA's expression encoder (ExpDECA `E_expression`, `deca_clone` backbone) and its checkpoint reader.

EMOCA keeps DECA's E_flame for shape, pose, camera, light and texture and replaces only the
expression with a second DECA-layout ResNet-50 regressor trained with an emotion loss. Its last
layer is `n_exp` wide plus 3 when `exp_deca_jaw_pose` is set (the repository default, so 53), and
ExpDECA.decompose_code reads it as `[:, :50]` = FLAME expression, `[:, 50:]` = jaw axis-angle,
which replaces pose[3:6] (gdl/models/DECA.py). A 50-wide encoder (jaw flag off) is accepted too and
leaves DECA's jaw alone; the 56-wide variant (global pose as well) is refused.

The official weights are a PyTorch Lightning `.ckpt` (`<model>/detail/checkpoints/deca-epoch=...ckpt`)
whose `state_dict` holds `deca.E_expression.*` next to `deca.E_flame.*`, `deca.E_detail.*`, ...
That prefix is inferred from DecaModule's structure, not read from a downloaded file.
"""
from __future__ import annotations

from os import PathLike
from typing import Any

import torch

from ..loading import check_state_dict, lightning_weights
from .deca_encoder import DecaResnetEncoder, encoder_state_shapes

EMOCA_PREFIX = "deca.E_expression."
N_EXP = 50
N_JAW = 3
EMOCA_OUTPUTS = (N_EXP + N_JAW, N_EXP)  # with the jaw head (default), without it
LAST_LAYER = "layers.2.weight"

PathArg = str | PathLike[str]


class EmocaExpressionEncoder(DecaResnetEncoder):
    """E_expression: a (B, 3, 224, 224) DECA crop in [0, 1] -> FLAME expression (and jaw pose)."""

    def __init__(self, out_features: int = N_EXP + N_JAW):
        if out_features not in EMOCA_OUTPUTS:
            raise ValueError(f"EMOCA's expression encoder has {EMOCA_OUTPUTS} outputs, not {out_features}")
        super().__init__(out_features)
        self.out_features = out_features

    @property
    def predicts_jaw(self) -> bool:
        return self.out_features == N_EXP + N_JAW

    def decompose(self, code: torch.Tensor) -> dict[str, torch.Tensor]:
        """exp (B, 50) and, for the 53-wide encoder, jaw (B, 3): ExpDECA's order."""
        if code.ndim != 2 or code.shape[1] != self.out_features:
            raise ValueError(f"EMOCA code must have shape (B, {self.out_features}), got {tuple(code.shape)}")
        parts = {"exp": code[:, :N_EXP]}
        if self.predicts_jaw:
            parts["jaw"] = code[:, N_EXP:]
        return parts

    def encode(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.decompose(self(images))


def emoca_state_shapes(out_features: int = N_EXP + N_JAW) -> dict[str, tuple[int, ...]]:
    """E_expression's keys and shapes (DECA's E_flame layout with a narrower last layer)."""
    return encoder_state_shapes(out_features)


def read_emoca_checkpoint(path: PathArg) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """E_expression's tensors (prefix removed, checked strictly) from EMOCA's Lightning checkpoint.

    The file is read by the pack's restricted Lightning reader: no code in it runs, and a global
    outside its allow-list raises `UnsafePickleError`. Every other entry is discarded.
    """
    tensors, facts = lightning_weights(path, EMOCA_PREFIX, "EMOCA expression encoder",
                                       hint="; give the EMOCA checkpoint from <model>/detail/checkpoints/")
    last = tensors.get(LAST_LAYER)
    outputs = int(last.shape[0]) if last is not None and last.shape[0] in EMOCA_OUTPUTS else EMOCA_OUTPUTS[0]
    check_state_dict(tensors, emoca_state_shapes(outputs), f"EMOCA expression encoder ({EMOCA_PREFIX}*)", path)
    return tensors, {"outputs": outputs, "jaw": outputs == N_EXP + N_JAW, "prefix": EMOCA_PREFIX, **facts}
