"""Face animation between two rigs: a batch of in-between rigs, one per frame.

Rotations (pose, jaw, each eye) are slerped as quaternions along the shorter arc; everything else
(camera, identity, expression, action units, albedo, SH light) is interpolated linearly. The first
frame is exactly `a` and the last exactly `b`.

Batches: `a` and `b` hold one face each, or the same number B of faces (a single face on one side
is paired with every face of the other). The result holds frames * B faces, frame-major: face i of
frame f is at index f * B + i. Every frame keeps `a`'s crop records and face indices, so pasting
back puts each frame into `a`'s photo.
"""
from __future__ import annotations

import torch

from .rig import TENSOR_FIELDS, FaceRig, concat_rigs

EASINGS = ("linear", "ease_in_out")
ROTATIONS = {"pose": 1, "jaw": 1, "eyes": 2}  # field -> how many axis-angle vectors it holds


def axis_angle_to_quaternion(axis_angle: torch.Tensor) -> torch.Tensor:
    """(..., 3) rotation vectors -> (..., 4) unit quaternions [w, x, y, z] with w >= 0."""
    theta = axis_angle.norm(dim=-1, keepdim=True)
    small = theta < 1e-6
    factor = torch.where(small, 0.5 - theta * theta / 48, torch.sin(0.5 * theta) / torch.where(small, 1.0, theta))
    return torch.cat([torch.cos(0.5 * theta), axis_angle * factor], -1)


def quaternion_to_axis_angle(quaternion: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions [w, x, y, z] (any norm or sign) -> (..., 3) vectors with angle in [0, pi]."""
    q = quaternion / quaternion.norm(dim=-1, keepdim=True)
    q = torch.where(q[..., :1] < 0, -q, q)
    w, v = q[..., :1], q[..., 1:]
    n = v.norm(dim=-1, keepdim=True)
    small = n < 1e-6
    factor = torch.where(small, 2.0 / w.clamp_min(1e-6), 2.0 * torch.atan2(n, w) / torch.where(small, 1.0, n))
    return v * factor


def slerp(q0: torch.Tensor, q1: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of unit quaternions (..., 4) along the shorter arc."""
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)
    dot = dot.abs().clamp(max=1.0)
    theta = torch.acos(dot)
    near = dot > 0.9995  # nearly equal: normalised lerp is exact enough and stays finite
    sin = torch.where(near, torch.ones_like(theta), torch.sin(theta))
    w0 = torch.where(near, 1.0 - t, torch.sin((1.0 - t) * theta) / sin)
    w1 = torch.where(near, torch.full_like(theta, t), torch.sin(t * theta) / sin)
    q = w0 * q0 + w1 * q1
    return q / q.norm(dim=-1, keepdim=True)


def _slerp_axis_angle(a: torch.Tensor, b: torch.Tensor, t: float, vectors: int) -> torch.Tensor:
    shape = a.shape
    qa = axis_angle_to_quaternion(a.double().reshape(-1, vectors, 3))
    qb = axis_angle_to_quaternion(b.double().reshape(-1, vectors, 3))
    return quaternion_to_axis_angle(slerp(qa, qb, t)).reshape(shape).to(a.dtype)


def _ease(t: float, easing: str) -> float:
    return t * t * (3.0 - 2.0 * t) if easing == "ease_in_out" else t


def interpolate_rigs(a: FaceRig, b: FaceRig, frames: int, easing: str = "linear") -> FaceRig:
    """`frames` rigs from a to b (see the module docstring); frames=1 gives `a` alone.

    easing: "linear", or "ease_in_out" (smoothstep 3t^2 - 2t^3: starts and stops gently).
    """
    if easing not in EASINGS:
        raise ValueError(f"easing must be one of {EASINGS}, got {easing!r}")
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    if a.geometry != b.geometry:
        raise ValueError(f"cannot interpolate a {a.geometry} rig into a {b.geometry} rig")
    if len(a) != len(b) and 1 not in (len(a), len(b)):
        raise ValueError(f"cannot pair {len(a)} faces with {len(b)}: give 1 or the same number on each side")
    n = max(len(a), len(b))
    a, b = a.expand_to(n), b.expand_to(n)
    for name in TENSOR_FIELDS:
        if getattr(a, name).shape != getattr(b, name).shape:
            raise ValueError(f"FaceRig.{name} shapes differ: {tuple(getattr(a, name).shape)} vs "
                             f"{tuple(getattr(b, name).shape)}")
    if frames == 1:
        return a
    rigs = [a]
    for f in range(1, frames - 1):
        t = _ease(f / (frames - 1), easing)
        tensors = {}
        for name in TENSOR_FIELDS:
            x, y = getattr(a, name), getattr(b, name)
            if name in ROTATIONS:
                tensors[name] = _slerp_axis_angle(x, y, t, ROTATIONS[name])
            else:
                tensors[name] = torch.lerp(x, y.to(x), t)
        rigs.append(a.replace(**tensors))
    rigs.append(a.replace(**{name: getattr(b, name).to(getattr(a, name)) for name in TENSOR_FIELDS}))
    return concat_rigs(rigs)
