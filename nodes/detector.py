"""The pack's face detector, loaded on first use, once per device, from the mediapipe .tflite files.

The detector's modules are imported lazily so that a missing optional dependency shows up as a
clear error when a face node runs, never as an import failure of the whole pack.
"""
from __future__ import annotations

import functools

import torch

from ..models.faces.crops import FaceDetections
from .model_files import folder_dirs
from .runtime import check_interrupt, compute_device, progress


@functools.lru_cache(maxsize=2)
def _load(files, device: str):
    from ..models.faces.detector import FaceDetector

    return FaceDetector(files, device=torch.device(device))


def get_detector():
    from ..models.faces.mediapipe_files import find_mediapipe_models

    files = find_mediapipe_models(folder_dirs("likeness_mediapipe"))
    return _load(files, str(compute_device()))


def detect_faces(images: torch.Tensor, min_score: float, max_detect_side: int) -> tuple[FaceDetections, dict[int, str]]:
    from ..models.faces.finder import find_faces

    if images.shape[0] == 0:
        return FaceDetections((), ()), {}
    return find_faces(get_detector(), images, min_score=min_score, max_detect_side=max_detect_side,
                      check_interrupt=check_interrupt, on_progress=progress(images.shape[0]))
