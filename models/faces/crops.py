"""The values carried by the FACE_DETECTIONS and FACE_CROP wires.

FACE_CROP is what lets an edit be pasted back: for every crop in an IMAGE batch it records which
frame it came from, that frame's size and the similarity transform used to cut it out. Frames in
which no face was found can be represented by a placeholder (`detection is None`) so that a batch
of video frames keeps one crop per frame; paste-back leaves those frames untouched.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import FaceDetection, frozen_array


@dataclass(frozen=True)
class FaceDetections:
    """Faces found in each image of a batch, left to right; `sizes` are the images' (H, W)."""

    faces: tuple[tuple[FaceDetection, ...], ...]
    sizes: tuple[tuple[int, int], ...]

    def __post_init__(self):
        object.__setattr__(self, "faces", tuple(tuple(f) for f in self.faces))
        object.__setattr__(self, "sizes", tuple((int(h), int(w)) for h, w in self.sizes))
        if len(self.faces) != len(self.sizes):
            raise ValueError(f"{len(self.faces)} face lists for {len(self.sizes)} images")

    def __len__(self) -> int:
        return len(self.faces)

    @property
    def count(self) -> int:
        return sum(len(f) for f in self.faces)


@dataclass(frozen=True)
class FaceCropInfo:
    """One aligned crop: `affine` maps source pixel coordinates to crop pixel coordinates."""

    source_index: int
    source_size: tuple[int, int]  # (H, W) of the source frame
    crop_size: int
    affine: np.ndarray  # (2, 3)
    detection: FaceDetection | None  # None: placeholder for a frame without a face
    face_index: int = -1  # the face's position in its frame, left to right (-1 for a placeholder)

    def __post_init__(self):
        object.__setattr__(self, "source_index", int(self.source_index))
        object.__setattr__(self, "face_index", int(self.face_index))
        object.__setattr__(self, "source_size", (int(self.source_size[0]), int(self.source_size[1])))
        object.__setattr__(self, "crop_size", int(self.crop_size))
        object.__setattr__(self, "affine", frozen_array(self.affine, np.float64).reshape(2, 3))

    @property
    def valid(self) -> bool:
        return self.detection is not None


@dataclass(frozen=True)
class FaceCrops:
    """One entry per image of the crop batch, in batch order."""

    items: tuple[FaceCropInfo, ...]

    def __post_init__(self):
        object.__setattr__(self, "items", tuple(self.items))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> FaceCropInfo:
        return self.items[i]

    @property
    def affines(self) -> np.ndarray:
        return np.stack([c.affine for c in self.items]) if self.items else np.zeros((0, 2, 3))

    @property
    def source_indices(self) -> np.ndarray:
        return np.array([c.source_index for c in self.items], dtype=np.int64)

    @property
    def valid(self) -> np.ndarray:
        return np.array([c.valid for c in self.items], dtype=bool)
