"""FACE_RIG: a batch of fitted 3D faces, the control surface of the pack's rig-driven edits.

One value holds B faces (one per crop of a FACE_CROP batch). It is immutable: every edit returns a
new FaceRig (`replace`), and tensors are never written in place.

Two geometries share the layout:

* "mesh468" (embedded, no download): the 468-point face mesh. `identity` is the person's neutral
  shape (B, 468, 3) in the canonical frame (metres; x right, y up, z toward the camera, origin at
  the head centre); `expression` are the fitted action-unit weights (B, N_AU) that, applied to
  `identity`, reproduce the photo; `albedo` is per-vertex RGB (B, 468, 3).
* "flame" (FLAME 2020 via DECA, as DiffusionRig): `identity` = shape coefficients (B, 100),
  `expression` = expression coefficients (B, 50), `albedo` = texture coefficients (B, 50) when a
  FLAME texture space is installed, else per-vertex RGB (B, 5023, 3) sampled from the photo.

Common to both:
  action_units (B, N_AU)  edits on top of the fit, in ACTION_UNITS order; all zero = as fitted
  pose (B, 3)             global head rotation, axis-angle in radians, about the head centre
  jaw (B, 3)              jaw rotation, axis-angle (FLAME's jaw joint; the mesh's jaw rig)
  eyes (B, 6)             eyeball rotations (FLAME only; zero for mesh468)
  camera (B, 3)           orthographic [s, tx, ty] (DECA's convention): crop NDC xy = s * (X_xy + t),
                          NDC x right / y up in [-1, 1] over the aligned crop
  light (B, 9, 3)         second-order SH lighting in DECA's basis and constants
  crop_size               side in pixels of the aligned crop the rig is pixel-aligned with
  crops                   the FACE_CROP the rig was fitted on (paste-back), or None
  face_index              per item, the face's index in its frame (left to right), -1 if unknown
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..faces.crops import FaceCrops

GEOMETRIES = ("mesh468", "flame")
TENSOR_FIELDS = ("identity", "expression", "action_units", "pose", "jaw", "eyes", "camera", "light", "albedo")


@dataclass(frozen=True)
class FaceRig:
    geometry: str
    identity: torch.Tensor
    expression: torch.Tensor
    action_units: torch.Tensor
    pose: torch.Tensor
    jaw: torch.Tensor
    eyes: torch.Tensor
    camera: torch.Tensor
    light: torch.Tensor
    albedo: torch.Tensor
    crop_size: int
    crops: FaceCrops | None = None
    face_index: tuple[int, ...] = ()

    def __post_init__(self):
        if self.geometry not in GEOMETRIES:
            raise ValueError(f"geometry must be one of {GEOMETRIES}, got {self.geometry!r}")
        b = self.identity.shape[0]
        expected = {"pose": (b, 3), "jaw": (b, 3), "eyes": (b, 6), "camera": (b, 3), "light": (b, 9, 3)}
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"FaceRig.{name} must be {shape}, got {tuple(getattr(self, name).shape)}")
        for name in ("expression", "action_units", "albedo"):
            if getattr(self, name).shape[0] != b:
                raise ValueError(f"FaceRig.{name} has batch {getattr(self, name).shape[0]}, identity has {b}")
        if self.geometry == "mesh468" and (self.identity.dim() != 3 or self.albedo.shape[1:] != self.identity.shape[1:]):
            raise ValueError("a mesh468 rig needs identity and albedo of shape (B, V, 3)")
        if self.crops is not None and len(self.crops) != b:
            raise ValueError(f"FaceRig has {b} faces but its FACE_CROP describes {len(self.crops)}")
        index = tuple(int(i) for i in self.face_index) or (-1,) * b
        if len(index) != b:
            raise ValueError(f"face_index has {len(index)} entries for {b} faces")
        object.__setattr__(self, "face_index", index)
        object.__setattr__(self, "crop_size", int(self.crop_size))

    def __len__(self) -> int:
        return self.identity.shape[0]

    @property
    def device(self) -> torch.device:
        return self.identity.device

    def replace(self, **changes) -> "FaceRig":
        """A new rig with some fields changed (the others are shared, never written)."""
        return dataclasses.replace(self, **changes)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in TENSOR_FIELDS}

    def to(self, device=None, dtype=None) -> "FaceRig":
        return self.replace(**{k: v.to(device=device, dtype=dtype) for k, v in self.tensors().items()})

    def select(self, index) -> "FaceRig":
        """The faces at `index` (int, slice or index tensor), keeping their crop records."""
        idx = torch.arange(len(self))[index].reshape(-1)
        crops = FaceCrops(tuple(self.crops.items[i] for i in idx.tolist())) if self.crops is not None else None
        return self.replace(**{k: v[idx.to(v.device)] for k, v in self.tensors().items()}, crops=crops,
                            face_index=tuple(self.face_index[i] for i in idx.tolist()))

    def expand_to(self, n: int) -> "FaceRig":
        """Repeat a single-face rig n times (e.g. to pair it with a batch)."""
        if len(self) == n:
            return self
        if len(self) != 1:
            raise ValueError(f"cannot pair a rig of {len(self)} faces with a batch of {n}")
        return self.select(torch.zeros(n, dtype=torch.long))


def concat_rigs(rigs: list[FaceRig]) -> FaceRig:
    """One rig holding the faces of several, in order (same geometry and crop size)."""
    first = rigs[0]
    for r in rigs[1:]:
        if (r.geometry, r.crop_size) != (first.geometry, first.crop_size):
            raise ValueError(f"cannot join a {r.geometry} rig at {r.crop_size} px with a {first.geometry} rig at "
                             f"{first.crop_size} px")
    crops = None
    if all(r.crops is not None for r in rigs):
        crops = FaceCrops(tuple(item for r in rigs for item in r.crops.items))
    tensors = {k: torch.cat([getattr(r, k) for r in rigs]) for k in TENSOR_FIELDS}
    return first.replace(**tensors, crops=crops, face_index=tuple(i for r in rigs for i in r.face_index))
