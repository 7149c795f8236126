"""FLAME albedo (texture) space: a UV image as mean + linear combination of principal components.

DECA reads either `FLAME_texture.npz` (keys `mean`, `tex_dir`; 200 components; values 0..255) or
`FLAME_albedo_from_BFM.npz` (keys `MU`, `PC`; 199 components; values already 0..1), keeps the first
50 components, reshapes the flat vectors to 512 x 512 x 3 and swaps the channels BGR -> RGB. The
converter (`official.read_texture_space`) applies the scale and the channel swap once, so the
converted tensors are RGB in 0..1 scale and this module only evaluates the linear model.
"""
from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

import torch
import torch.nn.functional as F
from torch import nn

from ..loading import ModelFileError, check_state_dict


def texture_shapes(n_components: int, height: int, width: int) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of a converted texture space: `mean` (3, H, W), `basis` (K, 3, H, W)."""
    return {"mean": (3, height, width), "basis": (n_components, 3, height, width)}


class FlameTexture(nn.Module):
    """UV albedo images from DECA's texture code."""

    def __init__(self, tensors: Mapping[str, torch.Tensor], source: str | PathLike[str] = "<texture tensors>"):
        super().__init__()
        mean = tensors.get("mean")
        if mean is None or mean.ndim != 3 or "basis" not in tensors:
            raise ModelFileError(source, "texture space needs 'mean' (3, H, W) and 'basis' (K, 3, H, W); "
                                         f"got {sorted(tensors)}")
        _, height, width = mean.shape
        check_state_dict(tensors, texture_shapes(tensors["basis"].shape[0], height, width), "FLAME texture space",
                         source)
        self.register_buffer("mean", mean.detach().to(torch.float32).contiguous(), persistent=False)
        self.register_buffer("basis", tensors["basis"].detach().to(torch.float32).contiguous(), persistent=False)

    @property
    def n_components(self) -> int:
        return self.basis.shape[0]

    def albedo_uv(self, tex_coeffs: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """Albedo UV maps (B, 3, H, W), RGB, on DECA's 0..1 scale (not clamped, like DECA).

        tex_coeffs is (B, K). `size` resamples with nearest-neighbour, as DECA does when it
        brings the 512 px texture to its 256 px renderer.
        """
        if tex_coeffs.ndim != 2 or tex_coeffs.shape[1] != self.n_components:
            raise ValueError(f"texture code must have shape (B, {self.n_components}), got {tuple(tex_coeffs.shape)}")
        flat = tex_coeffs.to(self.basis) @ self.basis.flatten(1)
        albedo = self.mean.unsqueeze(0) + flat.view(-1, *self.mean.shape)
        if size is not None and albedo.shape[-2:] != (size, size):
            albedo = F.interpolate(albedo, size=(size, size), mode="nearest")
        return albedo

    forward = albedo_uv
