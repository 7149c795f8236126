"""One training step's loss: noise a face latent, predict with the identity prompt, apply CGDR.

The frozen parts (VAE, UNet, text encoder, noise scheduler, tokenizer) are passed in as they come
from diffusers / transformers and used through their call conventions only, so this file imports
neither. Gradients flow from the loss through the frozen UNet and text encoder into the
identifier's two vectors, i.e. into the trainable mapping network and rig map.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .cgdr import CGDRConfig, CGDRTerms, cgdr_loss, latent_mask
from .prompts import PromptConfig, sample_prompts
from .text_injection import inject_identifier


@dataclass
class FrozenParts:
    vae: nn.Module  # AutoencoderKL
    unet: nn.Module  # UNet2DConditionModel
    text_encoder: nn.Module  # CLIPTextModel
    noise_scheduler: object  # DDPMScheduler (add_noise, get_velocity, config)
    tokenize: Callable[[list[str]], torch.Tensor]  # prompts -> (B, L) input ids, padded to the model length
    identifier_ids: Sequence[int]  # the identifier's two token ids

    def freeze(self) -> "FrozenParts":
        for module in (self.vae, self.unet, self.text_encoder):
            module.requires_grad_(False)
            module.eval()
        return self


@torch.no_grad()
def encode_latents(vae: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> scaled latents, sampled from the VAE posterior as in SD training."""
    weight = next(vae.parameters())
    latents = vae.encode(pixels.to(weight.device, weight.dtype)).latent_dist.sample()
    return latents * vae.config.scaling_factor


def diffusion_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"unsupported prediction type {kind!r} (epsilon or v_prediction)")


def training_loss(batch: dict[str, torch.Tensor], parts: FrozenParts, trainable: nn.Module, prompts: PromptConfig,
                  cgdr: CGDRConfig = CGDRConfig()) -> CGDRTerms:
    """The CGDR loss of one batch (see cgdr.py); `trainable` maps (identity, rig features) to two vectors."""
    latents = encode_latents(parts.vae, batch["pixels"])
    device = latents.device
    noise = torch.randn_like(latents)
    steps = parts.noise_scheduler.config.num_train_timesteps
    timesteps = torch.randint(0, steps, (len(latents),), device=device)
    noisy = parts.noise_scheduler.add_noise(latents, noise, timesteps)
    target = diffusion_target(parts.noise_scheduler, latents, noise, timesteps)

    rig = batch.get("rig_expression")
    first, last = trainable(batch["identity"].to(device), None if rig is None else rig.to(device))
    with_identifier, with_class = sample_prompts(prompts, len(latents))
    with inject_identifier(parts.text_encoder, parts.identifier_ids, first, last):
        condition = parts.text_encoder(parts.tokenize(with_identifier).to(device))[0]
    prediction = parts.unet(noisy, timesteps, encoder_hidden_states=condition).sample

    class_prediction = None
    if cgdr.background_weight != 0.0:
        with torch.no_grad():
            class_condition = parts.text_encoder(parts.tokenize(with_class).to(device))[0]
            class_prediction = parts.unet(noisy, timesteps, encoder_hidden_states=class_condition).sample
    mask = latent_mask(batch["mask"].to(device), latents.shape[-2:])
    return cgdr_loss(prediction.float(), target.float(), None if class_prediction is None
                     else class_prediction.float(), mask, cgdr)
