"""Faces and their dense landmarks for a batch of images, with mediapipe's models run in PyTorch.

Both BlazeFace models run on every image (full range finds small and distant faces, short range
close-ups the other misses) and their candidates are merged by one weighted suppression. The face
mesh then reads 468 landmarks per face from crops of the full-resolution image, and a detection
whose crop the mesh judges not to hold a face is dropped (so `landmarks=False` may keep a few more
false positives).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..tflite import TFLiteModule
from .blazeface import FULL_RANGE, SHORT_RANGE, BlazeFace, Detections
from .facemesh import FaceMesh, rois_from_detections
from .mediapipe_files import MediapipeModelFiles
from .nms import weighted_nms
from .types import FaceDetection

# Mesh points for FaceDetection.points5 (subject's right eye is on the image's left).
RIGHT_EYE_CONTOUR = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE_CONTOUR = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
NOSE_TIP = (1, 4)  # their midpoint sits where the ArcFace template puts the nose, relative to eyes and mouth
MOUTH_RIGHT_CORNER, MOUTH_LEFT_CORNER = 61, 291
# Without the mesh, mouth corners come from BlazeFace's mouth centre, in units of the eye distance:
# half the mouth's width along the eye line, and the corners' rise above the centre keypoint
# (medians of the mesh over the test photos; the ArcFace template's half width is 0.415).
MOUTH_HALF_WIDTH = 0.42
MOUTH_CORNER_RISE = 0.05


@dataclass(frozen=True)
class RejectedFace:
    """A detector candidate the face mesh refused: its landmarks would be guesses (the face is heavily
    occluded, cut off, turned away, or not a face)."""

    image_index: int
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
    score: float  # the face detector's confidence
    presence: float  # the face mesh's face-presence probability (below FaceDetectorConfig.min_presence)

    def describe(self, min_presence: float) -> str:
        x0, y0, x1, y1 = (round(v) for v in self.box)
        return (f"the face detector found a possible face at x {x0}-{x1}, y {y0}-{y1} (score {self.score:.2f}) but "
                f"the face landmark model does not see a face there (face presence {self.presence:.3f} < "
                f"{min_presence:g}): if it is a face, it is probably heavily occluded (hand, mask, hair, object), "
                f"cut off by the image border or turned too far away; use a photo where most of the face is "
                f"visible")


@dataclass(frozen=True)
class FaceDetectorConfig:
    nms_iou: float = 0.3  # mediapipe's overlap for merging candidates of one face
    min_presence: float = 0.5  # face mesh presence below which a detection is dropped (landmarks on)
    refine_landmarks: bool = False  # second mesh pass framed by the first pass's landmarks
    batch_size: int = 8  # images per network call


class FaceDetector:
    def __init__(self, paths: MediapipeModelFiles, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, config: FaceDetectorConfig = FaceDetectorConfig()):
        self.device = torch.device(device)
        self.config = config
        self.full_range = BlazeFace(load_network(paths.full_range, self.device, dtype), FULL_RANGE)
        self.short_range = BlazeFace(load_network(paths.short_range, self.device, dtype), SHORT_RANGE)
        self.mesh = FaceMesh(load_network(paths.face_mesh, self.device, dtype))

    @torch.no_grad()
    def detect(self, images: Tensor, min_score: float = 0.5, landmarks: bool = True, max_detect_side: int = 1024,
               check_interrupt: Callable[[], None] | None = None,
               on_progress: Callable[[int, int], None] | None = None,
               on_rejected: Callable[[RejectedFace], None] | None = None) -> list[list[FaceDetection]]:
        """(B, H, W, 3) images in [0, 1] -> per image, its faces sorted left to right by box centre.

        Images with a side over `max_detect_side` are searched on a downscaled copy; landmarks are
        always read at full resolution. `check_interrupt` is called before each group of images
        (it aborts by raising) and `on_progress(done, total)` after each. `on_rejected` hears of
        every candidate the face mesh refused, so callers can say why a visible face was dropped.
        """
        if images.dim() != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be (B, H, W, 3), got {tuple(images.shape)}")
        total, results = len(images), []
        for start in range(0, total, self.config.batch_size):
            if check_interrupt is not None:
                check_interrupt()
            chunk = images[start:start + self.config.batch_size].to(self.device, torch.float32).permute(0, 3, 1, 2)
            found, rejected = self._detect_chunk(chunk, min_score, landmarks, max_detect_side)
            results.extend(found)
            for face in rejected if on_rejected is not None else ():
                on_rejected(dataclasses.replace(face, image_index=start + face.image_index))
            if on_progress is not None:
                on_progress(len(results), total)
        return results

    def _detect_chunk(self, images: Tensor, min_score: float, landmarks: bool, max_side: int
                      ) -> tuple[list[list[FaceDetection]], list[RejectedFace]]:
        faces = self._find_faces(images, min_score, max_side)
        image_index = torch.cat([torch.full((len(d.scores),), i, dtype=torch.long) for i, d in enumerate(faces)])
        boxes = torch.cat([d.boxes for d in faces])
        keypoints = torch.cat([d.keypoints for d in faces])
        scores = torch.cat([d.scores for d in faces])
        mesh = None
        if landmarks:
            mesh = self.mesh(images, image_index, rois_from_detections(boxes, keypoints), self.config.refine_landmarks)
        results: list[list[FaceDetection]] = [[] for _ in faces]
        rejected: list[RejectedFace] = []
        for i in range(len(scores)):
            if mesh is not None and float(mesh.presence[i]) < self.config.min_presence:
                rejected.append(RejectedFace(int(image_index[i]), tuple(boxes[i].tolist()), float(scores[i]),
                                             float(mesh.presence[i])))
                continue
            lm = None if mesh is None else mesh.landmarks[i].numpy()
            points5 = points5_from_mesh(lm) if lm is not None else points5_from_keypoints(keypoints[i].numpy())
            results[int(image_index[i])].append(FaceDetection(boxes[i].tolist(), float(scores[i]), points5, lm))
        return [sorted(r, key=lambda face: face.center[0]) for r in results], rejected

    def _find_faces(self, images: Tensor, min_score: float, max_side: int) -> list[Detections]:
        """Both detectors' candidates merged per image, in full-resolution pixels."""
        height, width = images.shape[2:]
        frames, scale_x, scale_y = images, 1.0, 1.0
        if max(height, width) > max_side:
            shrink = max_side / max(height, width)
            size = (max(1, round(height * shrink)), max(1, round(width * shrink)))
            frames = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
            scale_x, scale_y = width / size[1], height / size[0]
        scale = torch.tensor([scale_x, scale_y])
        merged = []
        for full, short in zip(self.full_range.candidates(frames, min_score),
                               self.short_range.candidates(frames, min_score)):
            boxes, keypoints, scores = weighted_nms(
                torch.cat([full.boxes, short.boxes]), torch.cat([full.keypoints, short.keypoints]),
                torch.cat([full.scores, short.scores]), self.config.nms_iou)
            merged.append(Detections(boxes * scale.repeat(2), keypoints * scale, scores))
        return merged


def points5_from_mesh(landmarks: np.ndarray) -> np.ndarray:
    xy = landmarks[:, :2]
    return np.stack([
        xy[list(RIGHT_EYE_CONTOUR)].mean(0),
        xy[list(LEFT_EYE_CONTOUR)].mean(0),
        xy[list(NOSE_TIP)].mean(0),
        xy[MOUTH_RIGHT_CORNER],
        xy[MOUTH_LEFT_CORNER],
    ])


def points5_from_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """BlazeFace's 6 keypoints -> points5; the mouth corners are placed along the eye line."""
    right_eye, left_eye, nose, mouth = keypoints[:4]
    across = left_eye - right_eye  # eye line, subject's right to left
    down = np.array([-across[1], across[0]])  # perpendicular, towards the chin
    centre = mouth - MOUTH_CORNER_RISE * down
    return np.stack([right_eye, left_eye, nose,
                     centre - MOUTH_HALF_WIDTH * across, centre + MOUTH_HALF_WIDTH * across])


def load_network(path: Path, device: torch.device, dtype: torch.dtype) -> TFLiteModule:
    """One shared, frozen module per file version, device and dtype (detectors are cheap to remake)."""
    path = Path(path).resolve()
    return _load_network(str(path), path.stat().st_mtime_ns, str(device), dtype)


@functools.lru_cache(maxsize=12)
def _load_network(path: str, mtime_ns: int, device: str, dtype: torch.dtype) -> TFLiteModule:
    network = TFLiteModule.from_file(path).to(device=device, dtype=dtype).eval()
    network.requires_grad_(False)
    return network
