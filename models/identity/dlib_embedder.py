"""Identity similarity with dlib's face recognition ResNet: a zero-download default scorer.

dlib's 128-d descriptor (`dlib_face_recognition_resnet_model_v1.dat`, 99.38% on LFW per dlib) and
its 5-point shape predictor ship inside the `face-recognition-models` package, so measuring "is
this still the same person" needs no model download. dlib itself comes from `dlib-bin` (prebuilt
wheels) or `dlib`; both are optional and imported when an embedder is built.

Per face: a start rectangle framed like dlib's HOG detector box is derived from the pack's five
points, dlib's shape predictor finds its own 5 landmarks (eye corners, nose base) in it, and
`compute_face_descriptor` aligns a 150 x 150 chip from those landmarks (padding 0.25) and embeds it.
Descriptors of one person lie closer than 0.6 in L2 distance (dlib's threshold).
"""
from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import torch

from ..loading import ModelFileError
from .alignment import Face, face_points
from .optional import MissingDependencyError, import_optional

MODELS_PACKAGE = "face_recognition_models"
RECOGNITION_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_PREDICTOR_MODEL = "shape_predictor_5_face_landmarks.dat"
INSTALL = "pip install dlib-bin face-recognition-models"


@dataclass(frozen=True)
class DlibModelFiles:
    recognition: Path
    shape_predictor: Path


def find_dlib_model_files(folder: str | PathLike[str] | None = None) -> DlibModelFiles:
    """The two .dat files in `folder`, or by default in the installed face_recognition_models package.

    The package is located without importing it: its __init__ needs pkg_resources, which recent
    setuptools no longer provides.
    """
    if folder is None:
        spec = importlib.util.find_spec(MODELS_PACKAGE)
        if spec is None or spec.origin is None:
            raise MissingDependencyError(f"dlib's face models come from the package 'face-recognition-models', which "
                                         f"is not installed. Install it with: {INSTALL}")
        folder = Path(spec.origin).parent / "models"
    folder = Path(folder)
    files = DlibModelFiles(folder / RECOGNITION_MODEL, folder / SHAPE_PREDICTOR_MODEL)
    for path in (files.recognition, files.shape_predictor):
        if not path.is_file():
            raise ModelFileError(path, f"dlib model file not found; it ships with the 'face-recognition-models' "
                                       f"package ({INSTALL})")
    return files


@dataclass(frozen=True)
class DlibEmbedderConfig:
    num_jitters: int = 0  # >1 averages the descriptors of that many randomly jittered chips (dlib; slower)
    padding: float = 0.25  # chip margin around the landmarks, dlib's default
    # The start rectangle: a square centred between the eye and mouth midpoints, with side
    # box_scale * hypot(eye-to-mouth, eye-to-eye). 1.68 is the median that matches dlib's own
    # HOG detector boxes on 30 single-face test photos (spread about 10%).
    box_scale: float = 1.68


def to_uint8_rgb(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """An (H, W, 3) image as the contiguous uint8 RGB array dlib reads; float input is taken in [0, 1]."""
    if isinstance(image, torch.Tensor):
        image = image.detach().to("cpu")
        image = image.numpy() if image.dtype == torch.uint8 else image.float().numpy()
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {a.shape}")
    if a.dtype != np.uint8:
        a = np.rint(np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(a)


def start_box(face: Face, box_scale: float = DlibEmbedderConfig.box_scale) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the square the shape predictor starts from, in pixel-edge coordinates.

    It is derived from the five points rather than from the detector's box, whose framing depends
    on the detector; dlib's predictor was trained on boxes from dlib's own detector.
    """
    p = face_points(face)
    eyes, mouth = 0.5 * (p[0] + p[1]), 0.5 * (p[3] + p[4])
    half = 0.5 * box_scale * np.hypot(np.linalg.norm(mouth - eyes), np.linalg.norm(p[1] - p[0]))
    if not (np.isfinite(half) and half > 0):
        raise ValueError(f"degenerate face points: {p.tolist()}")
    cx, cy = 0.5 * (eyes + mouth)
    return (cx - half, cy - half, cx + half, cy + half)


class DlibFaceEmbedder:
    """128-d dlib face descriptors for faces given by their five points (or FaceDetections)."""

    def __init__(self, files: DlibModelFiles | None = None, config: DlibEmbedderConfig = DlibEmbedderConfig()):
        self._dlib = import_optional("dlib", "dlib-bin", "The dlib identity scorer")
        files = files or find_dlib_model_files()
        self.config = config
        self.files = files
        self._shape_predictor = self._dlib.shape_predictor(str(files.shape_predictor))
        self._recognizer = self._dlib.face_recognition_model_v1(str(files.recognition))

    def _rectangle(self, face: Face):
        x0, y0, x1, y1 = start_box(face, self.config.box_scale)
        # dlib rectangles are inclusive integer pixel indices
        return self._dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)) - 1, int(round(y1)) - 1)

    def _shapes(self, image: np.ndarray, faces: Sequence[Face]):
        shapes = self._dlib.full_object_detections()
        for face in faces:
            shapes.append(self._shape_predictor(image, self._rectangle(face)))
        return shapes

    def landmarks(self, image: np.ndarray | torch.Tensor, faces: Sequence[Face]) -> np.ndarray:
        """(N, 5, 2) dlib's own five points per face (eye corners, nose base), pixel centres at +0.5."""
        shapes = self._shapes(to_uint8_rgb(image), faces)
        return np.array([[(pt.x + 0.5, pt.y + 0.5) for pt in shape.parts()] for shape in shapes],
                        dtype=np.float32).reshape(len(faces), 5, 2)

    def embed(self, image: np.ndarray | torch.Tensor, faces: Sequence[Face]) -> np.ndarray:
        """(N, 128) float32 descriptors of the given faces of one (H, W, 3) RGB image."""
        if len(faces) == 0:
            return np.zeros((0, 128), np.float32)
        pixels = to_uint8_rgb(image)
        descriptors = self._recognizer.compute_face_descriptor(pixels, self._shapes(pixels, faces),
                                                              self.config.num_jitters, self.config.padding)
        return np.array([np.asarray(d) for d in descriptors], dtype=np.float32).reshape(len(faces), 128)
