"""Face detection over a whole IMAGE batch, with the documented handling of awkward inputs.

- grayscale, gray+alpha and RGBA frames are converted to RGB first (alpha is dropped);
- frames whose short side is under MIN_SIDE pixels are reported as "too small" instead of guessed at;
- an empty batch gives an empty result;
- large frames are detected on a downscaled copy by the detector itself (see FaceDetector.detect).
"""
from __future__ import annotations

from typing import Callable

import torch

from .crops import FaceDetections
from .detector import RejectedFace
from .select import image_too_small, normalize_image_channels

MIN_SIDE = 48
# A refused candidate is reported as a possible face only above this detector score: weaker ones are
# mostly textures and animals, for which "no face found" is the right answer.
POSSIBLE_FACE_SCORE = 0.6


def find_faces(detector, images: torch.Tensor, *, min_score: float = 0.5, max_detect_side: int = 1024,
               check_interrupt: Callable[[], None] | None = None,
               on_progress: Callable[[int, int], None] | None = None) -> tuple[FaceDetections, dict[int, str]]:
    """Returns the detections and, per frame index with no result, a reason a person can act on."""
    b, h, w = images.shape[:3]
    if b == 0:
        return FaceDetections((), ()), {}
    reasons: dict[int, str] = {}
    if image_too_small(h, w, MIN_SIDE):
        reasons = {i: f"the image is {w}x{h} px; faces need at least {MIN_SIDE} px on the short side" for i in range(b)}
        return FaceDetections(tuple(() for _ in range(b)), ((h, w),) * b), reasons
    rgb = normalize_image_channels(images)
    rejected: dict[int, RejectedFace] = {}

    def keep_best(face: RejectedFace) -> None:
        if face.score < POSSIBLE_FACE_SCORE:
            return
        if face.image_index not in rejected or face.score > rejected[face.image_index].score:
            rejected[face.image_index] = face

    faces = detector.detect(rgb, min_score=min_score, landmarks=True, max_detect_side=max_detect_side,
                            check_interrupt=check_interrupt, on_progress=on_progress, on_rejected=keep_best)
    for i, f in enumerate(faces):
        if f:
            continue
        if i in rejected:
            reasons[i] = rejected[i].describe(detector.config.min_presence)
        else:
            reasons[i] = f"no face found with score >= {min_score:g}"
    return FaceDetections(tuple(tuple(f) for f in faces), ((h, w),) * b), reasons
