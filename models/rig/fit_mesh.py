"""FaceFit, embedded backend: the 468-point face mesh fitted to a photo with no downloaded weights.

1. The detector's dense landmarks are mapped into the aligned crop (the crop's similarity
   transform) and into the rig's world frame (x right, y up, z toward the camera).
2. Rigid pose and the orthographic camera come from a weighted similarity fit (Procrustes) of the
   canonical face to those landmarks; points the expression moves most (lips, jaw, brows) count less.
3. What the rigid fit leaves is the non-rigid residual. Its part that the action units explain
   (non-negative least squares with a small ridge) becomes the fitted `expression`; the rest is the
   person's `identity` shape. identity + expression reproduces the landmarks exactly, so every
   edit control at zero leaves the face exactly as fitted.
4. Per-vertex albedo and SH lighting come from the photo (appearance.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..faces.crops import FaceCropInfo, FaceCrops
from .action_units import ACTION_UNITS, action_unit_basis
from .appearance import fit_appearance
from .edit import matrix_euler
from .geometry import rig_mesh
from .jaw import jaw_weights
from .procrustes import similarity_fit
from .rig import FaceRig
from .rotation import matrix_to_axis_angle
from .topology import Mesh468, load_mesh468


@dataclass(frozen=True)
class MeshFitSettings:
    expression_ridge: float = 0.05  # pulls small, ambiguous residuals into identity rather than expression
    lower_face_weight: float = 0.2  # Procrustes weight of the jaw-driven points
    brow_weight: float = 0.5
    max_yaw_degrees: float = 45.0  # past this the landmark model guesses the hidden half of the face


class FitError(ValueError):
    """A face the embedded fitter cannot use (no landmarks, or a degenerate pose)."""


def landmarks_in_crop(info: FaceCropInfo) -> torch.Tensor:
    """The detection's dense landmarks in the crop's world frame: NDC x/y (y up), z toward the camera."""
    face = info.detection
    if face is None or face.landmarks is None:
        raise FitError("this face has no dense landmarks (run detection with landmarks)")
    lm = np.asarray(face.landmarks, dtype=np.float64)
    a = info.affine
    xy = lm[:, :2] @ a[:, :2].T + a[:, 2]
    scale = float(np.sqrt(abs(np.linalg.det(a[:, :2]))))
    half = info.crop_size / 2.0
    world = np.stack([xy[:, 0] / half - 1.0, 1.0 - xy[:, 1] / half, -lm[:, 2] * scale / half], -1)
    return torch.from_numpy(world)


def pose_weights(mesh: Mesh468, settings: MeshFitSettings) -> torch.Tensor:
    w = torch.ones(mesh.num_vertices, dtype=torch.float64)
    w = w * (1 - (1 - settings.lower_face_weight) * jaw_weights(mesh).double())
    w[mesh.group("left_eyebrow", "right_eyebrow")] *= settings.brow_weight
    w[mesh.group("lips")] = settings.lower_face_weight
    return w


def solve_expression(residual: torch.Tensor, basis: torch.Tensor, ridge: float) -> torch.Tensor:
    """Non-negative action-unit weights (B, K) explaining (B, V, 3) residuals with (K, V, 3) units."""
    from scipy.optimize import nnls

    a = basis.reshape(basis.shape[0], -1).T.double().numpy()  # (3V, K)
    scale = float(np.sqrt((a ** 2).sum(0).mean()))
    a_aug = np.vstack([a, np.sqrt(ridge) * scale * np.eye(a.shape[1])])
    out = []
    for r in residual.reshape(residual.shape[0], -1).double().numpy():
        w, _ = nnls(a_aug, np.concatenate([r, np.zeros(a.shape[1])]), maxiter=50 * a.shape[1])
        out.append(w)
    return torch.from_numpy(np.stack(out))


def _placeholder(mesh: Mesh468, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pose and camera of the canonical face framed like an FFHQ crop, for frames without a face."""
    eyes = mesh.canonical[list(mesh.groups["right_eye"]) + list(mesh.groups["left_eye"])].double()
    s = 0.42 / 0.063  # FFHQ framing: about 21% of the crop between the eye centres
    t = torch.tensor([0.0, -float(eyes[:, 1].mean()) + 0.12 / s, 0.0], dtype=torch.float64)
    return torch.tensor(s, dtype=torch.float64), torch.eye(3, dtype=torch.float64), t * s


def fit_mesh468(crops: torch.Tensor, info: FaceCrops, settings: MeshFitSettings = MeshFitSettings(),
                check_interrupt: Callable[[], None] | None = None) -> FaceRig:
    """A mesh468 FaceRig for every crop of a Face Align Crop batch (placeholders get the mean face)."""
    if crops.shape[0] != len(info):
        raise ValueError(f"{crops.shape[0]} crops but the FACE_CROP describes {len(info)}")
    mesh = load_mesh468()
    basis = action_unit_basis(mesh).double()
    canonical = mesh.canonical.double()
    weights = pose_weights(mesh, settings)
    n, size = len(info), crops.shape[1]
    scales, rotations, translations, residuals = [], [], [], []
    for item in info.items:
        if check_interrupt is not None:
            check_interrupt()
        if not item.valid:
            s, r, t = _placeholder(mesh, size)
            scales.append(s), rotations.append(r), translations.append(t)
            residuals.append(torch.zeros_like(canonical))
            continue
        target = landmarks_in_crop(item)
        s, r, t = (v[0] for v in similarity_fit(canonical, target[None], weights))
        if not torch.isfinite(s) or s <= 0:
            raise FitError(f"face in frame {item.source_index + 1}: degenerate pose fit")
        yaw = float(torch.rad2deg(matrix_euler(r)[0]))
        if abs(yaw) > settings.max_yaw_degrees:
            raise FitError(f"the face in frame {item.source_index + 1} is turned {abs(yaw):.0f} degrees from frontal; "
                           f"the landmark model is unreliable past about {settings.max_yaw_degrees:.0f} degrees "
                           "(profile views). Use a more frontal photo, or raise max_yaw")
        local = ((target - t) @ r) / s  # back into the canonical frame
        scales.append(s), rotations.append(r), translations.append(t)
        residuals.append(local - canonical)
    residual = torch.stack(residuals)
    expression = solve_expression(residual, basis, settings.expression_ridge) if n else residual.new_zeros(0, len(ACTION_UNITS))
    identity = canonical + residual - torch.einsum("bk,kvc->bvc", expression, basis)
    scale = torch.stack(scales) if n else residual.new_zeros(0)
    rotation = torch.stack(rotations) if n else residual.new_zeros(0, 3, 3)
    shift = torch.stack(translations) if n else residual.new_zeros(0, 3)
    camera = torch.cat([scale[:, None], shift[:, :2] / scale[:, None]], -1)
    f32 = dict(dtype=torch.float32, device=crops.device)
    rig = FaceRig(
        geometry="mesh468", identity=identity.to(**f32), expression=expression.to(**f32),
        action_units=torch.zeros(n, len(ACTION_UNITS), **f32), pose=matrix_to_axis_angle(rotation).to(**f32),
        jaw=torch.zeros(n, 3, **f32), eyes=torch.zeros(n, 6, **f32), camera=camera.to(**f32),
        light=torch.zeros(n, 9, 3, **f32), albedo=torch.full((n, mesh.num_vertices, 3), 0.5, **f32),
        crop_size=size, crops=info,
        face_index=tuple(item.face_index for item in info.items),
    )
    if n == 0:
        return rig
    albedo, light = fit_appearance(crops[..., :3].float(), rig_mesh(rig), mesh.mirror.to(crops.device))
    return rig.replace(albedo=albedo, light=light)

