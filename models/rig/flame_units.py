"""The rig's FACS action units on FLAME: each unit as a FLAME expression offset (or jaw rotation).

The units are displacement fields of the 468-point mesh (action_units.py). FLAME moves its surface
with 50 expression blendshapes, so each unit becomes the expression offset whose surface motion is
closest, in least squares, to the unit's displacement at corresponding points:

1. Correspondence on the neutral template (shape = expression = pose = 0): a similarity takes the
   canonical 468 mesh (metres, x right, y up, z toward the camera, like FLAME's frame) onto FLAME,
   fitted (Procrustes) on anchors found on both. With EMOCA / FLAME's
   `mediapipe_landmark_embedding.npz` the anchors are its 105 embedded mediapipe points; otherwise
   the 68-point static embedding's eye corners, brows, nose and lip points (IBUG_TO_MEDIAPIPE).
   Each mesh point then takes its embedded surface point where the mediapipe embedding has one,
   else its nearest FLAME vertex (eyeballs excluded: they have no expression); points farther than
   MAX_MATCH from FLAME's surface (e.g. inside the mouth) are left out. This is an approximation:
   the canonical mesh and FLAME's mean face differ by a few millimetres in places.
2. A = FLAME's expression directions at those points (3P x 50), B = the units' fields turned into
   FLAME's frame (s R d); the map is pinv(A) B (minimum norm where A is nearly singular), computed
   once per set of assets. A zero unit vector gives an exactly zero offset.

The jaw drop unit is a jaw swing (action_units: JAW_DROP_DEGREES about the jaw axis), and FLAME's
expression space does not open the jaw (FLAME poses it), so it drives FLAME's jaw joint instead.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..flame.landmarks import barycentric_landmarks
from ..loading import ModelFileError
from .action_units import ACTION_UNITS, JAW_DROP_DEGREES, action_unit_basis
from .procrustes import similarity_fit
from .rotation import axis_angle_to_matrix, matrix_to_axis_angle
from .topology import load_mesh468

if TYPE_CHECKING:
    from .flame_backend import FlameAssets

MEDIAPIPE_EMBEDDING_FILE = "mediapipe_landmark_embedding.npz"
MEDIAPIPE_KEYS = ("lmk_face_idx", "lmk_b_coords", "landmark_indices")
MAX_MATCH = 0.010  # metres: a mesh point farther than this from FLAME's surface has no counterpart
EYEBALL_JOINTS = (3, 4)
JAW_UNIT = "au26_jaw_drop"
PINV_RTOL = 1e-6  # FLAME's directions are float32 data: singular values below this (relative) are noise

# iBUG 68-point index -> mediapipe vertices at the same spot (averaged); FLAME's static embedding
# holds points 17..67. FAN's brow points run between the mesh's upper and lower brow contours.
IBUG_TO_MEDIAPIPE: dict[int, tuple[int, ...]] = {
    17: (70, 46), 19: (105, 52), 21: (107, 55), 22: (336, 285), 24: (334, 282), 26: (300, 276),  # brows
    27: (168,), 30: (1,), 33: (2,),  # nose root, tip, base
    36: (33,), 39: (133,), 42: (362,), 45: (263,),  # eye corners
    48: (61,), 51: (0,), 54: (291,), 57: (17,), 62: (13,), 66: (14,),  # mouth corners, lip midpoints
}
FIRST_STATIC = 17


@dataclass(frozen=True, eq=False)
class MediapipeEmbedding:
    """Mediapipe landmarks embedded in FLAME's triangles (EMOCA / FLAME `mediapipe_landmark_embedding.npz`)."""

    faces_idx: torch.Tensor  # (L,) FLAME triangle per landmark
    bary: torch.Tensor  # (L, 3) barycentric weights
    indices: torch.Tensor  # (L,) mediapipe vertex index per landmark


def load_mediapipe_embedding(path: str | PathLike[str], n_faces: int) -> MediapipeEmbedding:
    """Read and check the npz (plain arrays, no pickle); an unexpected layout names what it found."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            found = {k: np.asarray(npz[k]) for k in npz.files}
    except (OSError, ValueError) as exc:
        raise ModelFileError(path, f"not a readable .npz mediapipe landmark embedding ({exc})") from exc
    missing = [k for k in MEDIAPIPE_KEYS if k not in found]
    if missing:
        layout = {k: tuple(v.shape) for k, v in found.items()}
        raise ModelFileError(path, f"expected keys {list(MEDIAPIPE_KEYS)} (FLAME's mediapipe landmark embedding); "
                                   f"missing {missing}, found {layout}")
    faces = found["lmk_face_idx"].reshape(-1).astype(np.int64)
    bary = found["lmk_b_coords"].reshape(-1, 3).astype(np.float64) if found["lmk_b_coords"].size % 3 == 0 else None
    indices = found["landmark_indices"].reshape(-1).astype(np.int64)
    if bary is None or not len(faces) == len(bary) == len(indices):
        shapes = ", ".join(f"{k} {found[k].shape}" for k in MEDIAPIPE_KEYS)
        raise ModelFileError(path, f"{shapes}: expected the same L points as (L,), (L, 3), (L,)")
    if len(faces) and (faces.min() < 0 or faces.max() >= n_faces):
        raise ModelFileError(path, f"lmk_face_idx indexes triangles outside [0, {n_faces})")
    if len(indices) and (indices.min() < 0 or indices.max() >= 478):
        raise ModelFileError(path, "landmark_indices must be mediapipe landmark numbers in [0, 478)")
    if not np.isfinite(bary).all():
        raise ModelFileError(path, "lmk_b_coords holds non-finite weights")
    keep = indices < load_mesh468().num_vertices  # the 10 iris points (468..477) are not on the mesh
    return MediapipeEmbedding(torch.from_numpy(faces[keep]), torch.from_numpy(bary[keep]).float(),
                              torch.from_numpy(indices[keep]))


@dataclass(frozen=True)
class Correspondence:
    """Mesh468 point i sits on FLAME at sum_k weights[i, k] * vertex[vertices[i, k]] (if valid[i])."""

    vertices: torch.Tensor  # (468, 3) long
    weights: torch.Tensor  # (468, 3) float64
    valid: torch.Tensor  # (468,) bool
    scale: float  # canonical mesh -> FLAME similarity: x_flame = scale * R x + t
    rotation: torch.Tensor  # (3, 3) float64
    translation: torch.Tensor  # (3,) float64


def _anchors(assets: "FlameAssets", template: torch.Tensor) -> tuple[list[tuple[int, ...]], torch.Tensor]:
    """Mediapipe vertex groups and the FLAME points (N, 3) they correspond to."""
    faces = assets.model.faces.cpu()
    if assets.mediapipe is not None:
        e = assets.mediapipe
        points = (template[faces[e.faces_idx]] * e.bary.double()[..., None]).sum(1)
        return [(int(i),) for i in e.indices], points
    if assets.landmarks is None:
        raise ValueError("action-unit edits on a FLAME rig need FLAME's landmark embedding "
                         f"(flame_landmarks.safetensors) or {MEDIAPIPE_EMBEDDING_FILE} next to the FLAME files")
    lm = assets.landmarks
    static = barycentric_landmarks(template[None], faces, lm.static_lmk_faces_idx.cpu(),
                                   lm.static_lmk_bary_coords.cpu().double())[0]
    ibug = sorted(IBUG_TO_MEDIAPIPE)
    return [IBUG_TO_MEDIAPIPE[i] for i in ibug], static[[i - FIRST_STATIC for i in ibug]]


def flame_correspondence(assets: "FlameAssets") -> Correspondence:
    """Where each 468-mesh point lies on FLAME's neutral template (see the module docstring)."""
    model = assets.model
    template = model.v_template.detach().double().cpu()
    canonical = load_mesh468().canonical.double()
    groups, targets = _anchors(assets, template)
    source = torch.stack([canonical[list(g)].mean(0) for g in groups])
    s, r, t = (v[0] for v in similarity_fit(source, targets[None]))
    if not (torch.isfinite(s) and s > 0):
        raise ValueError("could not align the 468-point mesh with FLAME's template (degenerate anchors)")
    placed = s * canonical @ r.T + t  # the canonical mesh in FLAME's frame
    eyeball = model.lbs_weights.detach().cpu()[:, list(EYEBALL_JOINTS)].sum(1) > 0.5
    candidates = torch.nonzero(~eyeball).squeeze(1)
    distance, nearest = torch.cdist(placed, template[candidates]).min(1)
    vertices = candidates[nearest][:, None].repeat(1, 3)
    weights = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).repeat(len(placed), 1)
    valid = distance <= MAX_MATCH
    if assets.mediapipe is not None:  # the embedded points are exact
        e = assets.mediapipe
        vertices[e.indices] = model.faces.cpu()[e.faces_idx]
        weights[e.indices] = e.bary.double()
        valid[e.indices] = True
    return Correspondence(vertices, weights, valid, float(s), r, t)


def _solve_units(assets: "FlameAssets") -> torch.Tensor:
    """(N_AU, n_exp) float64: expression offset per unit weight (zero row for the jaw unit)."""
    corr = flame_correspondence(assets)
    model = assets.model
    n_shape = model.config.n_shape
    exprdirs = model.shapedirs.detach().double().cpu()[..., n_shape:]  # (V, 3, n_exp)
    a = (exprdirs[corr.vertices] * corr.weights[..., None, None]).sum(1)  # (468, 3, n_exp)
    fields = action_unit_basis(load_mesh468()).double() * corr.scale @ corr.rotation.T  # (N_AU, 468, 3)
    keep = corr.valid.double()[:, None]
    a = (a * keep[..., None]).reshape(-1, a.shape[-1])
    b = (fields * keep).reshape(len(ACTION_UNITS), -1)
    units = (torch.linalg.pinv(a, rtol=PINV_RTOL) @ b.T).T
    units[[u.key for u in ACTION_UNITS].index(JAW_UNIT)] = 0.0
    return units


_UNIT_MAPS: "weakref.WeakKeyDictionary[FlameAssets, torch.Tensor]" = weakref.WeakKeyDictionary()


def unit_expression_map(assets: "FlameAssets") -> torch.Tensor:
    """(N_AU, n_exp) float64 on the CPU, computed once per FlameAssets."""
    if assets not in _UNIT_MAPS:
        _UNIT_MAPS[assets] = _solve_units(assets)
    return _UNIT_MAPS[assets]


def apply_units(action_units: torch.Tensor, expression: torch.Tensor, jaw: torch.Tensor,
                assets: "FlameAssets") -> tuple[torch.Tensor, torch.Tensor]:
    """FLAME (expression, jaw) with the action units applied; faces whose units are all zero come
    back bit-for-bit (and no embedding is needed when every unit is zero)."""
    active = (action_units != 0).any(1)
    if not bool(active.any()):
        return expression, jaw
    units = unit_expression_map(assets).to(expression)
    expression = torch.where(active[:, None], expression + action_units.to(expression) @ units, expression)
    drop = action_units[:, [u.key for u in ACTION_UNITS].index(JAW_UNIT)].to(jaw)
    swing = torch.zeros_like(jaw)
    swing[:, 0] = drop * math.radians(JAW_DROP_DEGREES)  # +x opens the mouth, in FLAME and the mesh rig
    turned = matrix_to_axis_angle(axis_angle_to_matrix(jaw) @ axis_angle_to_matrix(swing))
    return expression, torch.where((drop != 0)[:, None], turned, jaw)
