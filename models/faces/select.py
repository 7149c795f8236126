"""Choosing which detected faces to edit, and the input checks that come before detection."""
from __future__ import annotations

import torch

from .types import FaceDetection

SELECTION_MODES = ("largest", "index", "all")


def select_faces(detections: list[FaceDetection], mode: str, index: int = 0) -> list[FaceDetection]:
    """The faces to work on, ordered left to right (by box centre, then top to bottom).

    "largest": the face with the largest box (a list of one). "index": the index-th face from the
    left, 0-based; an index past the last face returns [], so a frame with fewer faces passes
    through unedited instead of failing a whole batch. "all": every face. No faces gives [].
    """
    if mode not in SELECTION_MODES:
        raise ValueError(f"unknown face selection {mode!r}; expected one of {SELECTION_MODES}")
    if mode == "index" and index < 0:
        raise ValueError(f"face index must be >= 0, got {index}")
    ordered = sorted(detections, key=lambda d: d.center)
    if mode == "all":
        return ordered
    if mode == "largest":
        return [max(ordered, key=lambda d: d.area)] if ordered else []
    return [ordered[index]] if index < len(ordered) else []


def normalize_image_channels(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W, C) with C in 1..4 -> (B, H, W, 3) RGB.

    Grey (C=1) and grey + alpha (C=2) repeat the grey; RGBA (C=4) drops alpha rather than
    compositing, since the face pixels are what gets edited and the caller still holds the alpha to
    reattach. RGB comes back as the same tensor.
    """
    c = images.shape[-1]
    if images.ndim != 4 or not 1 <= c <= 4:
        raise ValueError(f"expected (B, H, W, C) images with 1 to 4 channels, got {tuple(images.shape)}")
    if c == 3:
        return images
    if c == 4:
        return images[..., :3]
    return images[..., :1].repeat(1, 1, 1, 3)


def image_too_small(h: int, w: int, min_side: int = 48) -> bool:
    """Whether an image is too small to hold a face worth detecting and editing."""
    return min(h, w) < min_side
