"""The mesh rig's jaw: a rotation about the jaw joints, blended per vertex by a weight map.

FLAME has a jaw joint; the 468-point mesh does not, so the rig gives it one. The lower face follows
a rotation about JAW_PIVOT (between the temporomandibular joints), each vertex by its weight from
`jaw_weights`: 1 on the chin, jaw and lower lip, 0 from the upper lip upward, with a ramp that is
sharp between the lips (they separate) and widens across the mouth corners and cheeks (the skin
stretches). Sign: the rotation is right-handed in the canonical frame (x right, y up, z toward the
camera), so a positive rotation about +x swings the chin down and back and OPENS the mouth, as
FLAME's jaw pose does; a positive rotation about +y moves the chin toward +x (the subject's left,
the image's right).
"""
from __future__ import annotations

import numpy as np
import torch

from ..flame.rotation import axis_angle_to_matrix
from .topology import Mesh468

# Canonical-frame pivot in metres: on the midline, 1 cm below the nose tip's level and 1 cm behind
# the head centre, i.e. on the axis through the two jaw joints in front of the ears.
JAW_PIVOT: tuple[float, float, float] = (0.0, -0.020, -0.010)

# Lip contours of the 468-point topology (mediapipe's lip landmark lists), each from the subject's
# right mouth corner (image left) to the left one.
LIPS_UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)

# Shape of the weight ramp outside the inner mouth corners (millimetres): its half-width starts at
# RAMP_START and grows by RAMP_GROWTH per mm sideways; beyond the outer corners the line it is
# centred on rises by LINE_RISE per mm toward the ears.
RAMP_START = 0.5
RAMP_GROWTH = 0.5
LINE_RISE = 0.15

_WEIGHTS: dict[int, tuple[Mesh468, torch.Tensor]] = {}


def _half_contour(points: np.ndarray, contour: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """|x| (ascending) and y of a contour's subject's-right half, midline included."""
    half = points[[i for i in contour if points[i, 0] <= 0]]
    order = np.argsort(-half[:, 0])
    return -half[order, 0], half[order, 1]


def _smoothstep(t: np.ndarray) -> np.ndarray:
    """0 below -1, 1 above 1, C1-smooth cubic in between."""
    t = np.clip(t, -1.0, 1.0)
    return 0.5 + t * (3.0 - t * t) / 4.0


def _compute_weights(mesh: Mesh468) -> torch.Tensor:
    p = mesh.canonical.double().numpy() * 1000.0
    ax, y = np.abs(p[:, 0]), p[:, 1]
    ux, uy = _half_contour(p, LIPS_UPPER_INNER)
    lx, ly = _half_contour(p, LIPS_LOWER_INNER)
    inner_x, inner_y = ux[-1], uy[-1]  # the inner mouth corner (shared by both contours)
    outer = p[LIPS_UPPER_OUTER[0]]
    outer_x, outer_y = -outer[0], outer[1]

    # Between the inner corners the line runs midway between the lips and the ramp spans the gap,
    # so the inner contours get exactly 0 (upper) and 1 (lower).
    up, low = np.interp(ax, ux, uy), np.interp(ax, lx, ly)
    line = np.where(ax <= inner_x, 0.5 * (up + low),
                    np.where(ax <= outer_x, np.interp(ax, [inner_x, outer_x], [inner_y, outer_y]),
                             outer_y + LINE_RISE * (ax - outer_x)))
    gap = np.where(ax <= inner_x, 0.5 * (up - low), 0.0)
    half_width = np.maximum(gap, RAMP_START + RAMP_GROWTH * np.maximum(ax - inner_x, 0.0))
    return torch.from_numpy(_smoothstep((line - y) / half_width)).float()


def jaw_weights(mesh: Mesh468) -> torch.Tensor:
    """(468,) float32 in [0, 1]: how much each vertex follows the jaw (cached per mesh; a copy)."""
    cached = _WEIGHTS.get(id(mesh))
    if cached is None or cached[0] is not mesh:
        cached = _WEIGHTS[id(mesh)] = (mesh, _compute_weights(mesh))
    return cached[1].clone()


def apply_jaw(verts: torch.Tensor, jaw: torch.Tensor, mesh: Mesh468) -> torch.Tensor:
    """verts (B, 468, 3) canonical frame, jaw (B, 3) axis-angle (radians) -> the jaw-posed verts.

    Linear blend of the rotation about JAW_PIVOT: v + w(v) * (R - I)(v - pivot). A zero jaw gives
    R - I = 0 exactly, so the input comes back bit-for-bit. A batch of 1 on either side broadcasts.
    """
    if verts.dim() != 3 or verts.shape[-1] != 3:
        raise ValueError(f"verts must be (B, V, 3), got {tuple(verts.shape)}")
    if jaw.dim() != 2 or jaw.shape[-1] != 3:
        raise ValueError(f"jaw must be (B, 3), got {tuple(jaw.shape)}")
    weights = jaw_weights(mesh).to(verts)
    rot = axis_angle_to_matrix(jaw.to(verts))
    delta = rot - torch.eye(3, dtype=verts.dtype, device=verts.device)
    pivot = torch.tensor(JAW_PIVOT, dtype=verts.dtype, device=verts.device)
    return verts + weights[:, None] * ((verts - pivot) @ delta.transpose(-1, -2))
