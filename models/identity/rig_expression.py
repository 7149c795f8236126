"""A FACE_RIG's expression as Face2Diffusion's 64-d expression code, through a learned linear map.

Face2Diffusion's mapping network reads a 64-d expression code (probably Deep3DFaceRecon's BFM
expression coefficients). A rig describes expression in its own terms, so a linear map turns the
rig's expression features into that slot; `scripts/train_face2diffusion.py` learns it (with the
mapping network frozen or trained alongside) and writes `f2d_rig_expression.safetensors`.

Features per geometry, the expression after edits plus the jaw:
* mesh468: action-unit weights, `expression + action_units` (both in ACTION_UNITS order), then jaw (3);
* flame:   FLAME expression coefficients with the action-unit edits applied, then jaw (3).
The map file records which layout it was trained on; a rig of another layout is refused.
"""
from __future__ import annotations

from os import PathLike
from pathlib import Path

import torch
from torch import nn

from ..loading import ModelFileError, read_checked_safetensors
from ..loading.safetensors_file import write_safetensors_atomic
from ..rig.rig import FaceRig

RIG_MAP_FILE = "f2d_rig_expression.safetensors"
RIG_MAP_KIND = "f2d_rig_expression"
TRAINER = "scripts/train_face2diffusion.py"


def rig_expression_layout(rig: FaceRig) -> str:
    """A tag naming the feature layout, e.g. 'mesh468:au28+jaw3' or 'flame:exp50+jaw3'."""
    if rig.geometry == "mesh468":
        return f"mesh468:au{rig.expression.shape[1]}+jaw3"
    return f"flame:exp{rig.expression.shape[1]}+jaw3"


def rig_expression_features(rig: FaceRig, flame_assets=None) -> torch.Tensor:
    """(B, K) float32 expression features of each face (edits included); see the module docstring.

    A FLAME rig with action-unit edits needs its FlameAssets to turn the units into coefficients.
    """
    if rig.geometry == "mesh468":
        expression, jaw = rig.expression + rig.action_units, rig.jaw
    else:
        expression, jaw = rig.expression, rig.jaw
        if bool((rig.action_units != 0).any()):
            if flame_assets is None:
                raise ValueError("this FLAME rig has action-unit edits; its FLAME assets are needed to turn them "
                                 "into expression coefficients")
            from ..rig.flame_units import apply_units

            expression, jaw = apply_units(rig.action_units, rig.expression, rig.jaw, flame_assets)
    return torch.cat([expression.float(), jaw.float()], dim=1)


class RigExpressionMap(nn.Module):
    """`code = W features + b`: rig expression features (B, K) -> the mapping network's (B, 64) slot."""

    def __init__(self, layout: str, in_features: int, expression_dim: int = 64):
        super().__init__()
        self.layout = layout
        self.linear = nn.Linear(in_features, expression_dim)
        with torch.no_grad():  # a fresh map outputs zeros, i.e. nothing until trained
            self.linear.weight.zero_()
            self.linear.bias.zero_()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features.to(self.linear.weight))

    def encode_rig(self, rig: FaceRig, flame_assets=None) -> torch.Tensor:
        layout = rig_expression_layout(rig)
        if layout != self.layout:
            raise ValueError(f"this rig-to-expression map was trained on '{self.layout}' rigs; the rig is "
                             f"'{layout}'. Fit the face with the matching FaceFit backend or train a map for it "
                             f"with {TRAINER}.")
        return self(rig_expression_features(rig, flame_assets))


def save_rig_expression_map(path: str | PathLike[str], module: RigExpressionMap, **provenance) -> Path:
    """Atomic write with the layout in the metadata (what `load_rig_expression_map` checks)."""
    meta = {"kind": RIG_MAP_KIND, "layout": module.layout, "in_features": module.linear.in_features,
            "expression_dim": module.linear.out_features, **provenance}
    return write_safetensors_atomic(path, {"linear.weight": module.linear.weight, "linear.bias": module.linear.bias},
                                    meta)


def load_rig_expression_map(path: str | PathLike[str], device: str | torch.device = "cpu") -> RigExpressionMap:
    def shapes(meta: dict) -> dict[str, tuple[int, ...]]:
        k, d = int(meta.get("in_features", 0)), int(meta.get("expression_dim", 64))
        return {"linear.weight": (d, k), "linear.bias": (d,)}

    tensors, meta = read_checked_safetensors(path, shapes, what="Face2Diffusion rig-to-expression map",
                                             kind=RIG_MAP_KIND, converter=TRAINER)
    if not meta.get("layout"):
        raise ModelFileError(Path(path), "rig-to-expression map without a 'layout' in its metadata")
    module = RigExpressionMap(meta["layout"], int(meta["in_features"]), int(meta.get("expression_dim", 64)))
    module.load_state_dict(tensors, strict=True)
    return module.to(device).eval()
