"""Pasting edited face crops back into their frames.

A crop made by warp_affine(frame, A, S) is warped back with A^-1 and blended in through a feathered
copy of the crop square, so no seam shows. Resampling twice (frame -> crop -> frame) softens the
face, most of all when the crop shrank it; `preserve_unchanged` gives the frame's own pixels back
wherever the edit left the crop as it was, so only what the edit changed is resampled.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .align import compose_affines, invert_affine, warp_affine
from .color import match_low_frequency, match_mean_std
from .crops import FaceCrops
from .filters import gaussian_blur

COLOR_MATCH_MODES = ("none", "mean_std", "low_frequency")

# preserve_unchanged: a crop pixel the edit moved by d (channel max, [0, 1] scale) takes the edit
# with weight 1 - exp(-(d / tau)^2), and the frame's own pixel with the rest: 6% edit at tau / 4,
# 22% at tau / 2, 63% at tau, 98% at 2 tau (then lightly blurred, so changed areas have soft edges).
# tau = 0.02, about 5 levels of 255: 8-bit storage of the crop (d <= 0.002) keeps 99% of the
# original, any edit meant to be seen is taken, and where the two mix they differ by only a few levels.
PRESERVE_TAU = 0.02


def _smoothstep_ramp(size: int, width: float, like: torch.Tensor) -> torch.Tensor:
    """Per-pixel weight along one crop axis: 0 at the edges, 1 from `width` pixels in."""
    t = torch.arange(size, device=like.device, dtype=like.dtype) + 0.5
    if width <= 0:
        return torch.ones_like(t)
    x = (torch.minimum(t, size - t) / width).clamp(0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _shrink_and_feather(mask: torch.Tensor, width: float) -> torch.Tensor:
    """(S, S) mask eroded by width/2, then blurred so it falls to ~0 over the next width/2."""
    if width <= 0:
        return mask
    r = max(1, round(width / 2))
    eroded = 1.0 - F.max_pool2d(1.0 - mask[None, None], 2 * r + 1, stride=1, padding=r)
    return gaussian_blur(eroded, width / 6.0)[0, 0].clamp(0.0, 1.0)


def crop_blend_mask(size: int, feather: float, mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """(size, size) blend weights in crop space: the crop square (times `mask`, any square size)
    fading to 0 at its border over feather * size pixels."""
    width = feather * size
    ramp = _smoothstep_ramp(size, width, like)
    square = ramp[:, None] * ramp[None, :]
    if mask is None:
        return square
    m = mask.to(like)
    if m.shape != (size, size):
        m = F.interpolate(m[None, None], size=(size, size), mode="bilinear", align_corners=False,
                          antialias=m.shape[0] > size)[0, 0]
    return square * _shrink_and_feather(m.clamp(0.0, 1.0), width)


def _changed(edited: torch.Tensor, crop0: torch.Tensor, tau: float) -> torch.Tensor:
    """(S, S) in [0, 1]: how much the edit changed each crop pixel (0 = exactly untouched)."""
    delta = (edited - crop0).abs().amax(dim=-1)
    change = -torch.expm1(-((delta / tau) ** 2))
    return gaussian_blur(change[None, None], 1.0)[0, 0]


def _as_affine(affine: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(affine, torch.Tensor):
        affine = affine.detach().to("cpu", torch.float64).numpy()
    return np.asarray(affine, dtype=np.float64).reshape(2, 3)


def _paste_region(
    canvas: torch.Tensor,
    original: torch.Tensor,
    crop: torch.Tensor,
    affine: np.ndarray,
    feather: float,
    mask: torch.Tensor | None,
    color_match: str,
    preserve_unchanged: bool,
    antialias: bool,
    tau: float,
) -> tuple[tuple[slice, slice], torch.Tensor, torch.Tensor] | None:
    """The pixels of `canvas` the crop covers (as slices), their new values and the blend mask there;
    None when the crop lies outside the frame."""
    h, w, _ = canvas.shape
    size = crop.shape[0]
    inv = invert_affine(affine)
    corners = inv[:, :2] @ np.array([[0.0, size, 0.0, size], [0.0, 0.0, size, size]]) + inv[:, 2:]
    x0, x1 = max(math.floor(corners[0].min()) - 1, 0), min(math.ceil(corners[0].max()) + 1, w)
    y0, y1 = max(math.floor(corners[1].min()) - 1, 0), min(math.ceil(corners[1].max()) + 1, h)
    if x0 >= x1 or y0 >= y1:
        return None

    blend = crop_blend_mask(size, feather, mask, crop)
    edited = crop
    if preserve_unchanged or color_match != "none":
        crop0 = warp_affine(original[None], affine[None], size, antialias=antialias)[0]
        if color_match == "mean_std":
            edited = match_mean_std(edited, crop0, blend)
        elif color_match == "low_frequency":
            edited = match_low_frequency(edited, crop0, blend, sigma=size / 16.0)
    # Premultiplied by the blend mask, the crop is warped in one pass with its masks and a zero
    # border: what lies outside the crop carries no weight.
    layers = [edited * blend[..., None], blend[..., None]]
    if preserve_unchanged:
        layers.append(_changed(edited, crop0, tau)[..., None])
    to_region = compose_affines(np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]]), inv)[None]
    warped = warp_affine(torch.cat(layers, dim=-1)[None], to_region, (y1 - y0, x1 - x0), antialias=antialias,
                         border="zeros")[0]
    c = crop.shape[-1]
    premultiplied, blend_src = warped[..., :c], warped[..., c]
    region = (slice(y0, y1), slice(x0, x1))
    below = canvas[region]
    update = premultiplied - blend_src[..., None] * below
    if preserve_unchanged:
        update = update * warped[..., c + 1, None]  # exactly 0 where the crop is exactly unchanged
    return region, below + update, blend_src


def _scaled(affine: np.ndarray, crop_size: int, affine_size: int | None) -> np.ndarray:
    return affine if affine_size is None else affine * (crop_size / affine_size)


def paste_back(
    original: torch.Tensor,
    crop: torch.Tensor,
    affine: np.ndarray | torch.Tensor,
    *,
    feather: float = 0.08,
    mask: torch.Tensor | None = None,
    color_match: str = "none",
    preserve_unchanged: bool = True,
    affine_size: int | None = None,
    antialias: bool = True,
    preserve_tau: float = PRESERVE_TAU,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste the edited (S, S, C) `crop` into `original` (H, W, C); returns (image, mask (H, W)).

    affine: the (2, 3) frame -> crop affine the crop was made with, for an affine_size crop
    (None = S; an edit that resized the crop is assumed to show the same square). mask: an optional
    crop-space weight (any square size) limiting the paste, e.g. a face-parsing mask. feather: the
    fraction of the crop side over which the blend falls from 1 to 0 at the border. color_match:
    "none", "mean_std" or "low_frequency" (models/faces/color.py) against the original's crop.
    preserve_unchanged: keep the original's pixels where the crop is unchanged (PRESERVE_TAU); the
    original's crop is recomputed with warp_affine's defaults and `antialias`, as the aligner makes it.
    The returned mask is the blend mask in frame space; outside it the image is the original, bit
    for bit.
    """
    images, masks = paste_back_batch(
        original[None], crop[None], _as_affine(affine)[None], [0], [True],
        masks=None if mask is None else mask[None], feather=feather, color_match=color_match,
        preserve_unchanged=preserve_unchanged, affine_size=affine_size, antialias=antialias,
        preserve_tau=preserve_tau,
    )
    return images[0], masks[0]


def paste_back_batch(
    originals: torch.Tensor,
    crops: torch.Tensor,
    affines: np.ndarray | torch.Tensor,
    source_index: Sequence[int] | np.ndarray | torch.Tensor,
    valid: Sequence[bool] | np.ndarray | torch.Tensor,
    *,
    masks: torch.Tensor | None = None,
    feather: float = 0.08,
    color_match: str = "none",
    preserve_unchanged: bool = True,
    affine_size: int | None = None,
    antialias: bool = True,
    preserve_tau: float = PRESERVE_TAU,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste N crops (N, S, S, C) into B frames (B, H, W, C); returns (images, masks (B, H, W)).

    Crop n lands in frame source_index[n] with affines[n] (as in paste_back; masks: optional (N, s, s)).
    Crops sharing a frame are applied in order, each onto the result of the ones before (while its
    unchanged pixels are judged against the original frame). Entries with valid[n] false (no face
    found) are skipped; a frame nothing lands in comes back unchanged with an empty mask. The mask
    is the maximum of the blend masks landing in the frame.
    """
    if color_match not in COLOR_MATCH_MODES:
        raise ValueError(f"unknown color_match {color_match!r}; expected one of {COLOR_MATCH_MODES}")
    if crops.shape[-1] != originals.shape[-1] or crops.shape[1] != crops.shape[2]:
        raise ValueError(f"crops {tuple(crops.shape)} are not square crops of {tuple(originals.shape)}")
    affine_list = [_as_affine(a) for a in affines]
    index = [int(i) for i in torch.as_tensor(source_index).reshape(-1).tolist()]
    keep = [bool(v) for v in torch.as_tensor(valid).reshape(-1).tolist()]
    if not len(index) == len(keep) == len(affine_list) == len(crops):
        raise ValueError(f"{len(crops)} crops, {len(affine_list)} affines, {len(index)} indices, {len(keep)} flags")
    crops = crops.to(originals)
    images = originals.clone()
    out_masks = originals.new_zeros(originals.shape[:3])
    for n, (b, ok) in enumerate(zip(index, keep)):
        if not ok:
            continue
        a = _scaled(affine_list[n], crops.shape[1], affine_size)
        pasted = _paste_region(images[b], originals[b], crops[n], a, feather,
                               None if masks is None else masks[n], color_match, preserve_unchanged,
                               antialias, preserve_tau)
        if pasted is not None:
            region, values, blend = pasted
            images[b][region] = values
            out_masks[b][region] = torch.maximum(out_masks[b][region], blend)
    return images, out_masks


def paste_crops(
    images: torch.Tensor,
    crops: torch.Tensor,
    face_crop: FaceCrops,
    *,
    mask: torch.Tensor | None = None,
    **kw,
) -> tuple[torch.Tensor, torch.Tensor]:
    """paste_back_batch driven by the FACE_CROP record the crops were made with (crops.py): each
    crop's frame, affine and validity; crops resized since are taken to show the same square.
    mask: None, one crop-space mask for every crop ((s, s) or (1, s, s)), or one per crop (N, s, s).
    Other keywords go to paste_back_batch.
    """
    n, size = len(face_crop), crops.shape[1]
    for info in face_crop.items:
        if info.source_size != tuple(images.shape[1:3]) or not 0 <= info.source_index < len(images):
            raise ValueError(f"a crop was cut from frame {info.source_index} of size {info.source_size}, but the "
                             f"images are {len(images)} x {tuple(images.shape[1:3])}")
    affines = np.stack([c.affine * (size / c.crop_size) for c in face_crop.items]) if n else np.zeros((0, 2, 3))
    if mask is not None:
        mask = mask.reshape(-1, *mask.shape[-2:])
        if len(mask) not in (1, n):
            raise ValueError(f"{len(mask)} masks for {n} crops")
        mask = mask.expand(n, *mask.shape[1:])
    return paste_back_batch(images, crops, affines, face_crop.source_indices, face_crop.valid, masks=mask, **kw)
