"""Diff-AE autoencoder (`BeatGANsAutoencModel`, ffhq256_autoenc): the z_sem-conditioned denoiser.

`encode(x_0)` gives the semantic code z_sem; `forward(x_t, t, z_sem)` predicts the noise in x_t.
The state dict is the official one key for key: decoder entries at the top level
(`time_embed.time_embed.*`, `input_blocks.*`, ..., `out.*`) and the semantic encoder under
`encoder.*`.
"""
from __future__ import annotations

from functools import partial

import torch
from torch import nn

from .config import FFHQ256_AUTOENC, DiffAEConfig
from .resblock_diffae import TwoCondResBlock
from .semantic_encoder import SemanticEncoder
from .timestep import batch_timesteps, time_mlp, timestep_embedding
from .unet_layout import DenoisingUNet


class TimeEmbed(nn.Module):
    """Diff-AE's `TimeStyleSeperateEmbed`: the time MLP under `.time_embed`.

    Its other half, the style projection, is an identity in ffhq256_autoenc: z_sem reaches the
    ResBlocks unprojected, so only the time MLP has weights.
    """

    def __init__(self, model_channels: int, embed_channels: int):
        super().__init__()
        self.time_embed = time_mlp(model_channels, embed_channels)

    def forward(self, t_features: torch.Tensor) -> torch.Tensor:
        return self.time_embed(t_features)


class DiffAEAutoencoder(DenoisingUNet):
    def __init__(self, config: DiffAEConfig = FFHQ256_AUTOENC):
        super().__init__()
        self.config = config
        self.time_embed = TimeEmbed(config.model_channels, config.embed_channels)
        make_res = partial(TwoCondResBlock, embed_channels=config.embed_channels,
                           z_sem_channels=config.z_sem_channels, dropout=config.dropout)
        self.build(config, config.in_channels, config.out_channels, make_res)
        self.encoder = SemanticEncoder(config)

    def encode(self, x_0: torch.Tensor) -> torch.Tensor:
        """Semantic code z_sem (B, 512) of a clean image in [-1, 1]."""
        return self.encoder(x_0)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, z_sem: torch.Tensor) -> torch.Tensor:
        """Predicted noise for x_t (B, 3, H, W) at DDPM timestep(s) t, given z_sem (B, 512)."""
        t = batch_timesteps(t, x.shape[0], x.device)
        emb = self.time_embed(timestep_embedding(t, self.config.model_channels).to(x.dtype))
        return self.run(x, emb, z_sem.to(x.dtype))
