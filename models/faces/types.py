"""Value types shared by the face detector, the aligner and the paste-back.

They are frozen and their arrays read-only, because ComfyUI passes the same object to every node
wired to an output: a node that needs a variant builds a new value.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Order of `FaceDetection.points5`, the ArcFace / InsightFace convention (image left to right).
POINTS5_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_right", "mouth_left")


def frozen_array(a, dtype=np.float32) -> np.ndarray:
    out = np.array(a, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)  # compared by identity: array fields have no single truth value
class FaceDetection:
    """One face in one image, in that image's pixel coordinates (x right, y down, pixel centres at +0.5).

    points5 follows POINTS5_NAMES: the subject's right eye is on the image's left. `landmarks` holds
    the dense face mesh (468 points, x/y in pixels, z in the same pixel scale, larger = farther from
    the camera) when the landmarker ran.
    """

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    points5: np.ndarray  # (5, 2)
    landmarks: np.ndarray | None = None  # (468, 3)

    def __post_init__(self):
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "points5", frozen_array(self.points5).reshape(5, 2))
        if self.landmarks is not None:
            object.__setattr__(self, "landmarks", frozen_array(self.landmarks))

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (0.5 * (x0 + x1), 0.5 * (y0 + y1))

    def scaled(self, sx: float, sy: float) -> "FaceDetection":
        """The same face in an image resized by (sx, sy)."""
        s2 = np.array([sx, sy], np.float32)
        lm = None
        if self.landmarks is not None:
            lm = np.array(self.landmarks, copy=True)
            lm[:, :2] *= s2
            lm[:, 2] *= 0.5 * (sx + sy)
        x0, y0, x1, y1 = self.box
        return FaceDetection((x0 * sx, y0 * sy, x1 * sx, y1 * sy), self.score, self.points5 * s2, lm)
