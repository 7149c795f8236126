"""Where Face2Diffusion's 64-d expression codes come from: a FACE_RIG through the trained linear map,
or Deep3DFaceRecon's expression coefficients of the faces in photos."""
from __future__ import annotations

import torch

from .flame_assets import assets_for
from .identity_files import deep3d_regressor, largest_faces, rig_expression_map
from .identity_wires import FaceExpression
from .runtime import check_interrupt, progress

CHUNK = 8  # faces per Deep3DFaceRecon pass: a progress step, and a point where Cancel is honoured


def rig_expression(rig, map_file: str, strength: float) -> FaceExpression:
    """One code per rig face; FLAME rigs with action-unit edits need their FLAME assets for the edits."""
    edited_flame = rig.geometry == "flame" and bool((rig.action_units != 0).any())
    with torch.no_grad():
        codes = rig_expression_map(map_file).encode_rig(rig, assets_for(rig) if edited_flame else None)
    labels = tuple(f"rig face {i}" for i in range(len(rig)))
    return FaceExpression(codes.detach().float().cpu(), strength, f"face rig ({map_file})", labels)


def deep3d_expression(images: torch.Tensor, detections, model_file: str, strength: float) -> FaceExpression:
    """BFM expression coefficients (80..143 of Deep3DFaceRecon's 257) of the largest face per image."""
    faces = largest_faces(images, detections)
    missing = [i for i, f in enumerate(faces) if f is None]
    if missing:
        raise ValueError(f"Expression Guidance: no face found in image(s) {missing} of the batch")
    model = deep3d_regressor(model_file)
    on_progress, parts = progress(len(faces)), []
    for start in range(0, len(faces), CHUNK):
        check_interrupt()
        stop = min(start + CHUNK, len(faces))
        parts.append(model.expression(model.encode_faces(images[start:stop, ..., :3], faces[start:stop])))
        on_progress(stop, len(faces))
    codes = torch.cat(parts)
    labels = tuple(f"image {i}" for i in range(len(faces)))
    return FaceExpression(codes.float().cpu(), strength, f"Deep3DFaceRecon ({model_file})", labels)
