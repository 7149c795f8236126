"""Deep3DFaceRecon's input crop: scale and shift only, fitted from five points to a standard 3D face.

The reference preprocessing (`align_img`) fits a weak-perspective projection of five standard 3D
landmarks (the BFM mean face: eye centres, nose tip, mouth corners) to the photo's five points by
least squares (`POS`), keeps only its scale s and 2D translation t, resizes the whole photo by
102 / s (integer size) and cuts a 224 x 224 window (integer offset) around t. The face is never
rotated. Its points are in pixel-index coordinates with y pointing up (y' = H - 1 - y).

This module reproduces that geometry exactly, integer truncations included, as one affine warp of
the photo; it samples bilinearly (prefiltered when shrinking) where the reference resizes with
PIL's bicubic filter. Outside the photo is black, as PIL's crop pads.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .alignment import Face, crops_by_affine

# The five standard 3D landmarks in FaceDetection.points5 order (subject's right eye, left eye, nose
# tip, right and left mouth corner), BFM units. They are the reference's `load_lm3d` result: the
# 68-point mean-face landmarks of its `similarity_Lm3D_all.mat` reduced to eye-corner means, nose
# tip (point 31) and mouth corners (49, 55).
STANDARD_LANDMARKS_3D = np.array([
    [-0.31148657, 0.29036078, 0.13377953],
    [0.30979887, 0.28972036, 0.13179526],
    [0.00325350, -0.04617932, 0.55244243],
    [-0.25216928, -0.38133916, 0.22405732],
    [0.24846620, -0.38128236, 0.22235769],
])


def pos_fit(points2d: np.ndarray, points3d: np.ndarray = STANDARD_LANDMARKS_3D) -> tuple[np.ndarray, float]:
    """Least-squares weak-perspective fit `p ~ P [X; 1]` (P is 2 x 4): returns (t, s), the translation
    P[:, 3] and the scale, the mean length of P's two 3-d rows (the reference's POS)."""
    points2d = np.asarray(points2d, np.float64).reshape(-1, 2)
    points3d = np.asarray(points3d, np.float64).reshape(-1, 3)
    design = np.concatenate([points3d, np.ones((len(points3d), 1))], axis=1)
    solution, *_ = np.linalg.lstsq(design, points2d, rcond=None)  # (4, 2): columns are P's rows
    rows = solution[:3].T
    return solution[3].copy(), float(np.linalg.norm(rows, axis=1).mean())


def deep3d_crop_affine(points5, image_hw: tuple[int, int], size: int = 224,
                       rescale_factor: float = 102.0) -> np.ndarray:
    """(2, 3) affine from photo to crop (pixel-edge coordinates, centres at +0.5) for one face.

    `points5` are the pack's five points (pixel-edge coordinates, y down). The result equals the
    reference's resize to (int(W s'), int(H s')) followed by the crop at (int(left), int(up)).
    """
    h0, w0 = image_hw
    p = np.asarray(points5, np.float64).reshape(5, 2) - 0.5  # pixel-index coordinates
    p[:, 1] = h0 - 1 - p[:, 1]  # the reference's y-up convention
    t, s = pos_fit(p)
    scale = rescale_factor / s
    w, h = int(w0 * scale), int(h0 * scale)
    if w < 1 or h < 1:
        raise ValueError(f"the face is too small to crop for Deep3DFaceRecon (resize factor {scale:.4f})")
    left = int(w / 2 - size / 2 + (t[0] - w0 / 2) * scale)
    up = int(h / 2 - size / 2 + (h0 / 2 - t[1]) * scale)
    # crop pixel i is resized pixel left + i, whose centre lies at (left + i + 0.5) * w0 / w in the photo
    return np.array([[w / w0, 0.0, -left], [0.0, h / h0, -up]])


def deep3d_crops(images: torch.Tensor, faces: Sequence[Face], size: int = 224, rescale_factor: float = 102.0, *,
                 antialias: bool = True) -> torch.Tensor:
    """(B, H, W, 3) images in [0, 1] and N faces -> (N, size, size, 3) crops (face i from image i, or
    every face from a single image)."""
    hw = (images.shape[1], images.shape[2]) if images.ndim == 4 else (0, 0)
    return crops_by_affine(images, faces, size,
                           lambda points: deep3d_crop_affine(points, hw, size, rescale_factor), antialias=antialias)
