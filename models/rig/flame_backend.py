"""FaceFit, FLAME backend: DECA's coarse encoder (E_flame) turns each aligned crop into a FLAME rig.

1. DECA's 224 input crop is cut from the aligned crop around the face's landmark box, as DECA cuts
   it from a photo (flame_camera.py), with zeros outside the crop like DECA's skimage warp.
2. E_flame gives shape, texture, expression, pose (global + jaw), camera and SH light codes; the
   camera is rewritten for the aligned crop, exactly (flame_camera.deca_camera_to_rig). With EMOCA's
   expression encoder converted too, it runs on the same 224 crop and its outputs replace the
   expression (first 50) and the jaw pose (last 3, pose[3:6]), as EMOCA's ExpDECA does.
3. Albedo: with a FLAME texture space, DECA's texture code and DECA's light, as DiffusionRig renders
   them. Without one, per-vertex colours are sampled from the photo on the fitted mesh and the light
   is fitted with them (appearance.fit_appearance): DECA's light is calibrated against its texture
   space, so pairing it with photo colours (which already contain the shading) would shade twice.
4. Frames without a face get FLAME's mean face framed like the embedded backend's placeholder.

Action-unit edits reach FLAME through flame_units.py; `flame_world_vertices` applies them.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..faces.align import warp_affine
from ..faces.crops import FaceCropInfo, FaceCrops
from ..flame import (DECA_E_FLAME_FILE, EMOCA_FILE, FLAME_FILE, LANDMARKS_FILE, TEXTURE_FILE, UV_FILE,
                     DecaFlameEncoder, EmocaExpressionEncoder, FlameLandmarks, FlameModel, FlameTexture, FlameUV,
                     load_deca_encoder, load_emoca_encoder, load_flame_landmarks, load_flame_model, load_flame_texture,
                     load_flame_uv)
from ..flame.deca_encoder import CODE_SPLIT
from ..loading import ModelFileError
from ..render.interpolate import face_vertex_normals
from ..render.sh import SH_CONSTANTS
from .action_units import ACTION_UNITS
from .appearance import fit_appearance
from .fit_mesh import FitError
from .flame_camera import DECA_SIZE, deca_box_indices, deca_camera_to_rig, deca_crop_affine
from .flame_units import (EYEBALL_JOINTS, MEDIAPIPE_EMBEDDING_FILE, MediapipeEmbedding, apply_units,
                          load_mediapipe_embedding)
from .geometry import RigMesh, to_screen
from .rig import FaceRig

CONVERTER = "scripts/convert_flame_deca.py"
N_TEX = dict(CODE_SPLIT)["tex"]
# The embedded backend's placeholder framing (fit_mesh._placeholder): FFHQ-like, 0.42 of the crop
# per 63 mm between the eye centres, the eyes 0.12 NDC above the centre.
PLACEHOLDER_SCALE = 0.42 / 0.063
PLACEHOLDER_EYE_HEIGHT = 0.12


@dataclass(frozen=True, eq=False)
class FlameAssets:
    """The converted FLAME files; texture, landmarks, the mediapipe embedding, the UV layout
    (needed to render the texture space) and EMOCA's expression encoder are optional."""

    model: FlameModel
    encoder: DecaFlameEncoder
    texture: FlameTexture | None = None
    landmarks: FlameLandmarks | None = None
    mediapipe: MediapipeEmbedding | None = None
    uv: FlameUV | None = None
    emoca: EmocaExpressionEncoder | None = None


def load_flame_assets(folder: str | Path) -> FlameAssets:
    """Everything in a folder written by scripts/convert_flame_deca.py (plus, optionally, FLAME's
    mediapipe_landmark_embedding.npz copied next to it)."""
    folder = Path(folder)
    for name, official, flag in ((FLAME_FILE, "generic_model.pkl (FLAME 2020)", "--flame"),
                                 (DECA_E_FLAME_FILE, "deca_model.tar (DECA)", "--deca")):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder}: {name} is missing. {CONVERTER} writes it from the official "
                                    f"{official}: python {CONVERTER} {flag} <{official.split()[0]}> --out {folder}")
    model = load_flame_model(folder / FLAME_FILE)
    encoder = load_deca_encoder(folder / DECA_E_FLAME_FILE)
    texture = load_flame_texture(folder / TEXTURE_FILE) if (folder / TEXTURE_FILE).is_file() else None
    if texture is not None and texture.n_components != N_TEX:
        raise ModelFileError(folder / TEXTURE_FILE, f"keeps {texture.n_components} texture components but DECA's "
                                                   f"texture code has {N_TEX}: re-run {CONVERTER} --n-tex {N_TEX}")
    landmarks = load_flame_landmarks(folder / LANDMARKS_FILE) if (folder / LANDMARKS_FILE).is_file() else None
    embedding = folder / MEDIAPIPE_EMBEDDING_FILE
    mediapipe = load_mediapipe_embedding(embedding, model.topology.n_faces) if embedding.is_file() else None
    uv = load_flame_uv(folder / UV_FILE, model.topology) if (folder / UV_FILE).is_file() else None
    emoca = load_emoca_encoder(folder / EMOCA_FILE) if (folder / EMOCA_FILE).is_file() else None
    return FlameAssets(model, encoder, texture, landmarks, mediapipe, uv, emoca)


# ----------------------------------------------------------------------------------------------
# geometry

def flame_world_vertices(rig: FaceRig, assets: FlameAssets) -> torch.Tensor:
    """(B, 5023, 3) posed FLAME vertices in the rig's world frame, action-unit edits included."""
    if rig.geometry != "flame":
        raise ValueError(f"flame_world_vertices handles FLAME rigs; this rig is {rig.geometry!r}")
    expression, jaw = apply_units(rig.action_units, rig.expression, rig.jaw, assets)
    like = assets.model.v_template
    verts = assets.model(rig.identity.to(like), expression.to(like), torch.cat([rig.pose, jaw], 1).to(like),
                         eye_pose=rig.eyes.to(like))
    return verts.to(device=rig.device, dtype=rig.identity.dtype)


def flame_rig_mesh(rig: FaceRig, assets: FlameAssets) -> RigMesh:
    world = flame_world_vertices(rig, assets)
    faces = assets.model.faces.to(world.device)
    return RigMesh(world, to_screen(world, rig.camera, rig.crop_size), face_vertex_normals(world, faces), faces)


_MIRRORS: "weakref.WeakKeyDictionary[FlameModel, torch.Tensor]" = weakref.WeakKeyDictionary()


def flame_mirror(model: FlameModel) -> torch.Tensor:
    """(V,) the template vertex nearest each vertex's mirror image (FLAME's template is symmetric)."""
    if model not in _MIRRORS:
        template = model.v_template.detach().float().cpu()
        flipped = template * torch.tensor([-1.0, 1.0, 1.0])
        _MIRRORS[model] = torch.cat([torch.cdist(chunk, template).argmin(1) for chunk in flipped.split(1024)])
    return _MIRRORS[model]


# ----------------------------------------------------------------------------------------------
# fitting

def _landmarks_px(item: FaceCropInfo) -> np.ndarray:
    face = item.detection
    if face is None or face.landmarks is None:
        raise FitError("this face has no dense landmarks (run detection with landmarks)")
    lm = np.asarray(face.landmarks, dtype=np.float64)[:, :2]
    return lm @ item.affine[:, :2].T + item.affine[:, 2]


def _flat_light() -> torch.Tensor:
    """White light of shading 1 everywhere: only the constant band."""
    light = torch.zeros(9, 3, dtype=torch.float64)
    light[0] = 1.0 / SH_CONSTANTS[0]
    return light


def _placeholder_camera(model: FlameModel) -> torch.Tensor:
    """The mean face's camera, framed like the embedded backend's placeholder (eyeball joints as eyes)."""
    like = model.v_template
    _, joints = model.posed(like.new_zeros(1, model.config.n_shape), like.new_zeros(1, model.config.n_exp),
                            like.new_zeros(1, 6))
    eyes = joints[0, list(EYEBALL_JOINTS)].mean(0).double().cpu()
    s = PLACEHOLDER_SCALE
    return torch.tensor([s, -float(eyes[0]), -float(eyes[1]) + PLACEHOLDER_EYE_HEIGHT / s], dtype=torch.float64)


def _encode(image: torch.Tensor, item: FaceCropInfo, encoder: DecaFlameEncoder,
            emoca: EmocaExpressionEncoder | None = None) -> tuple[dict, np.ndarray]:
    """DECA's codes for one aligned crop (H, W, 3) and the affine of DECA's crop within it; with
    EMOCA, its expression (and jaw pose, when it predicts one) replace DECA's."""
    affine = deca_crop_affine(_landmarks_px(item)[list(deca_box_indices())])
    deca_in = warp_affine(image[None], affine[None], DECA_SIZE, border="zeros").permute(0, 3, 1, 2)
    weight = next(encoder.parameters())
    with torch.no_grad():
        code = encoder.encode(deca_in.to(weight))
        if emoca is not None:
            expression = emoca.encode(deca_in.to(next(emoca.parameters())))
    code = {k: v[0].double().cpu() for k, v in code.items()}
    if emoca is not None:
        code["exp"] = expression["exp"][0].double().cpu()
        if "jaw" in expression:
            code["pose"] = torch.cat([code["pose"][:3], expression["jaw"][0].double().cpu()])
    if not all(torch.isfinite(v).all() for v in code.values()) or code["cam"][0] <= 0:
        raise FitError(f"face in frame {item.source_index + 1}: DECA returned a degenerate fit")
    return code, affine


def fit_flame(crops: torch.Tensor, info: FaceCrops, assets: FlameAssets, *, refine_steps: int = 0,
              check_interrupt: Callable[[], None] | None = None) -> FaceRig:
    """A FLAME FaceRig for every crop of a Face Align Crop batch (placeholders get the mean face).

    refine_steps > 0 refines DECA's regression on the dense landmarks (flame_refine.py) before the
    per-vertex colours are sampled, so they land on the refined surface.
    """
    if crops.shape[0] != len(info):
        raise ValueError(f"{crops.shape[0]} crops but the FACE_CROP describes {len(info)}")
    model, textured = assets.model, assets.texture is not None
    n, size = len(info), crops.shape[1]
    images = crops[..., :3].float()
    rows: dict[str, list[torch.Tensor]] = {name: [] for name, _ in CODE_SPLIT}
    for b, item in enumerate(info.items):
        if check_interrupt is not None:
            check_interrupt()
        if item.valid:
            code, affine = _encode(images[b], item, assets.encoder, assets.emoca)
            code["cam"] = deca_camera_to_rig(code["cam"][None], affine[None], size)[0]
        else:
            code = {name: torch.zeros(width, dtype=torch.float64) for name, width in CODE_SPLIT}
            code["cam"], code["light"] = _placeholder_camera(model), _flat_light()
        for name, values in rows.items():
            values.append(code[name])
    f32 = dict(dtype=torch.float32, device=crops.device)
    shapes = {name: (width,) for name, width in CODE_SPLIT} | {"light": (9, 3)}
    out = {k: torch.stack(v).to(**f32) if v else torch.zeros(0, *shapes[k], **f32) for k, v in rows.items()}
    rig = FaceRig(
        geometry="flame", identity=out["shape"], expression=out["exp"],
        action_units=torch.zeros(n, len(ACTION_UNITS), **f32), pose=out["pose"][:, :3], jaw=out["pose"][:, 3:],
        eyes=torch.zeros(n, 6, **f32), camera=out["cam"], light=out["light"],
        albedo=out["tex"] if textured else torch.full((n, model.topology.n_vertices, 3), 0.5, **f32),
        crop_size=size, crops=info, face_index=tuple(item.face_index for item in info.items),
    )
    if refine_steps > 0:
        from .flame_refine import refine_flame_fit  # the refinement builds on this module

        rig = refine_flame_fit(rig, info, assets, steps=refine_steps, check_interrupt=check_interrupt)
    if textured or n == 0:
        return rig
    albedo, light = fit_appearance(images, flame_rig_mesh(rig, assets), flame_mirror(model).to(crops.device))
    return rig.replace(albedo=albedo, light=light)
