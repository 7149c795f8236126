"""Finding and caching the identity models, and picking the face of each image the identity nodes use."""
from __future__ import annotations

import functools
import os

import comfy.model_management
import comfy.model_patcher
import folder_paths
import torch

from ..models.faces.crops import FaceDetections
from ..models.faces.types import FaceDetection
from .detector import detect_faces

F2D_KEY = "likeness_face2diffusion"


def f2d_files(default: str) -> tuple[list[str], str]:
    """The files of models/likeness/face2diffusion for a combo, with `default` first (listed even if absent,
    so a graph saved before the download still validates and the error at run time says what is missing)."""
    names = sorted(folder_paths.get_filename_list(F2D_KEY))
    return [default] + [n for n in names if n != default], default


def file_origin(name: str) -> str:
    """How a file of the face2diffusion folder is made, for the error when it is missing."""
    from ..models.identity import DEEP3D_FILE
    from ..models.identity.rig_expression import RIG_MAP_FILE, TRAINER

    if name == RIG_MAP_FILE:
        return (f"The rig-to-expression map is made by {TRAINER} (it learns the map from fitted rigs to "
                f"Face2Diffusion's expression code); put the {RIG_MAP_FILE} it writes there.")
    if name == DEEP3D_FILE:
        return ("Convert Deep3DFaceRecon_pytorch's released epoch_20.pth with scripts/convert_deep3d.py and "
                "put the result there.")
    return ("Convert the official msid.pt and mapping.pt with scripts/convert_face2diffusion.py and put the "
            "results there.")


def f2d_path(name: str) -> str:
    path = folder_paths.get_full_path(F2D_KEY, name)
    if path is None:
        folder = os.path.join(folder_paths.models_dir, "likeness", "face2diffusion")
        raise ValueError(f"Face2Diffusion file '{name}' not found in {folder}. {file_origin(name)}")
    return path


def _loaders():
    from ..models.identity import load_deep3d_recon, load_mapping, load_msid_encoder
    from ..models.identity.rig_expression import load_rig_expression_map

    return {"msid": load_msid_encoder, "mapping": load_mapping, "rig_map": load_rig_expression_map,
            "deep3d": load_deep3d_recon}


@functools.lru_cache(maxsize=4)
def _cached(kind: str, path: str, mtime: float) -> comfy.model_patcher.ModelPatcher:
    """The loaded module in a ModelPatcher, so ComfyUI moves it to its device when used and offloads it
    like its own models when memory is needed."""
    return comfy.model_patcher.ModelPatcher(_loaders()[kind](path),
                                            load_device=comfy.model_management.get_torch_device(),
                                            offload_device=comfy.model_management.unet_offload_device())


def _model(kind: str, name: str):
    """The module, loaded onto ComfyUI's torch device for the node about to use it."""
    path = f2d_path(name)
    patcher = _cached(kind, path, os.path.getmtime(path))
    comfy.model_management.load_model_gpu(patcher)
    return patcher.model


def msid_encoder(name: str):
    return _model("msid", name)


def mapping_network(name: str):
    return _model("mapping", name)


def rig_expression_map(name: str):
    return _model("rig_map", name)


def deep3d_regressor(name: str):
    return _model("deep3d", name)


def largest_faces(images: torch.Tensor, detections: FaceDetections | None, min_score: float = 0.5,
                  max_detect_side: int = 1024) -> list[FaceDetection | None]:
    """The largest face of each image (None where there is none), detected here when not given."""
    if detections is None:
        detections, _ = detect_faces(images, min_score, max_detect_side)
    if len(detections) != len(images):
        raise ValueError(f"the face detections are for {len(detections)} images but {len(images)} images came in; "
                         f"connect detections made from the same images")
    return [max(faces, key=lambda f: f.area) if faces else None for faces in detections.faces]
