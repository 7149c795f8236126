"""Comparing identity embeddings: cosine similarity and Euclidean distance, pairwise by row.

Each embedder has its own scale for "same person": dlib's 128-d descriptors are compared by L2
distance (dlib's documented threshold is 0.6), InsightFace's 512-d ArcFace embeddings by cosine
similarity (unit-length vectors, so L2^2 = 2 - 2 cos). Inputs are (D,) or (N, D) arrays or tensors;
rows are paired (broadcast when one side has one row).
"""
from __future__ import annotations

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor

DLIB_SAME_PERSON_DISTANCE = 0.6  # dlib's dnn_face_recognition_ex: pairs closer than this are one person


def _rows(x: ArrayLike) -> np.ndarray:
    a = x.detach().to("cpu", torch.float64).numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
    if a.ndim not in (1, 2):
        raise ValueError(f"embeddings must be (D,) or (N, D), got shape {a.shape}")
    return np.atleast_2d(a)


def cosine_similarity(a: ArrayLike, b: ArrayLike, eps: float = 1e-12) -> np.ndarray:
    """(N,) cosine of the angle between paired rows of a and b."""
    x, y = _rows(a), _rows(b)
    dot = (x * y).sum(-1)
    return dot / np.maximum(np.linalg.norm(x, axis=-1) * np.linalg.norm(y, axis=-1), eps)


def l2_distance(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """(N,) Euclidean distance between paired rows of a and b."""
    return np.linalg.norm(_rows(a) - _rows(b), axis=-1)
