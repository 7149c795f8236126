"""DiffusionRig: a denoising UNet over x_t ++ physical buffers, conditioned on a global latent.

`encode(x_0)` gives the 64-d global latent (appearance not explained by the DECA buffers);
`forward(x_t, t, physic_cond, global_latent)` predicts the noise. State-dict layout as the
official `modelNNNNNN.pt`: `denoisingUNet.*` and `encoder.*`.
"""
from __future__ import annotations

from functools import partial

import torch
from torch import nn

from .config import DIFFUSIONRIG_256, DiffusionRigConfig
from .resblock_rig import LatentResBlock
from .resnet18 import ResNet18Encoder
from .timestep import batch_timesteps, time_mlp, timestep_embedding
from .unet_layout import DenoisingUNet


class DiffusionRigUNet(DenoisingUNet):
    """ADM UNet whose first conv sees 3 + 9 channels and whose ResBlocks take (time, global latent)."""

    def __init__(self, config: DiffusionRigConfig = DIFFUSIONRIG_256):
        super().__init__()
        self.config = config
        self.time_embed = time_mlp(config.model_channels, config.embed_channels)
        make_res = partial(LatentResBlock, embed_channels=config.embed_channels, latent_dim=config.latent_dim,
                           dropout=config.dropout)
        self.build(config, config.in_channels + config.physic_channels, config.out_channels, make_res)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, physic_cond: torch.Tensor,
                global_latent: torch.Tensor) -> torch.Tensor:
        """x_t (B, 3, H, W), physic_cond (B, 9, H, W) = [rendered, normal, albedo], global latent (B, 64)."""
        return self.forward_stacked(torch.cat([x, physic_cond.to(x.dtype)], dim=1), t, global_latent)

    def forward_stacked(self, x_and_physic: torch.Tensor, t: torch.Tensor | float,
                        global_latent: torch.Tensor) -> torch.Tensor:
        """The same from x_t ++ physic_cond already stacked on the channel axis (B, 12, H, W), as a
        sampler that concatenates the buffers itself (ComfyUI's c_concat) delivers them: no second copy."""
        h = x_and_physic
        t = batch_timesteps(t, h.shape[0], h.device)
        emb = self.time_embed(timestep_embedding(t, self.config.model_channels).to(h.dtype))
        return self.run(h, emb, global_latent.to(h.dtype))


class DiffusionRig(nn.Module):
    def __init__(self, config: DiffusionRigConfig = DIFFUSIONRIG_256):
        super().__init__()
        self.config = config
        self.denoisingUNet = DiffusionRigUNet(config)
        self.encoder = ResNet18Encoder(config.latent_dim)

    def encode(self, x_0: torch.Tensor) -> torch.Tensor:
        """Global latent (B, 64) of a clean image in [-1, 1] (the official `encode_cond`)."""
        return self.encoder(x_0)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, physic_cond: torch.Tensor,
                global_latent: torch.Tensor) -> torch.Tensor:
        return self.denoisingUNet(x, t, physic_cond, global_latent)
