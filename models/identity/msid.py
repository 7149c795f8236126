"""Face2Diffusion's multi-scale identity (MSID) encoder.

A ViT-S/8 on 112 x 112 ArcFace crops, pretrained for face recognition with the ArcFace loss on the
concatenation of the class token after several blocks, so that shallow blocks (pose, lighting,
rough shape) and deep ones (identity) all contribute. The feature is, for each block i in
`feature_blocks`, the class token after block i through BatchNorm1d then LayerNorm
(`norms.layer_i`), concatenated: 4 x 384 = 1536 values for the released model.

The transformer is timm's VisionTransformer (the official class subclasses it). Its parts are
adopted as direct children here, so the state dict carries exactly the official `msid.pt` keys:
`cls_token`, `pos_embed`, `patch_embed.*`, `blocks.*`, `norm.*` (the final norm, unused by the
feature but present in the file) and `norms.*`. timm is imported when an encoder is built, not
when this module is imported.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from .alignment import Face, arcface_crops


@dataclass(frozen=True)
class MSIDConfig:
    img_size: int = 112
    patch_size: int = 8
    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    vit_norm_eps: float = 1e-6  # the transformer's LayerNorms; the feature heads keep PyTorch's 1e-5
    feature_blocks: tuple[int, ...] = (2, 5, 8, 11)
    antialias: bool = True  # prefilter when cropping (see alignment.py); False = the reference bilinear crop

    @property
    def feature_dim(self) -> int:
        return self.embed_dim * len(self.feature_blocks)


F2D_MSID = MSIDConfig()


class MSIDEncoder(nn.Module):
    """(B, 3, 112, 112) RGB crops in [-1, 1] -> (B, 1536) multi-scale identity features.

    Call `.eval()` before use (the loaders return it in eval mode): the feature heads hold
    BatchNorm layers, which in training mode would mix the faces of a batch.
    """

    def __init__(self, config: MSIDConfig = F2D_MSID):
        super().__init__()
        from timm.models.vision_transformer import VisionTransformer

        blocks = config.feature_blocks
        if not blocks or list(blocks) != sorted(set(blocks)) or not 0 <= blocks[0] <= blocks[-1] < config.depth:
            raise ValueError(f"feature_blocks {blocks} must be increasing block indices in [0, {config.depth})")
        self.config = config
        vit = VisionTransformer(img_size=config.img_size, patch_size=config.patch_size, embed_dim=config.embed_dim,
                                depth=config.depth, num_heads=config.num_heads, mlp_ratio=config.mlp_ratio,
                                qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=config.vit_norm_eps),
                                num_classes=0, global_pool="token", class_token=True)
        self.cls_token = vit.cls_token
        self.pos_embed = vit.pos_embed
        self.patch_embed = vit.patch_embed
        self.blocks = vit.blocks
        self.norm = vit.norm
        width = config.embed_dim
        self.norms = nn.ModuleDict({f"layer_{i}": nn.Sequential(nn.BatchNorm1d(width), nn.LayerNorm(width))
                                    for i in config.feature_blocks})

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        size = self.config.img_size
        if pixels.ndim != 4 or pixels.shape[1:] != (3, size, size):
            raise ValueError(f"MSID expects (B, 3, {size}, {size}) RGB crops in [-1, 1], got {tuple(pixels.shape)}")
        tokens = self.patch_embed(pixels)
        tokens = torch.cat([self.cls_token.expand(len(tokens), -1, -1), tokens], dim=1) + self.pos_embed
        features = []
        last = max(self.config.feature_blocks)
        for index, block in enumerate(self.blocks[:last + 1]):
            tokens = block(tokens)
            if index in self.config.feature_blocks:
                features.append(self.norms[f"layer_{index}"](tokens[:, 0]))
        return torch.cat(features, dim=1)

    @torch.no_grad()
    def encode_faces(self, images: torch.Tensor, faces: Sequence[Face]) -> torch.Tensor:
        """(B, H, W, 3) images in [0, 1] and N faces (FaceDetections or 5 points each) -> (N, 1536) features.

        Crops each face to the ArcFace template (see `arcface_crops` for how images pair with
        faces), scales it to [-1, 1] as the official `(x / 255 - 0.5) / 0.5`, and runs the
        encoder on its own device and dtype.
        """
        crops = arcface_crops(images, faces, self.config.img_size, antialias=self.config.antialias)
        weight = self.cls_token
        pixels = crops.permute(0, 3, 1, 2).to(weight.device, weight.dtype) * 2.0 - 1.0
        return self(pixels)


def msid_state_shapes(config: MSIDConfig = F2D_MSID) -> dict[str, tuple[int, ...]]:
    """Every state-dict key of the encoder with its shape (built on the meta device: no weights)."""
    with torch.device("meta"):
        state = MSIDEncoder(config).state_dict()
    return {key: tuple(value.shape) for key, value in state.items()}
