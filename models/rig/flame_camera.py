"""DECA's input crop, cut from an aligned face crop, and DECA's camera rewritten for the aligned crop.

DECA (datasets.TestData) crops the photo around the bounding box of FAN's 68 landmarks: centre =
box centre, side = (w + h) / 2 * 1.1 * 1.25, mapped by a similarity onto a 224 x 224 image whose
corner pixel *indices* are 0 and 223 (skimage, pixel centres on integers). Here the photo is the
aligned crop and the 68-point box is approximated by the 468-point mesh: the face oval below the
eye corners (the jawline, where iBUG points 0-16 lie) and both eyebrows (points 17-26; the mesh's
brow groups hold the brow's upper and lower contours, so the top edge can sit a millimetre or two
higher than FAN's). Like every other pixel coordinate in the pack, the aligned crop's are
continuous (pixel i covers [i, i + 1)); DECA's index convention is converted exactly.

DECA's camera: NDC = s * (X_xy + t), y up before DECA flips it for images, and its training
normalised crop-pixel indices q as q / 224 * 2 - 1 (train_datasets: `kpt / image_size * 2 - 1`),
so NDC n lies at continuous pixel 112 (n + 1) + 0.5 of its crop. The map from DECA's NDC to the
aligned crop's NDC is an axis-aligned scale plus shift (the box is axis-aligned in the aligned
crop), so it folds into the orthographic camera [s, tx, ty] exactly.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from .topology import load_mesh468

DECA_SIZE = 224  # E_flame's input side
DECA_SCALE = 1.25  # TestData(scale=1.25)
KPT68_GROWTH = 1.1  # bbox2point(type='kpt68'): old_size = (w + h) / 2 * 1.1


@functools.lru_cache(maxsize=1)
def deca_box_indices() -> tuple[int, ...]:
    """Mesh468 vertices whose box approximates the 68-point box: jawline (oval below the eye corners) + brows."""
    mesh = load_mesh468()
    level = float(mesh.canonical[[33, 263], 1].mean())  # the outer eye corners' height
    jaw = [i for i in mesh.groups["face_oval"] if float(mesh.canonical[i, 1]) <= level]
    return tuple(sorted(set(jaw) | set(mesh.groups["left_eyebrow"]) | set(mesh.groups["right_eyebrow"])))


def deca_crop_affine(points: np.ndarray) -> np.ndarray:
    """(2, 3) affine from aligned-crop pixels to DECA's 224 crop pixels, for the (N, 2) box points.

    DECA maps the square [c - size/2, c + size/2] (indices) onto indices [0, 223]: scale 223 / size.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    lo, hi = p.min(0), p.max(0)
    size = float((hi - lo).sum()) / 2.0 * KPT68_GROWTH * DECA_SCALE
    if not (np.isfinite(size) and size > 0):
        raise ValueError(f"degenerate face box for DECA's crop: {lo.tolist()} .. {hi.tolist()}")
    centre = (lo + hi) / 2.0  # continuous; the index-convention centre is 0.5 less, as is every index
    k = (DECA_SIZE - 1) / size
    shift = 0.5 - k * (centre - size / 2.0)  # index q = k (p_index - c_index + size/2), continuous = q + 0.5
    return np.array([[k, 0.0, shift[0]], [0.0, k, shift[1]]])


def ndc_to_pixels(size: float, offset: float = 0.0) -> np.ndarray:
    """(3, 3) homogeneous map from NDC (x right, y up) to pixels (x right, y down) of a size-px crop.

    offset 0: the pack's convention (to_screen); offset 0.5: DECA's, whose NDC addresses pixel indices.
    """
    half = size / 2.0
    return np.array([[half, 0.0, half + offset], [0.0, -half, half + offset], [0.0, 0.0, 1.0]])


def deca_to_crop_ndc(deca_affine: np.ndarray, crop_size: int) -> tuple[float, np.ndarray]:
    """(a, c): DECA-crop NDC n maps to aligned-crop NDC a * n + c (an axis-aligned similarity)."""
    inverse = np.linalg.inv(np.vstack([np.asarray(deca_affine, dtype=np.float64), [0.0, 0.0, 1.0]]))
    m = np.linalg.inv(ndc_to_pixels(crop_size)) @ inverse @ ndc_to_pixels(DECA_SIZE, 0.5)
    a = m[0, 0]
    if not np.allclose([m[0, 1], m[1, 0], m[1, 1] - a], 0.0, atol=1e-12 * max(1.0, abs(a))):
        raise ValueError("DECA's crop must be an axis-aligned, uniformly scaled window of the aligned crop")
    return float(a), m[:2, 2].copy()


def deca_camera_to_rig(cam: torch.Tensor, deca_affines: np.ndarray, crop_size: int) -> torch.Tensor:
    """DECA cameras (B, 3) for their 224 crops -> rig cameras (B, 3) for the aligned crops.

    a * s (X + t) + c = (a s) (X + t + c / (a s)): the scale multiplies, the shift absorbs c.
    """
    out = []
    for code, affine in zip(cam.double().cpu(), np.asarray(deca_affines).reshape(-1, 2, 3)):
        a, c = deca_to_crop_ndc(affine, crop_size)
        s = a * code[0]
        out.append(torch.cat([s[None], code[1:] + torch.from_numpy(c) / s]))
    return torch.stack(out).to(cam) if out else cam.new_zeros(0, 3)
