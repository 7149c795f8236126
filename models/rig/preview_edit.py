"""The edit without diffusion weights: the rig's edit applied to the photo itself.

A geometry edit moves the crop's pixels along the mesh's motion (mesh_warp); a lighting edit
multiplies them by the ratio of new to old SH shading (relight). Both keep everything the rig does
not model (skin texture, hair, background) from the photo, so the preview is faithful wherever
the edit is small, and it needs nothing but the fitted rig.

Frames: the "old" frame is the aligned crop as photographed, which the fitted rig matches; the "new"
frame is the edited crop, which the edited rig matches. Outputs are in the new frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..faces.filters import gaussian_blur
from ..render.raster import rasterize
from .flow import mesh_flow, sample_flow


@dataclass(frozen=True)
class WarpResult:
    """image: (B, H, W, C) the warped crop; flow: (B, H, W, 2) backward offsets in pixels (output
    pixel centre p shows the input at p + flow); mask: (B, H, W) in [0, 1], feathered, where the
    flow is non-negligible (what paste-back needs to carry into the photo)."""

    image: torch.Tensor
    flow: torch.Tensor
    mask: torch.Tensor


def relight_weight(mask: torch.Tensor, feather_px: float) -> torch.Tensor:
    """(B, H, W) strength of the relight: `mask` faded in from its edge, never beyond it.

    Shading is only known inside the mask, so the fade lies inside: the mask is eroded by
    feather_px, then blurred back out with sigma feather_px / 3, which puts the ramp's middle
    feather_px inside the edge and its full strength about 2 x feather_px inside. Capping by the
    mask keeps its outside exactly untouched (the blur's tail there is below 0.2%) and a uniformly
    soft mask at its own level.
    """
    m = mask.clamp(0.0, 1.0)
    r = round(feather_px)
    if r <= 0:
        return m
    gap = F.max_pool2d(1.0 - m[:, None], (2 * r + 1, 1), stride=1, padding=(r, 0))  # square erosion,
    eroded = 1.0 - F.max_pool2d(gap, (1, 2 * r + 1), stride=1, padding=(0, r))  # one axis at a time
    return torch.minimum(gaussian_blur(eroded, feather_px / 3.0, border="replicate")[:, 0], m)


def relight(image: torch.Tensor, shading_old: torch.Tensor, shading_new: torch.Tensor, mask: torch.Tensor, *,
            feather_px: float = 6.0, max_gain: float = 4.0, min_shading: float = 0.05) -> torch.Tensor:
    """Change a photo's lighting by the ratio of two shadings of the same geometry (same frame).

    image, shading_old, shading_new: (B, H, W, 3), the image in [0, 1]; mask: (B, H, W) in [0, 1],
    where both shadings are valid. Shadings are floored at min_shading (so a dark or unlit area
    cannot blow up) and their ratio is clamped to [1 / max_gain, max_gain]; the gain fades in from
    the mask's edge (relight_weight). The result is clamped to [0, 1]. Equal shadings give a gain of
    exactly 1, so the image comes back bit for bit.
    """
    if mask.shape != image.shape[:3]:
        raise ValueError(f"mask must be {tuple(image.shape[:3])}, got {tuple(mask.shape)}")
    if feather_px < 0.0:
        raise ValueError(f"feather_px must be >= 0, got {feather_px}")
    weight = relight_weight(mask.to(image), feather_px)
    return _apply_gain(image, shading_old, shading_new, weight, max_gain, min_shading)


def _apply_gain(image: torch.Tensor, shading_old: torch.Tensor, shading_new: torch.Tensor, weight: torch.Tensor,
                max_gain: float, min_shading: float) -> torch.Tensor:
    """relight() with its per-pixel strength (B, H, W) already worked out."""
    if not (image.shape == shading_old.shape == shading_new.shape and image.dim() == 4):
        raise ValueError(f"image and shadings must share one (B, H, W, C) shape, got {tuple(image.shape)}, "
                         f"{tuple(shading_old.shape)} and {tuple(shading_new.shape)}")
    if not (max_gain >= 1.0 and min_shading > 0.0):
        raise ValueError(f"need max_gain >= 1 and min_shading > 0, got {max_gain} and {min_shading}")
    old = shading_old.to(image).clamp_min(min_shading)
    new = shading_new.to(image).clamp_min(min_shading)
    ratio = (new / old).clamp(1.0 / max_gain, max_gain)
    return (image * (1.0 + weight[..., None] * (ratio - 1.0))).clamp(0.0, 1.0)


def mesh_warp(image: torch.Tensor, screen_old: torch.Tensor, screen_new: torch.Tensor, faces: torch.Tensor, *,
              falloff_px: float | None = None) -> WarpResult:
    """Move the face in `image` (B, H, W, C) from its old to its new mesh position.

    screen_old, screen_new: (B, V, 3) the mesh's screen positions before / after the edit, in the
    crop's pixels (see flow.mesh_flow, which also explains falloff_px). Equal positions return the
    image bit for bit.
    """
    b, h, w, _ = image.shape
    if screen_new.shape[0] != b:
        raise ValueError(f"{screen_new.shape[0]} meshes for {b} images")
    motion = mesh_flow(screen_old.to(image.device), screen_new.to(image.device), faces, h, w, falloff_px=falloff_px)
    return WarpResult(image=sample_flow(image, motion.flow), flow=motion.flow, mask=motion.mask)


def preview_edit(image: torch.Tensor, *, screen_old: torch.Tensor, screen_new: torch.Tensor, faces: torch.Tensor,
                 shading_old: torch.Tensor | None = None, shading_new: torch.Tensor | None = None,
                 mask_old: torch.Tensor | None = None, falloff_px: float | None = None, feather_px: float = 6.0,
                 max_gain: float = 4.0, min_shading: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp the crop to the edited geometry, then relight it: (image, mask), both in the new frame.

    Old frame (the photo's): image (B, H, W, 3), screen_old (B, V, 3), shading_old (B, H, W, 3)
    rendered from the fitted rig, mask_old (B, H, W) where shading_old is valid and relighting may
    act (default: the old mesh's coverage; pass a skin mask to spare eyes or hair).
    New frame (the edit's): screen_new (B, V, 3), shading_new (B, H, W, 3) rendered from the edited
    rig, light included. shading_old and mask_old are carried into the new frame by the warp's own
    flow, so the ratio compares the two lightings at the same surface point; the relight acts where
    the new mesh covers and the warped mask_old allows. Without shadings only the warp is applied.
    mask: where the preview differs from the crop, for paste-back.
    """
    if (shading_old is None) != (shading_new is None):
        raise ValueError("pass both shading_old and shading_new, or neither")
    h, w = image.shape[1:3]
    old, new = screen_old.to(image.device), screen_new.to(image.device)
    motion = mesh_flow(old, new, faces, h, w, falloff_px=falloff_px)
    out = sample_flow(image, motion.flow)
    if shading_new is None:
        return out, motion.mask
    valid = rasterize(old, faces, h, w).mask if mask_old is None else mask_old.to(image.device)
    valid = valid.to(image.dtype)[..., None]
    # One pass carries the old shading (premultiplied) and its validity: dividing by the carried
    # validity keeps the old render's unlit background out of the ratio at the mesh's edge.
    carried = sample_flow(torch.cat([shading_old.to(image) * valid, valid], -1), motion.flow)
    shading, reach = carried[..., :-1], carried[..., -1:]
    shading_new = shading_new.to(image)
    shading_old = torch.where(reach > 0, shading / reach.clamp_min(1e-6), shading_new)
    weight = relight_weight(motion.coverage.to(image.dtype) * reach[..., 0], feather_px)
    out = _apply_gain(out, shading_old, shading_new, weight, max_gain, min_shading)
    return out, torch.maximum(motion.mask, weight)
