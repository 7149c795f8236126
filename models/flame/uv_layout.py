"""FLAME's UV layout, as DECA ships it in `data/head_template.obj`.

The OBJ holds FLAME's 5023 template vertices (`v`), the UV coordinates (`vt`, v pointing up) and the
9976 triangles with separate UV indices (`f a/ta b/tb c/tc`). The converter reads it once into
`flame_uv.safetensors` (`uv`, `uv_faces`); DECA and DiffusionRig read the texture space through it.
"""
from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import torch

from ..loading import ModelFileError
from .config import FLAME2020, FlameTopology

IGNORED_STATEMENTS = {"vn", "vp", "o", "g", "s", "mtllib", "usemtl", "l"}


@dataclass(frozen=True, eq=False)
class FlameUV:
    """UV coordinates (Vt, 2) float32 in [0, 1], v up, and the UV index of each face corner (F, 3) int64."""

    uv: torch.Tensor
    uv_faces: torch.Tensor


def _numbers(path: Path, number: int, fields: list[str], counts: tuple[int, ...]) -> list[float]:
    if len(fields) not in counts:
        raise ModelFileError(path, f"line {number}: expected {' or '.join(map(str, counts))} numbers, "
                                   f"got {len(fields)}")
    try:
        return [float(f) for f in fields]
    except ValueError:
        raise ModelFileError(path, f"line {number}: not a number in {' '.join(fields)!r}") from None


def _corner(path: Path, number: int, corner: str) -> tuple[int, int]:
    parts = corner.split("/")
    try:
        if len(parts) not in (2, 3) or not parts[1]:
            raise ValueError
        vertex, uv = int(parts[0]), int(parts[1])
    except ValueError:
        raise ModelFileError(path, f"line {number}: face corner {corner!r} is not 'v/vt' or 'v/vt/vn'") from None
    if vertex < 1 or uv < 1:
        raise ModelFileError(path, f"line {number}: face corner {corner!r} needs positive (1-based) indices")
    return vertex - 1, uv - 1


def read_head_template_obj(path: str | PathLike[str], faces: torch.Tensor | None = None,
                           topology: FlameTopology = FLAME2020) -> dict[str, torch.Tensor]:
    """`uv` (Vt, 2) float32, `uv_faces` (F, 3) int64 and `faces` (F, 3) int64 (0-based) from DECA's OBJ.

    The vertex and face counts must be FLAME 2020's; `faces`, when given (the FLAME model's), must
    equal the OBJ's triangles. Any malformed line stops with a ModelFileError naming file and line.
    """
    path = Path(path)
    n_vertices, uv, corners = 0, [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(path, f"cannot read the OBJ ({exc})") from exc
    for number, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        tag, rest = fields[0], fields[1:]
        if tag == "v":
            _numbers(path, number, rest, (3, 4, 6))
            n_vertices += 1
        elif tag == "vt":
            u, v, *_ = _numbers(path, number, rest, (2, 3))
            if not (0.0 <= u <= 1.0 and 0.0 <= v <= 1.0):
                raise ModelFileError(path, f"line {number}: UV ({u}, {v}) outside [0, 1]")
            uv.append((u, v))
        elif tag == "f":
            if len(rest) != 3:
                raise ModelFileError(path, f"line {number}: expected a triangle, got {len(rest)} corners")
            corners.append([_corner(path, number, c) for c in rest])
        elif tag not in IGNORED_STATEMENTS:
            raise ModelFileError(path, f"line {number}: unexpected OBJ statement {tag!r}")
    if n_vertices != topology.n_vertices or len(corners) != topology.n_faces:
        raise ModelFileError(path, f"has {n_vertices} vertices and {len(corners)} faces; FLAME 2020's "
                                   f"head_template.obj has {topology.n_vertices} and {topology.n_faces}")
    table = torch.tensor(corners, dtype=torch.int64)  # (F, 3, 2): vertex, uv
    obj_faces, uv_faces = table[..., 0].contiguous(), table[..., 1].contiguous()
    if int(obj_faces.max()) >= n_vertices or int(uv_faces.max()) >= len(uv):
        raise ModelFileError(path, f"a face refers past the {n_vertices} vertices or {len(uv)} UV coordinates")
    if faces is not None and not torch.equal(obj_faces, torch.as_tensor(faces).to(torch.int64).cpu()):
        raise ModelFileError(path, "its triangles differ from the FLAME model's faces: not FLAME 2020's "
                                   "head_template.obj (DECA's data/head_template.obj)")
    return {"uv": torch.tensor(uv, dtype=torch.float32).reshape(-1, 2), "uv_faces": uv_faces, "faces": obj_faces}
