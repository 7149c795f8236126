"""Weighted similarity alignment (Umeyama), batched: the rigid part of fitting a face."""
from __future__ import annotations

import torch


def similarity_fit(source: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """s, R, t minimising sum_i w_i |target_i - (s R source_i + t)|^2.

    source: (N, 3) or (B, N, 3); target: (B, N, 3); weights: (N,). Returns s (B,), R (B, 3, 3)
    (a proper rotation), t (B, 3).
    """
    b = target.shape[0]
    source = source.expand(b, -1, -1) if source.dim() == 2 else source
    w = torch.ones(source.shape[1], dtype=target.dtype, device=target.device) if weights is None else weights
    w = (w / w.sum())[None, :, None]
    mu_s, mu_t = (w * source).sum(1), (w * target).sum(1)
    cs, ct = source - mu_s[:, None], target - mu_t[:, None]
    cov = (w * ct).transpose(1, 2) @ cs  # (B, 3, 3)
    u, sv, vt = torch.linalg.svd(cov)
    d = torch.ones_like(sv)
    d[:, 2] = torch.sign(torch.linalg.det(u @ vt))
    rotation = u @ torch.diag_embed(d) @ vt
    scale = (sv * d).sum(-1) / (w * cs ** 2).sum((1, 2))
    translation = mu_t - scale[:, None] * (rotation @ mu_s[..., None])[..., 0]
    return scale, rotation, translation
