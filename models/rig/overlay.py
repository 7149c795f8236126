"""The fitted mesh drawn on the original photo (not just the aligned crop), to check a fit in context."""
from __future__ import annotations

import numpy as np
import torch

from ..faces.align import invert_affine
from ..render.preview import points_overlay, wireframe_overlay
from .geometry import RigMesh
from .rig import FaceRig

MODES = ("wireframe", "landmarks", "both")


def crop_to_source(points: torch.Tensor, affine: np.ndarray) -> torch.Tensor:
    """(V, 2) crop pixel positions -> source pixel positions through the crop's inverse similarity."""
    inv = torch.as_tensor(invert_affine(np.asarray(affine, dtype=np.float64)), dtype=points.dtype, device=points.device)
    return points @ inv[:, :2].T + inv[:, 2]


def overlay_on_photo(images: torch.Tensor, rig: FaceRig, mesh: RigMesh, mode: str = "wireframe",
                     colour=(0.2, 1.0, 0.4), alpha: float = 0.7) -> torch.Tensor:
    """Each face's mesh drawn on the frame it came from (faces without a crop record or a face are skipped)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if rig.crops is None:
        raise ValueError("this rig carries no crop record, so it cannot be placed on the photo")
    out = images[..., :3].clone()
    for i, item in enumerate(rig.crops.items):
        if not item.valid:
            continue
        if item.source_size != tuple(images.shape[1:3]) or item.source_index >= len(images):
            raise ValueError(f"face {i} was fitted on a {item.source_size[1]}x{item.source_size[0]} frame "
                             f"{item.source_index}, but the images are {len(images)} x {tuple(images.shape[1:3])}")
        # sizes in the crop record may differ from the rig's if the crops were resized: scale to the record
        screen = mesh.screen[i, :, :2] * (item.crop_size / rig.crop_size)
        points = crop_to_source(screen, item.affine)
        frame = out[item.source_index:item.source_index + 1]
        if mode in ("wireframe", "both"):
            frame = wireframe_overlay(frame, points[None], mesh.faces, colour=colour, alpha=alpha)
        if mode in ("landmarks", "both"):
            frame = points_overlay(frame, points[None], colour=(1.0, 0.3, 0.2), radius=1, alpha=1.0)
        out[item.source_index] = frame[0]
    return out
