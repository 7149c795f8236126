"""Cutting aligned face crops out of a batch of frames, one FaceCropInfo per crop."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .align import ffhq_affine, warp_affine
from .crops import FaceCropInfo, FaceCrops, FaceDetections
from .select import select_faces

ON_NO_FACE = ("error", "passthrough")


class NoFaceError(ValueError):
    """Raised when a frame has no usable face and the caller asked for an error."""


@dataclass(frozen=True)
class CropSettings:
    size: int = 512
    padding: float = 0.0
    selection: str = "largest"  # largest | index | all
    face_index: int = 0
    on_no_face: str = "error"  # error | passthrough


def _placeholder_affine(h: int, w: int, size: int) -> np.ndarray:
    """Centre square of the frame; only used to give placeholder crops something to show."""
    side = max(1, min(h, w))
    s = size / side
    return np.array([[s, 0.0, -s * (w - side) / 2], [0.0, s, -s * (h - side) / 2]])


def crop_faces(images: torch.Tensor, detections: FaceDetections, settings: CropSettings,
               reasons: dict[int, str] | None = None) -> tuple[torch.Tensor, FaceCrops]:
    """Crops for every selected face of every frame, in frame order then left to right.

    A frame without a selected face raises NoFaceError, or (passthrough) yields one placeholder crop
    (the frame's centre square, flagged invalid) so that video batches keep one crop per frame.
    `reasons` may explain per frame why nothing was found (e.g. the image is too small).
    """
    if settings.on_no_face not in ON_NO_FACE:
        raise ValueError(f"on_no_face must be one of {ON_NO_FACE}, got {settings.on_no_face!r}")
    b, h, w, c = images.shape
    if len(detections) != b:
        raise ValueError(f"FACE_DETECTIONS holds {len(detections)} images but the IMAGE batch has {b}")
    if b == 0:
        return images.new_zeros((0, settings.size, settings.size, c)), FaceCrops(())
    items: list[FaceCropInfo] = []
    for i, faces in enumerate(detections.faces):
        if detections.sizes[i] != (h, w):
            raise ValueError(f"FACE_DETECTIONS were found on {detections.sizes[i][1]}x{detections.sizes[i][0]} px images, "
                             f"but this IMAGE is {w}x{h} px: wire the same image into detection and crop")
        chosen = select_faces(list(faces), settings.selection, settings.face_index)
        if not chosen:
            why = (reasons or {}).get(i) or _no_face_reason(len(faces), settings)
            if settings.on_no_face == "error":
                raise NoFaceError(f"image {i + 1} of {b}: {why}. Set on_no_face to 'passthrough' to leave such "
                                  "frames unchanged.")
            items.append(FaceCropInfo(i, (h, w), settings.size, _placeholder_affine(h, w, settings.size), None))
            continue
        for face in chosen:
            affine = ffhq_affine(face.points5, settings.size, settings.padding)
            position = faces.index(face)
            items.append(FaceCropInfo(i, (h, w), settings.size, affine, face, position))
    crops_info = FaceCrops(tuple(items))
    src = images[torch.as_tensor(crops_info.source_indices, device=images.device)]
    # float64 affines: paste-back rebuilds this exact crop to find what an edit left unchanged
    crops = warp_affine(src, crops_info.affines, (settings.size, settings.size))
    return crops, crops_info


def _no_face_reason(found: int, settings: CropSettings) -> str:
    if found == 0:
        return "no face found"
    if settings.selection == "index":
        return f"face_index {settings.face_index} asked for, but only {found} face(s) found (indices count from 0, left to right)"
    return "no face selected"
