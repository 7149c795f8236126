"""Face2Diffusion's class-guided denoising regularisation (CGDR).

The identifier should learn the face, not the photo around it. Inside the face mask M the model
denoises towards the real noise as usual; outside it, the prediction with the identifier prompt is
pulled towards what the frozen model predicts for the same noisy latent with the class word in the
identifier's place, so the background follows the class prior instead of the training photo:

    L = w_fg * mean(M (eps_hat(z_t; S*) - eps)^2) + w_bg * mean((1 - M) (eps_hat(z_t; S*) - sg[eps_hat(z_t; class)])^2)

Both means run over every latent element, so with M = 1 the loss is the plain denoising MSE. The
project page states the idea; the exact weighting is not published (the defaults weight both 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class CGDRConfig:
    foreground_weight: float = 1.0  # the ordinary denoising term inside the face mask
    background_weight: float = 1.0  # 0 turns the class-guided term (and its extra UNet pass) off


@dataclass(frozen=True)
class CGDRTerms:
    total: torch.Tensor
    foreground: torch.Tensor  # unweighted, for logging
    background: torch.Tensor


def latent_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 1, H, W) pixel mask in [0, 1] -> (B, 1, h, w) at latent resolution (area average: soft edges)."""
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be (B, 1, H, W), got {tuple(mask.shape)}")
    return F.interpolate(mask.float(), size=tuple(size), mode="area")


def cgdr_loss(prediction: torch.Tensor, target: torch.Tensor, class_prediction: torch.Tensor | None,
              mask: torch.Tensor, config: CGDRConfig = CGDRConfig()) -> CGDRTerms:
    """The CGDR loss of (B, C, h, w) predictions; `mask` is (B, 1, h, w) and broadcasts over channels.

    `target` is what the scheduler trains towards (the noise for epsilon prediction);
    `class_prediction` is detached here, so no gradient ever reaches the class-word branch. It may
    be None only when the background weight is 0.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ")
    mask = mask.to(prediction.dtype)
    if mask.ndim != prediction.ndim or mask.shape[0] != prediction.shape[0] or mask.shape[2:] != prediction.shape[2:]:
        raise ValueError(f"mask {tuple(mask.shape)} does not match the predictions {tuple(prediction.shape)}")
    foreground = (mask * (prediction - target) ** 2).mean()
    if config.background_weight == 0.0:
        background = foreground.new_zeros(())
    else:
        if class_prediction is None:
            raise ValueError("the class-guided term needs the class-word prediction (or background_weight 0)")
        guide = class_prediction.detach().to(prediction.dtype)
        background = ((1.0 - mask) * (prediction - guide) ** 2).mean()
    total = config.foreground_weight * foreground + config.background_weight * background
    return CGDRTerms(total, foreground.detach(), background.detach())
