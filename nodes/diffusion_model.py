"""The Diff-AE / DiffusionRig denoisers as stock ComfyUI MODELs, and their encoders as a wire value.

The pure networks (models/diffusion) predict epsilon for DDPM x_t at integer timestep t on ADM's
linear betas, which is exactly what ComfyUI's EPS `ModelSamplingDiscrete` with the "sqrt_linear"
schedule feeds a UNet: `_apply_model` scales x by 1/sqrt(1 + sigma^2) and turns sigma back into the
DDPM index. Images live in pixel space (`ChromaRadiance`'s identity 3-channel latent, the stock
"pixel_space" VAE), so every stock sampler, scheduler and latent node works unchanged.

The condition comes from CONDITIONING's tensor slot, `c[0]` = code[:, None, :] (z_sem or the global
latent), so stock ConditioningAverage / ConditioningZeroOut act on it; DiffusionRig's physical
buffers ride under the dict key `physic_cond` and reach the UNet through `c_concat`. The encoder
(Diff-AE's semantic encoder, DiffusionRig's ResNet-18) is split off into its own ModelPatcher so
ComfyUI can load and offload it independently of the UNet.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import comfy.conds
import comfy.latent_formats
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.supported_models_base
import comfy.utils

from ..models.diffusion.config import DiffAEConfig, DiffusionRigConfig
from ..models.diffusion.file_config import file_config
from ..models.diffusion.files import DIFFAE_KIND, DIFFUSIONRIG_KIND, load_diffae, load_diffusionrig

CODE_KEY = "likeness_diffusion"  # CONDITIONING dict key naming the backbone a code was made for
PHYSIC_KEY = "physic_cond"
ADM_LINEAR = {"beta_schedule": "sqrt_linear", "linear_start": 1e-4, "linear_end": 2e-2, "timesteps": 1000}


class Denoiser(nn.Module):
    """ComfyUI's UNet calling convention around a pure backbone; `dtype` is what BaseModel reads."""

    def __init__(self, backbone: nn.Module, kind: str, dtype=None, device=None, operations=None, **_):
        super().__init__()
        self.kind = kind
        self.dtype = dtype or torch.float32
        self.backbone = backbone.to(dtype=self.dtype)

    def forward(self, x, timesteps, context=None, control=None, transformer_options=None, code=None, **_):
        if self.kind == DIFFAE_KIND:
            return self.backbone(x, timesteps, code)
        # DiffusionRig: BaseModel has already appended the buffers (c_concat) to x_t
        return self.backbone.forward_stacked(x, timesteps, code)


class LikenessDiffusionModel(comfy.model_base.BaseModel):
    """BaseModel whose conds are the backbone's code (and DiffusionRig's buffers)."""

    def extra_conds(self, **kwargs):
        denoiser = self.diffusion_model
        config = denoiser.backbone.config
        width = config.z_sem_channels if denoiser.kind == DIFFAE_KIND else config.latent_dim
        made_for = kwargs.get(CODE_KEY)
        if made_for is not None and made_for != denoiser.kind:
            raise ValueError(f"Likeness: this conditioning was made for {made_for}, the model is {denoiser.kind}")
        code = kwargs.get("cross_attn")
        if code is None or code.shape[-1] != width:
            got = None if code is None else tuple(code.shape)
            raise ValueError(f"Likeness: {denoiser.kind} needs a {width}-d code in the conditioning (from the "
                             f"Likeness encode/condition nodes), got a tensor of shape {got}")
        out = {"code": comfy.conds.CONDRegular(code[:, 0, :])}
        if denoiser.kind == DIFFUSIONRIG_KIND:
            noise = kwargs["noise"]
            physic = kwargs.get(PHYSIC_KEY)
            if physic is None:
                physic = torch.zeros((1, config.physic_channels) + tuple(noise.shape[2:]))
            if physic.shape[-2:] != noise.shape[-2:]:
                physic = comfy.utils.common_upscale(physic, noise.shape[-1], noise.shape[-2], "bilinear", "disabled")
            out["c_concat"] = comfy.conds.CONDNoiseShape(comfy.utils.resize_to_batch_size(physic, noise.shape[0]))
        return out


class LikenessDiffusionConfig(comfy.supported_models_base.BASE):
    unet_config = {}
    unet_extra_config = {}
    sampling_settings = ADM_LINEAR
    latent_format = comfy.latent_formats.ChromaRadiance
    memory_usage_factor = 1.0
    supported_inference_dtypes = [torch.float16, torch.bfloat16, torch.float32]

    def get_model(self, state_dict=None, prefix="", device=None):
        return LikenessDiffusionModel(self, comfy.model_base.ModelType.EPS, device=device, unet_model=Denoiser)


@dataclass(frozen=True)
class DiffusionEncoder:
    """The DIFFUSION_ENCODER wire value: image -> code, for the backbone `kind`."""

    kind: str
    config: DiffAEConfig | DiffusionRigConfig
    patcher: comfy.model_patcher.ModelPatcher

    @property
    def code_dim(self) -> int:
        return self.config.z_sem_channels if self.kind == DIFFAE_KIND else self.config.latent_dim

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """IMAGE (B, H, W, 3) in [0, 1] -> codes (B, D) float32, on the CPU."""
        comfy.model_management.load_model_gpu(self.patcher)
        module = self.patcher.model
        param = next(module.parameters())
        x = images[..., :3].movedim(-1, 1).to(param.device, param.dtype) * 2 - 1
        with torch.no_grad():
            return module(x).float().cpu()


def _patcher(module: nn.Module) -> comfy.model_patcher.ModelPatcher:
    return comfy.model_patcher.ModelPatcher(module, load_device=comfy.model_management.get_torch_device(),
                                            offload_device=comfy.model_management.unet_offload_device())


def load_backbone(path: str) -> tuple[comfy.model_patcher.ModelPatcher, DiffusionEncoder]:
    """A converted file -> (MODEL for the stock samplers, DIFFUSION_ENCODER)."""
    kind, config = file_config(path)
    if kind == DIFFAE_KIND:
        full = load_diffae(path, config)
        encoder = full.encoder
        del full.encoder  # lives in its own patcher; the UNet's forward never uses it
        backbone = full
    else:
        full = load_diffusionrig(path, config)
        backbone, encoder = full.denoisingUNet, full.encoder
    load_device = comfy.model_management.get_torch_device()
    model_config = LikenessDiffusionConfig({"backbone": backbone, "kind": kind})
    params = sum(p.numel() for p in backbone.parameters())
    dtype = comfy.model_management.unet_dtype(model_params=params,
                                              supported_dtypes=model_config.supported_inference_dtypes)
    # plain torch layers cannot cast on the fly, so a weight dtype the device cannot compute in is
    # replaced by the compute dtype ComfyUI would have cast to
    cast = comfy.model_management.unet_manual_cast(dtype, load_device, model_config.supported_inference_dtypes)
    dtype = cast or dtype
    model_config.set_inference_dtype(dtype, None)
    model = model_config.get_model(device=comfy.model_management.unet_offload_device())
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=load_device,
                                               offload_device=comfy.model_management.unet_offload_device())
    return patcher, DiffusionEncoder(kind, config, _patcher(encoder.eval()))
