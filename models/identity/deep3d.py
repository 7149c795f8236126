"""Deep3DFaceRecon's coefficient regressor (`net_recon`): one aligned face crop to 257 BFM coefficients.

Deep3DFaceRecon (Deng et al., CVPR-W 2019; the PyTorch release) regresses the coefficients of the
Basel Face Model from a 224 x 224 RGB crop in [0, 1] (see deep3d_align.py for the crop). The
network is a ResNet-50 without its classifier whose pooled 2048-d feature feeds seven 1x1
convolutions, one per coefficient group, concatenated in this order:

    identity 80 | expression 64 | texture 80 | angles 3 | SH lighting 27 | translation xy 2, z 1

The 64 expression coefficients (80..143) are what Face2Diffusion's 64-d expression slot most
likely held in training. The layout follows the released checkpoint's `net_recon` entry
(`ReconNetWrapper('resnet50', use_last_fc=False)`): `backbone.*` with torchvision's ResNet names
and no `fc`, then `final_layers.{0..6}.{weight, bias}`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..backbones.resnet import ResNet50Trunk
from .alignment import Face
from .deep3d_align import deep3d_crops

COEFFICIENT_GROUPS: tuple[tuple[str, int], ...] = (
    ("identity", 80), ("expression", 64), ("texture", 80), ("angles", 3), ("lighting", 27),
    ("translation_xy", 2), ("translation_z", 1))


@dataclass(frozen=True)
class Deep3DConfig:
    groups: tuple[tuple[str, int], ...] = COEFFICIENT_GROUPS
    input_size: int = 224
    rescale_factor: float = 102.0  # pixels per unit of the standard 3D landmarks in the crop
    antialias: bool = True  # prefilter when cropping; the reference resizes with PIL's bicubic filter

    @property
    def coefficient_count(self) -> int:
        return sum(n for _, n in self.groups)

    def span(self, group: str) -> slice:
        """Where a coefficient group sits in the concatenated output."""
        start = 0
        for name, n in self.groups:
            if name == group:
                return slice(start, start + n)
            start += n
        raise KeyError(f"no coefficient group {group!r}; groups are {[n for n, _ in self.groups]}")


DEEP3D = Deep3DConfig()


class Deep3DRecon(nn.Module):
    """(B, 3, 224, 224) RGB crops in [0, 1] -> (B, 257) BFM coefficients. Use in eval mode (BatchNorm)."""

    def __init__(self, config: Deep3DConfig = DEEP3D):
        super().__init__()
        self.config = config
        self.backbone = ResNet50Trunk()
        self.final_layers = nn.ModuleList(nn.Conv2d(ResNet50Trunk.out_features, n, 1) for _, n in config.groups)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        size = self.config.input_size
        if pixels.ndim != 4 or pixels.shape[1:] != (3, size, size):
            raise ValueError(f"Deep3DRecon expects (B, 3, {size}, {size}) RGB crops in [0, 1], "
                             f"got {tuple(pixels.shape)}")
        feature = self.backbone(pixels)[..., None, None]  # the official head is 1x1 convolutions
        return torch.cat([layer(feature) for layer in self.final_layers], dim=1).flatten(1)

    def expression(self, coefficients: torch.Tensor) -> torch.Tensor:
        """The (B, 64) BFM expression coefficients of a (B, 257) output."""
        return coefficients[:, self.config.span("expression")]

    @torch.no_grad()
    def encode_faces(self, images: torch.Tensor, faces: Sequence[Face]) -> torch.Tensor:
        """(B, H, W, 3) images in [0, 1] and N faces (FaceDetections or 5 points) -> (N, 257) coefficients.

        Each face is cropped as the reference preprocessing does (deep3d_align.py); with B == N
        face i comes from image i, with B == 1 every face comes from that image.
        """
        crops = deep3d_crops(images, faces, self.config.input_size, self.config.rescale_factor,
                             antialias=self.config.antialias)
        weight = self.backbone.conv1.weight
        return self(crops.permute(0, 3, 1, 2).to(weight.device, weight.dtype))


def deep3d_state_shapes(config: Deep3DConfig = DEEP3D) -> dict[str, tuple[int, ...]]:
    """Every state-dict key of the regressor with its shape (built on the meta device)."""
    with torch.device("meta"):
        state = Deep3DRecon(config).state_dict()
    return {key: tuple(value.shape) for key, value in state.items()}
