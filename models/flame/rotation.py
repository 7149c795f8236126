"""Axis-angle rotations and the yaw angle DECA uses to pick contour landmarks."""
from __future__ import annotations

import torch


def skew(v: torch.Tensor) -> torch.Tensor:
    """Cross-product matrices [v]x of shape (..., 3, 3), so that [v]x @ u = v x u."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*v.shape[:-1], 3, 3)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: (..., 3) rotation vectors (axis * angle in radians) to (..., 3, 3) matrices.

    Written as R = I + a(t) K + b(t) K^2 with K = [v]x of the *unnormalised* vector, a = sin t / t and
    b = (1 - cos t) / t^2, which stay finite as t -> 0 (Taylor terms below 1e-4 rad). A zero vector
    gives exactly the identity, so a zero pose leaves a mesh bit-for-bit unchanged, and gradients
    at zero are well defined.
    """
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True).unsqueeze(-1)
    small = theta2 < 1e-8
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)
    safe = safe2.sqrt()
    a = torch.where(small, 1 - theta2 / 6, torch.sin(safe) / safe)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(safe)) / safe2)
    k = skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a * k + b * (k @ k)


def yaw_degrees(rotation: torch.Tensor) -> torch.Tensor:
    """Rotation about the vertical (y) axis, in degrees, of (..., 3, 3) matrices.

    For R = R_z R_y R_x this is the y angle, asin(-R[2, 0]), computed with atan2 against the
    norm of the first column so it stays accurate near +-90 degrees.
    """
    r00, r10, r20 = rotation[..., 0, 0], rotation[..., 1, 0], rotation[..., 2, 0]
    return torch.rad2deg(torch.atan2(-r20, torch.sqrt(r00 * r00 + r10 * r10)))
