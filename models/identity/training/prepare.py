"""Photos -> a training set: detect, crop, mask, MSID feature and rig expression per face.

For each photo the pack's detector finds the largest face; it is cut as an FFHQ-aligned square at
the training resolution (what the nodes crop for Stable Diffusion), its face mesh gives the CGDR
foreground mask, the frozen MSID encoder reads its ArcFace crop from the full photo (as at
inference), and FaceFit's embedded backend gives the rig expression features the rig-to-expression
map learns from. Photos without a usable face are skipped and listed with the reason.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...faces.cropping import CropSettings, crop_faces
from ...faces.finder import find_faces
from ...loading import sha256_file
from ...rig.fit_mesh import FitError, MeshFitSettings, fit_mesh468
from ..msid import MSIDEncoder
from ..rig_expression import rig_expression_features, rig_expression_layout
from .dataset import DatasetIndex, write_sample
from .face_mask import crop_points, hull_mask

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass(frozen=True)
class PrepareConfig:
    resolution: int = 512  # Stable Diffusion 1.x trains at 512
    padding: float = 0.0  # extra context around the FFHQ framing (see Face Align Crop)
    min_score: float = 0.5
    max_detect_side: int = 1024
    mask_grow: float = 0.0  # widen the face-mesh hull by this fraction
    max_yaw: float = 45.0  # FaceFit refuses more turned faces


@dataclass(frozen=True)
class PreparedFace:
    crop: torch.Tensor  # (S, S, 3) in [0, 1]
    mask: torch.Tensor  # (S, S) in {0, 1}
    identity: torch.Tensor  # (D,)
    rig_expression: torch.Tensor  # (K,)
    rig_layout: str
    face_index: int


class SkippedPhoto(ValueError):
    """A photo that gives no training sample (no face, a face FaceFit refuses)."""


def load_photo(path: Path) -> torch.Tensor:
    """(1, H, W, 3) float in [0, 1], EXIF orientation applied, any mode converted to RGB."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        rgb = ImageOps.exif_transpose(image).convert("RGB")
    return torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0)[None]


def prepare_face(image: torch.Tensor, detector, msid: MSIDEncoder, config: PrepareConfig) -> PreparedFace:
    """The training sample of the largest face of one (1, H, W, 3) image; SkippedPhoto says why not."""
    detections, reasons = find_faces(detector, image, min_score=config.min_score,
                                     max_detect_side=config.max_detect_side)
    if not detections.faces[0]:
        raise SkippedPhoto(reasons.get(0, "no face found"))
    crops, info = crop_faces(image, detections, CropSettings(config.resolution, config.padding, "largest"))
    item = info[0]
    try:
        rig = fit_mesh468(crops, info, MeshFitSettings(max_yaw_degrees=config.max_yaw))
    except FitError as err:
        raise SkippedPhoto(str(err)) from None
    mask = hull_mask(crop_points(item.detection.landmarks, item.affine), config.resolution, config.mask_grow)
    identity = msid.encode_faces(image, [item.detection])[0]
    return PreparedFace(crops[0, ..., :3], mask, identity.float().cpu(), rig_expression_features(rig)[0].cpu(),
                        rig_expression_layout(rig), item.face_index)


def photo_files(folder: Path) -> list[Path]:
    photos = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
    if not photos:
        raise FileNotFoundError(f"no photos ({', '.join(PHOTO_SUFFIXES)}) in {folder}")
    return photos


def prepare_dataset(photos: Sequence[Path], out: Path, detector, msid: MSIDEncoder, msid_file: Path,
                    config: PrepareConfig = PrepareConfig(),
                    log: Callable[[str], None] = print) -> DatasetIndex:
    """Writes one sample file per usable photo and `dataset.json` into `out`; returns the index."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index = DatasetIndex(resolution=config.resolution, identity_dim=msid.config.feature_dim, rig_layout="",
                         rig_features=0, msid={"name": Path(msid_file).name, "sha256": sha256_file(msid_file)})
    for number, photo in enumerate(photos):
        try:
            face = prepare_face(load_photo(photo), detector, msid, config)
        except SkippedPhoto as err:
            index.skipped.append({"source": photo.name, "reason": str(err)})
            log(f"[{number + 1}/{len(photos)}] {photo.name}: skipped ({err})")
            continue
        if index.rig_layout and face.rig_layout != index.rig_layout:
            raise ValueError(f"{photo.name}: rig layout {face.rig_layout} differs from {index.rig_layout}")
        index.rig_layout, index.rig_features = face.rig_layout, int(face.rig_expression.numel())
        name = f"{len(index.samples):06d}.safetensors"
        write_sample(out / name, face.crop, face.mask, face.identity, face.rig_expression, source=photo.name,
                     face_index=face.face_index, rig_layout=face.rig_layout)
        index.samples.append({"file": name, "source": photo.name, "face_index": face.face_index})
        log(f"[{number + 1}/{len(photos)}] {photo.name}: face {face.face_index}, mask "
            f"{float(face.mask.mean()):.0%} of the crop")
    index.write(out)
    return index
