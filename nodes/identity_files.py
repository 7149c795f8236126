"""Finding and caching the identity models, and picking the face of each image the identity nodes use."""
from __future__ import annotations

import functools
import os

import folder_paths
import torch

from ..models.faces.crops import FaceDetections
from ..models.faces.types import FaceDetection
from .detector import detect_faces

F2D_KEY = "likeness_face2diffusion"


def f2d_files(default: str) -> tuple[list[str], str]:
    """The files of models/likeness/face2diffusion for a combo, with `default` first (listed even if absent,
    so a graph saved before the download still validates and the error at run time says what is missing)."""
    names = sorted(folder_paths.get_filename_list(F2D_KEY))
    return [default] + [n for n in names if n != default], default


def f2d_path(name: str) -> str:
    path = folder_paths.get_full_path(F2D_KEY, name)
    if path is None:
        folder = os.path.join(folder_paths.models_dir, "likeness", "face2diffusion")
        raise ValueError(f"Face2Diffusion file '{name}' not found in {folder}. Convert the official msid.pt and "
                         f"mapping.pt with scripts/convert_face2diffusion.py and put the results there.")
    return path


@functools.lru_cache(maxsize=2)
def _cached(kind: str, path: str, mtime: float):
    from ..models.identity import load_mapping, load_msid_encoder

    return (load_msid_encoder if kind == "msid" else load_mapping)(path)


def msid_encoder(name: str):
    path = f2d_path(name)
    return _cached("msid", path, os.path.getmtime(path))


def mapping_network(name: str):
    path = f2d_path(name)
    return _cached("mapping", path, os.path.getmtime(path))


def largest_faces(images: torch.Tensor, detections: FaceDetections | None, min_score: float = 0.5,
                  max_detect_side: int = 1024) -> list[FaceDetection | None]:
    """The largest face of each image (None where there is none), detected here when not given."""
    if detections is None:
        detections, _ = detect_faces(images, min_score, max_detect_side)
    if len(detections) != len(images):
        raise ValueError(f"the face detections are for {len(detections)} images but {len(images)} images came in; "
                         f"connect detections made from the same images")
    return [max(faces, key=lambda f: f.area) if faces else None for faces in detections.faces]
