"""Pixel-space diffusion backbones for face editing: Diff-AE and DiffusionRig, in plain PyTorch.

* `DiffAEAutoencoder` (Diff-AE ffhq256_autoenc): `encode(x_0) -> z_sem`, `forward(x_t, t, z_sem) -> eps`.
* `DiffusionRig`: `encode(x_0) -> global_latent`, `forward(x_t, t, physic_cond, global_latent) -> eps`.
* `schedule` / `ddim`: the ADM linear schedule, timestep respacing, reference DDIM sampling and inversion.
* `training`: the objective both were trained with (noise the image at a random t, MSE on the noise).
* `load_diffae` / `load_diffusionrig`: strict loaders of the files written by
  scripts/convert_diffae_diffusionrig.py.

State dicts match the official checkpoints key for key, so converted weights load with strict=True.
"""
from .config import DIFFUSIONRIG_256, FFHQ256_AUTOENC, DiffAEConfig, DiffusionRigConfig
from .ddim import ddim_reverse, ddim_sample, ddim_step
from .diffae import DiffAEAutoencoder
from .files import (DIFFAE_FILE, DIFFAE_KIND, DIFFUSIONRIG_KIND, diffae_state_shapes, diffusionrig_file,
                    diffusionrig_state_shapes, load_diffae, load_diffusionrig)
from .rig import DiffusionRig, DiffusionRigUNet
from .schedule import DiffusionSchedule, SpacedSteps, linear_betas, space_timesteps
from .semantic_encoder import SemanticEncoder

__all__ = [
    "DIFFAE_FILE", "DIFFAE_KIND", "DIFFUSIONRIG_256", "DIFFUSIONRIG_KIND", "DiffAEAutoencoder", "DiffAEConfig",
    "DiffusionRig", "DiffusionRigConfig", "DiffusionRigUNet", "DiffusionSchedule", "FFHQ256_AUTOENC",
    "SemanticEncoder", "SpacedSteps", "ddim_reverse", "ddim_sample", "ddim_step", "diffae_state_shapes",
    "diffusionrig_file", "diffusionrig_state_shapes", "linear_betas", "load_diffae", "load_diffusionrig",
    "space_timesteps",
]
