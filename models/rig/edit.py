"""Edits of a FaceRig: head pose, jaw, gaze, action units, lighting, and DiffusionRig's transfers.

Every edit returns a new FaceRig and never writes a tensor in place; with zero / default arguments
the result's tensors are exactly the input's (faces whose own edit is zero are copied bit for bit).

Angles are right-handed rotations about the camera axes (x right, y up, z toward the camera), in
degrees unless said otherwise, composed as R = R_z(roll) @ R_y(yaw) @ R_x(pitch) (the order DECA's
yaw readout, models.flame.rotation.yaw_degrees, assumes):
  yaw   about +y: positive turns the face toward the image's right (the subject's left);
  pitch about +x: positive tilts the face down (the nose toward the chest);
  roll  about +z: positive rolls the head counter-clockwise as seen in the image.
The jaw and the eyes use the same axes in the head's own frame (positive jaw pitch opens the mouth).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from ..render.sh import SH_CONSTANTS, rotate_sh, sh_from_direction
from .action_units import ACTION_UNITS
from .rig import FaceRig
from .rotation import axis_angle_to_matrix, matrix_to_axis_angle

MODES = ("add", "set")
TRANSFERS = {
    "pose": ("pose",),
    "expression": ("expression", "action_units", "jaw", "eyes"),  # eyes for FLAME only
    "lighting": ("light",),
}

Amount = float | torch.Tensor  # a scalar for every face, or one value per face (B,)
Vector3 = Sequence[float] | torch.Tensor  # (3,) for every face, or (B, 3)


# ----- rotations -----

def euler_matrix(angles: torch.Tensor) -> torch.Tensor:
    """(..., 3) [yaw, pitch, roll] in radians -> (..., 3, 3) R_z(roll) @ R_y(yaw) @ R_x(pitch)."""
    yaw, pitch, roll = angles.unbind(-1)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)

    def mat(*rows):
        return torch.stack([torch.stack(r, -1) for r in rows], -2)

    cy, sy, cp, sp, cr, sr = yaw.cos(), yaw.sin(), pitch.cos(), pitch.sin(), roll.cos(), roll.sin()
    r_x = mat((one, zero, zero), (zero, cp, -sp), (zero, sp, cp))
    r_y = mat((cy, zero, sy), (zero, one, zero), (-sy, zero, cy))
    r_z = mat((cr, -sr, zero), (sr, cr, zero), (zero, zero, one))
    return r_z @ r_y @ r_x


def matrix_euler(rotation: torch.Tensor) -> torch.Tensor:
    """Inverse of euler_matrix: (..., 3, 3) -> (..., 3) [yaw, pitch, roll] radians, yaw in [-90, 90] deg."""
    r = rotation
    yaw = torch.atan2(-r[..., 2, 0], torch.sqrt(r[..., 0, 0] ** 2 + r[..., 1, 0] ** 2))
    pitch = torch.atan2(r[..., 2, 1], r[..., 2, 2])
    roll = torch.atan2(r[..., 1, 0], r[..., 0, 0])
    return torch.stack([yaw, pitch, roll], -1)


# ----- helpers -----

def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def _per_face(value: Amount, rig: FaceRig, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A scalar or per-face amount as a (B,) tensor."""
    t = torch.as_tensor(value, dtype=dtype or rig.pose.dtype, device=rig.device).reshape(-1)
    if t.numel() == 1:
        return t.expand(len(rig))
    if t.numel() != len(rig):
        raise ValueError(f"got {t.numel()} values for a rig of {len(rig)} faces")
    return t


def _angles(rig: FaceRig, values: tuple[Amount, ...], degrees: bool = True) -> torch.Tensor:
    """(B, len(values)) float64 radians."""
    t = torch.stack([_per_face(v, rig, torch.float64) for v in values], -1)
    return torch.deg2rad(t) if degrees else t


# ----- pose, jaw, eyes -----

def rig_yaw_pitch_roll(rig: FaceRig) -> torch.Tensor:
    """(B, 3) [yaw, pitch, roll] in degrees of the rig's head rotation (the module's conventions)."""
    r = axis_angle_to_matrix(rig.pose.double())
    return torch.rad2deg(matrix_euler(r)).to(rig.pose.dtype)


def edit_pose(rig: FaceRig, yaw: Amount = 0.0, pitch: Amount = 0.0, roll: Amount = 0.0, degrees: bool = True,
              mode: str = "add") -> FaceRig:
    """Turn the head. add: R = euler(yaw, pitch, roll) @ R_fit, a turn in the camera frame on top of the
    fitted pose (undo it with the negated angles applied in reverse order: roll, yaw, then pitch);
    set: R = euler(yaw, pitch, roll), so rig_yaw_pitch_roll reads the angles back. The light is not
    touched: it stays fixed in the camera frame while the head turns."""
    _check_mode(mode)
    angles = _angles(rig, (yaw, pitch, roll), degrees)
    if mode == "add":
        unchanged = (angles == 0).all(-1, keepdim=True)
        if bool(unchanged.all()):
            return rig.replace()
        turned = matrix_to_axis_angle(euler_matrix(angles) @ axis_angle_to_matrix(rig.pose.double()))
        pose = torch.where(unchanged, rig.pose, turned.to(rig.pose.dtype))
    else:
        pose = matrix_to_axis_angle(euler_matrix(angles)).to(rig.pose.dtype)
    return rig.replace(pose=pose)


def _edit_columns(current: torch.Tensor, columns: tuple[int, ...], amounts: torch.Tensor, mode: str) -> torch.Tensor:
    """Add to / set some columns of a (B, K) tensor; amounts (B, len(columns))."""
    cols = torch.tensor(columns, device=current.device)
    delta = amounts.to(current.dtype)
    if mode == "add":
        return current.index_add(1, cols, delta)
    return current.index_copy(1, cols, delta)


def edit_jaw(rig: FaceRig, open: Amount = 0.0, sideways: Amount = 0.0, mode: str = "add") -> FaceRig:
    """Jaw rotation in degrees: `open` about x (positive opens the mouth), `sideways` about y (positive
    moves the chin toward the image's right). It edits the axis-angle components directly: for the jaw's
    small, nearly single-axis rotations that is the natural parameterisation, and add is exactly undone
    by adding the negated amounts."""
    _check_mode(mode)
    amounts = _angles(rig, (open, sideways))
    if mode == "add" and not bool(amounts.any()):
        return rig.replace()
    return rig.replace(jaw=_edit_columns(rig.jaw, (0, 1), amounts, mode))


def edit_eyes(rig: FaceRig, yaw: Amount = 0.0, pitch: Amount = 0.0, mode: str = "add") -> FaceRig:
    """Gaze of both eyes in degrees (yaw: positive looks toward the image's right; pitch: positive looks
    down), on FLAME's eye pose (B, 6) = two axis-angle vectors. The 468-point mesh has no eyeballs:
    a mesh468 rig comes back unchanged."""
    _check_mode(mode)
    if rig.geometry != "flame":
        return rig.replace()
    amounts = _angles(rig, (pitch, yaw, pitch, yaw))
    if mode == "add" and not bool(amounts.any()):
        return rig.replace()
    return rig.replace(eyes=_edit_columns(rig.eyes, (0, 1, 3, 4), amounts, mode))


# ----- action units -----

def edit_action_units(rig: FaceRig, amounts: Mapping[str, Amount], mode: str = "add") -> FaceRig:
    """Add to (or set) action-unit weights, keyed by ActionUnit.key; 1.0 is each unit's strong expression."""
    _check_mode(mode)
    index = {unit.key: i for i, unit in enumerate(ACTION_UNITS)}
    unknown = [k for k in amounts if k not in index]
    if unknown:
        raise ValueError(f"unknown action unit(s) {unknown}; valid keys: {', '.join(index)}")
    if rig.action_units.shape[1] != len(ACTION_UNITS):
        raise ValueError(f"the rig has {rig.action_units.shape[1]} action units; this version has {len(ACTION_UNITS)}")
    if not amounts:
        return rig.replace()
    cols = tuple(index[k] for k in amounts)
    values = torch.stack([_per_face(v, rig, rig.action_units.dtype) for v in amounts.values()], -1)
    if mode == "add" and not bool(values.any()):
        return rig.replace()
    return rig.replace(action_units=_edit_columns(rig.action_units, cols, values, mode))


# ----- lighting -----

def light_levels(light: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per channel (B, 3): the ambient level and the directional strength of an SH light, read so that
    sh_from_direction(d, colour=strength, ambient=ambient) gives them back: the directional strength is
    2 C1 |band-1 vector|, the ambient is the band-0 shading minus the lobe's own mean (strength / 4)."""
    c = SH_CONSTANTS
    strength = 2.0 * c[1] * light[:, 1:4].norm(dim=1)
    ambient = c[0] * light[:, 0] - strength / 4.0
    return ambient, strength


def _factor(value: Amount | None, rig: FaceRig) -> torch.Tensor | None:
    """A relative amount as (B, 1), or None where it keeps the fit (None or the number 1)."""
    if value is None or (isinstance(value, (int, float)) and value == 1.0):
        return None
    return _per_face(value, rig, rig.light.dtype)[:, None]


def _rgb(value: Amount | Vector3, rig: FaceRig) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=rig.light.dtype, device=rig.device)
    if t.dim() == 0:
        t = t.expand(3)
    if t.shape[-1] != 3 or t.dim() > 2:
        raise ValueError(f"colour must be RGB, (3,) or (B, 3), got {tuple(t.shape)}")
    return t.reshape(-1, 3)


def _direction(value: Vector3, rig: FaceRig) -> torch.Tensor:
    d = torch.as_tensor(value, dtype=rig.light.dtype, device=rig.device).reshape(-1, 3)
    if len(d) not in (1, len(rig)) or not bool((d.norm(dim=-1) > 0).all()):
        raise ValueError(f"the light direction must be non-zero, (3,) or ({len(rig)}, 3)")
    return d.expand(len(rig), 3)


def edit_lighting(rig: FaceRig, direction: Vector3 | None = None, intensity: Amount | None = None,
                  colour: Vector3 | None = None,
                  ambient: Amount | None = None, rotate_yaw: Amount = 0.0, rotate_pitch: Amount = 0.0,
                  scale: Amount = 1.0) -> FaceRig:
    """Relight. Every amount is relative to the fitted light (None / 1 / 0 degrees keeps it); applied in order:

    1. Shape. direction=None keeps the fitted SH. A direction (x, y, z) or (B, 3) in the camera frame,
       pointing from the face toward the light, replaces it by the directional light sh_from_direction
       with the fitted light's per-channel ambient and directional strength (light_levels), i.e. the same
       overall level and contrast, from the new direction.
    2. intensity multiplies the directional part (the lobe, with its share of band 0) and ambient the
       ambient part: contrast and fill, each a factor (scalar or (B,)).
    3. rotate_yaw / rotate_pitch (degrees) turn the light by R_y(yaw) @ R_x(pitch) (rotate_sh): the same
       angles given to edit_pose keep the lighting fixed on the face; positive yaw moves a frontal light
       toward the image's right, positive pitch moves it down.
    4. colour (RGB, (3,) or (B, 3)) tints by a per-channel multiply; scale multiplies everything.
    """
    light = rig.light
    gain, fill = _factor(intensity, rig), _factor(ambient, rig)
    if direction is not None or gain is not None or fill is not None:
        amb, strength = light_levels(light)
        one = torch.ones_like(amb[:, :1])
        gain, fill = (one if gain is None else gain), (one if fill is None else fill)
        if direction is not None:
            light = sh_from_direction(_direction(direction, rig), colour=strength * gain, ambient=amb * fill)
        else:
            band0 = (amb * fill + strength * gain / 4.0) / SH_CONSTANTS[0]
            light = torch.cat([band0[:, None], light[:, 1:] * gain[:, :, None]], 1)
    turn = _angles(rig, (rotate_yaw, rotate_pitch, 0.0))
    if bool(turn.any()):
        light = rotate_sh(light, euler_matrix(turn).to(light.dtype))
    if colour is not None:
        light = light * _rgb(colour, rig)[:, None, :]
    if not (isinstance(scale, (int, float)) and scale == 1.0):
        light = light * _per_face(scale, rig, light.dtype)[:, None, None]
    return rig.replace(light=light)


# ----- transfer -----

def transfer(rig: FaceRig, other: FaceRig, what: str) -> FaceRig:
    """DiffusionRig's edit modes: take one aspect from `other`, keep the rest (identity, albedo, camera,
    crops) from `rig`. pose: the global head rotation; expression: expression, action_units and jaw
    (and eyes for FLAME); lighting: light; all: the three. `other` has one face (used for every face)
    or as many as `rig`."""
    if what not in (*TRANSFERS, "all"):
        raise ValueError(f"what must be one of {(*TRANSFERS, 'all')}, got {what!r}")
    if other.geometry != rig.geometry:
        raise ValueError(f"cannot transfer from a {other.geometry} rig to a {rig.geometry} rig")
    if len(other) not in (1, len(rig)):
        raise ValueError(f"the source rig has {len(other)} faces; it needs 1 or {len(rig)}")
    names = [n for key in (TRANSFERS if what == "all" else (what,)) for n in TRANSFERS[key]]
    if rig.geometry != "flame":
        names = [n for n in names if n != "eyes"]
    source = other.expand_to(len(rig))
    changes = {}
    for name in names:
        mine, theirs = getattr(rig, name), getattr(source, name)
        if mine.shape != theirs.shape:
            raise ValueError(f"FaceRig.{name} shapes differ: {tuple(theirs.shape)} vs {tuple(mine.shape)}")
        changes[name] = theirs.to(device=mine.device, dtype=mine.dtype)
    return rig.replace(**changes)
