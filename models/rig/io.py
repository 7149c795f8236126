"""Saving and loading FACE_RIG files: a small safetensors file artists can keep and reuse.

Tensors hold the rig's parameters; the metadata (JSON, under the "likeness" key) holds the
geometry, crop size, the action-unit order the columns follow, and the crop records (transform,
source size, the detection's box, score and points) so a loaded rig can still be pasted back
into a frame of the same size. Reading never unpickles anything.
"""
from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ..faces.crops import FaceCropInfo, FaceCrops
from ..faces.types import FaceDetection
from ..loading import ModelFileError, read_checked_safetensors, write_safetensors_atomic
from .action_units import ACTION_UNITS
from .rig import TENSOR_FIELDS, FaceRig

KIND = "face_rig"
FORMAT_VERSION = 1
WRITER = "the Likeness Save Face Rig node"


def _crop_to_json(item: FaceCropInfo) -> dict[str, Any]:
    face = item.detection
    return {
        "source_index": item.source_index, "source_size": list(item.source_size), "crop_size": item.crop_size,
        "affine": np.asarray(item.affine).tolist(), "face_index": item.face_index,
        "detection": None if face is None else {
            "box": list(face.box), "score": face.score, "points5": np.asarray(face.points5).tolist(),
            "landmarks": None if face.landmarks is None else np.asarray(face.landmarks).tolist()},
    }


def _crop_from_json(d: dict[str, Any]) -> FaceCropInfo:
    det = d.get("detection")
    face = None if det is None else FaceDetection(tuple(det["box"]), det["score"], det["points5"], det.get("landmarks"))
    return FaceCropInfo(d["source_index"], tuple(d["source_size"]), d["crop_size"], d["affine"], face,
                        d.get("face_index", -1))


def save_rig(rig: FaceRig, path: str | PathLike[str]) -> Path:
    meta = {
        "kind": KIND, "format_version": FORMAT_VERSION, "geometry": rig.geometry, "crop_size": rig.crop_size,
        "faces": len(rig), "face_index": list(rig.face_index), "action_units": [u.key for u in ACTION_UNITS],
        "albedo_shape": list(rig.albedo.shape[1:]),
        "crops": None if rig.crops is None else [_crop_to_json(c) for c in rig.crops.items],
    }
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in rig.tensors().items()}
    return write_safetensors_atomic(path, tensors, meta)


def load_rig(path: str | PathLike[str]) -> FaceRig:
    path = Path(path)

    def expected(meta: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        try:
            b = int(meta["faces"])
            units = list(meta["action_units"])
            geometry = meta["geometry"]
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(path, "not a face rig file: its metadata lacks faces / action_units / geometry") from None
        if units != [u.key for u in ACTION_UNITS]:
            raise ModelFileError(path, f"saved with action units {units}; this version of the pack has "
                                       f"{[u.key for u in ACTION_UNITS]}")
        k, v = len(units), 468
        flame_albedo = (b, *meta.get("albedo_shape", (50,)))  # texture coefficients or per-vertex colour
        if geometry == "flame" and flame_albedo[1:] not in ((50,), (5023, 3)):
            raise ModelFileError(path, f"unexpected FLAME albedo shape {list(flame_albedo[1:])}")
        per_geometry = {"mesh468": {"identity": (b, v, 3), "expression": (b, k), "albedo": (b, v, 3)},
                        "flame": {"identity": (b, 100), "expression": (b, 50), "albedo": flame_albedo}}
        if geometry not in per_geometry:
            raise ModelFileError(path, f"unknown rig geometry {geometry!r}")
        return {**per_geometry[geometry], "action_units": (b, k), "pose": (b, 3), "jaw": (b, 3), "eyes": (b, 6),
                "camera": (b, 3), "light": (b, 9, 3)}

    tensors, meta = read_checked_safetensors(path, expected, what="face rig", kind=KIND, converter=WRITER)
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFileError(path, f"written by a newer version of the pack (format {meta['format_version']})")
    crops = None if meta.get("crops") is None else FaceCrops(tuple(_crop_from_json(c) for c in meta["crops"]))
    return FaceRig(geometry=meta["geometry"], **{k: tensors[k] for k in TENSOR_FIELDS}, crop_size=meta["crop_size"],
                   crops=crops, face_index=tuple(meta.get("face_index") or ()))
