"""The embedded rig's mesh: the 468-point topology of the shipped face landmark model.

data/mesh468.json is built by scripts/build_mesh468_assets.py: triangles and semantic groups from the
landmark model's own mesh connectivity, the left-right vertex map, and a canonical neutral shape in
metres (x right, y up, z toward the camera, origin at the head centre, 63 mm between eye centres).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parent / "data" / "mesh468.json"


@dataclass(frozen=True)
class Mesh468:
    canonical: torch.Tensor  # (468, 3) float32
    triangles: torch.Tensor  # (F, 3) int64, counter-clockwise seen from the front
    mirror: torch.Tensor  # (468,) int64: the vertex at the mirrored position
    groups: dict[str, tuple[int, ...]]  # lips, left_eye, right_eye, left_eyebrow, right_eyebrow, face_oval, nose

    @property
    def num_vertices(self) -> int:
        return self.canonical.shape[0]

    def group(self, *names: str) -> torch.Tensor:
        return torch.tensor(sorted({i for n in names for i in self.groups[n]}), dtype=torch.long)


@functools.lru_cache(maxsize=1)
def load_mesh468() -> Mesh468:
    data = json.loads(DATA.read_text())
    return Mesh468(
        canonical=torch.tensor(data["canonical"], dtype=torch.float32),
        triangles=torch.tensor(data["triangles"], dtype=torch.long),
        mirror=torch.tensor(data["mirror"], dtype=torch.long),
        groups={k: tuple(v) for k, v in data["groups"].items()},
    )
