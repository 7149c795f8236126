"""The prepared training set: one safetensors file per face plus `dataset.json`, and its torch Dataset.

Each sample holds the aligned crop (uint8, H x W x 3), the face foreground mask (uint8 0/1), the
frozen MSID feature of the face and the rig expression features. Everything the trainer reads was
computed once by `prepare`, so training needs neither the detector nor the MSID encoder.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ...loading import ModelFileError, read_checked_safetensors, write_safetensors_atomic

INDEX_FILE = "dataset.json"
SAMPLE_KIND = "f2d_train_sample"
FORMAT_VERSION = 1
WRITER = "scripts/train_face2diffusion.py prepare"


@dataclass
class DatasetIndex:
    resolution: int
    identity_dim: int
    rig_layout: str
    rig_features: int
    msid: dict  # name and sha256 of the MSID file the features come from
    samples: list[dict] = field(default_factory=list)  # {"file", "source", "face_index"}
    skipped: list[dict] = field(default_factory=list)  # {"source", "reason"}
    format_version: int = FORMAT_VERSION

    def write(self, folder: Path) -> Path:
        """Atomic, like the samples: a crash leaves the previous index or none."""
        path = Path(folder) / INDEX_FILE
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, folder: str | PathLike[str]) -> "DatasetIndex":
        path = Path(folder) / INDEX_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: prepare the dataset first ({WRITER})")
        data = json.loads(path.read_text())
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: dataset format {data.get('format_version')}, expected {FORMAT_VERSION}")
        return cls(**data)

    def sample_shapes(self) -> dict[str, tuple[int, ...]]:
        r = self.resolution
        return {"image": (r, r, 3), "mask": (r, r), "identity": (self.identity_dim,),
                "rig_expression": (self.rig_features,)}


def write_sample(path: Path, image: torch.Tensor, mask: torch.Tensor, identity: torch.Tensor,
                 rig_expression: torch.Tensor, **provenance) -> Path:
    """image (H, W, 3) in [0, 1], mask (H, W) in {0, 1}, identity (D,), rig_expression (K,)."""
    tensors = {"image": (image.clamp(0, 1) * 255).round().to(torch.uint8), "mask": (mask > 0.5).to(torch.uint8),
               "identity": identity.float(), "rig_expression": rig_expression.float()}
    return write_safetensors_atomic(path, tensors, {"kind": SAMPLE_KIND, "format_version": FORMAT_VERSION,
                                                    **provenance})


class FaceTrainingDataset(Dataset):
    """Items: pixels (3, H, W) in [-1, 1], mask (1, H, W), identity (D,), rig_expression (K,), index."""

    def __init__(self, folder: str | PathLike[str]):
        self.folder = Path(folder)
        self.index = DatasetIndex.read(self.folder)
        if not self.index.samples:
            raise ValueError(f"{self.folder} holds no samples (every photo was skipped: see {INDEX_FILE})")
        self.shapes = self.index.sample_shapes()

    def __len__(self) -> int:
        return len(self.index.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        path = self.folder / self.index.samples[i]["file"]
        tensors, _ = read_checked_safetensors(path, self.shapes, what="Face2Diffusion training sample",
                                              kind=SAMPLE_KIND, converter=WRITER)
        if tensors["image"].dtype != torch.uint8 or tensors["mask"].dtype != torch.uint8:
            raise ModelFileError(path, "image and mask must be uint8")
        return {"pixels": tensors["image"].permute(2, 0, 1).float() / 127.5 - 1.0,
                "mask": tensors["mask"][None].float(), "identity": tensors["identity"],
                "rig_expression": tensors["rig_expression"], "index": torch.tensor(i)}
