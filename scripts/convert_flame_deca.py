#!/usr/bin/env python
"""Convert the official FLAME / DECA files into the safetensors the Likeness nodes load.

The official files are registration-gated (https://flame.is.tue.mpg.de, DECA's README), so the
pack cannot ship or download them. Users convert them once:

    python scripts/convert_flame_deca.py \\
        --flame generic_model.pkl --deca deca_model.tar \\
        --texture FLAME_texture.npz --landmarks landmark_embedding.npy \\
        --uv head_template.obj --out ComfyUI/models/likeness/flame

`--emoca EMOCA_v2_lr_mse_20/detail/checkpoints/deca-epoch=...ckpt` adds EMOCA's expression
encoder (`emoca_expression.safetensors`); FaceFit then takes expression and jaw from EMOCA.

Any subset of the inputs may be given. Pickled inputs are read with restricted unpicklers (no
chumpy needed, no code in them is run); every input is checked against the published layout
and a mismatch stops with a message naming the file and what was expected. Each output is
written to a temporary file and renamed into place, with provenance (source name, size, sha256,
counts) as JSON in the safetensors metadata under `likeness`.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.flame import FLAME2020, files, flame_tensor_shapes, official, read_emoca_checkpoint  # noqa: E402
from models.flame.uv_layout import read_head_template_obj  # noqa: E402
from models.loading import read_checked_safetensors, sha256_file, write_safetensors_atomic  # noqa: E402
from models.loading.conversions import run_conversions  # noqa: E402

CONVERTER = "scripts/convert_flame_deca.py"
FLAME2020_SHAPES = flame_tensor_shapes(FLAME2020)
FORMAT_VERSION = 1


def provenance(kind: str, source: Path, **facts: Any) -> dict[str, Any]:
    """The metadata stored with every converted file."""
    return {"kind": kind, "format_version": FORMAT_VERSION, "converter": CONVERTER,
            "source": {"name": source.name, "bytes": source.stat().st_size, "sha256": sha256_file(source)}, **facts}


def convert_flame(source: Path, out_dir: Path) -> Path:
    tensors = official.read_flame_pickle(source)
    top = FLAME2020
    meta = provenance(files.FLAME_KIND, source, vertices=top.n_vertices, faces=top.n_faces, joints=top.n_joints,
                      shape_components=top.n_shape_basis, expression_components=top.n_exp_basis)
    return write_safetensors_atomic(out_dir / files.FLAME_FILE, tensors, meta)


def convert_deca(source: Path, out_dir: Path) -> Path:
    tensors, entries = official.read_deca_e_flame(source)
    parameters = sum(t.numel() for k, t in tensors.items() if not k.endswith(("running_mean", "running_var",
                                                                              "num_batches_tracked")))
    meta = provenance(files.DECA_E_FLAME_KIND, source, entry="E_flame", tensors=len(tensors), parameters=parameters,
                      entries_in_source=entries)
    return write_safetensors_atomic(out_dir / files.DECA_E_FLAME_FILE, tensors, meta)


def convert_emoca(source: Path, out_dir: Path) -> Path:
    """EMOCA's Lightning checkpoint -> its expression encoder only (`deca.E_expression.*`)."""
    tensors, info = read_emoca_checkpoint(source)
    meta = provenance(files.EMOCA_KIND, source, entry=info["prefix"], tensors=len(tensors),
                      **{k: v for k, v in info.items() if k != "prefix"})
    return write_safetensors_atomic(out_dir / files.EMOCA_FILE, tensors, meta)


def convert_texture(source: Path, out_dir: Path, n_tex: int) -> Path:
    tensors, info = official.read_texture_space(source, n_tex)
    meta = provenance(files.TEXTURE_KIND, source, **info)
    return write_safetensors_atomic(out_dir / files.TEXTURE_FILE, tensors, meta)


def convert_landmarks(source: Path, out_dir: Path) -> Path:
    tensors = official.read_landmark_embedding(source)
    meta = provenance(files.LANDMARKS_KIND, source, static=int(tensors["static_lmk_faces_idx"].shape[0]),
                      contour=int(tensors["dynamic_lmk_faces_idx"].shape[1]),
                      yaw_bins=int(tensors["dynamic_lmk_faces_idx"].shape[0]),
                      full=int(tensors["full_lmk_faces_idx"].shape[0]) if "full_lmk_faces_idx" in tensors else 0)
    return write_safetensors_atomic(out_dir / files.LANDMARKS_FILE, tensors, meta)


def convert_uv(source: Path, out_dir: Path) -> Path:
    """DECA's head_template.obj -> flame_uv.safetensors; its triangles are compared with the converted
    FLAME model's when `out_dir` holds one."""
    faces = None
    if (out_dir / files.FLAME_FILE).is_file():
        tensors, _ = read_checked_safetensors(out_dir / files.FLAME_FILE, FLAME2020_SHAPES, kind=files.FLAME_KIND,
                                              what="converted FLAME 2020 model", converter=CONVERTER)
        faces = tensors["faces"]
    layout = read_head_template_obj(source, faces)
    tensors = {"uv": layout["uv"], "uv_faces": layout["uv_faces"]}
    meta = provenance(files.UV_KIND, source, uv_coords=int(layout["uv"].shape[0]),
                      faces=int(layout["uv_faces"].shape[0]), checked_against_flame=faces is not None)
    return write_safetensors_atomic(out_dir / files.UV_FILE, tensors, meta)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flame", type=Path, help="FLAME 2020 generic_model.pkl")
    parser.add_argument("--deca", type=Path, help="DECA deca_model.tar")
    parser.add_argument("--emoca", type=Path, help="EMOCA Lightning checkpoint, "
                        "<model>/detail/checkpoints/deca-epoch=...ckpt (expression encoder)")
    parser.add_argument("--texture", type=Path, help="FLAME_texture.npz or FLAME_albedo_from_BFM.npz")
    parser.add_argument("--landmarks", type=Path, help="DECA landmark_embedding.npy")
    parser.add_argument("--uv", type=Path, help="DECA data/head_template.obj (FLAME's UV layout)")
    parser.add_argument("--n-tex", type=int, default=50, help="texture components to keep (DECA uses 50)")
    parser.add_argument("--out", type=Path, required=True, help="output folder, e.g. ComfyUI/models/likeness/flame")
    args = parser.parse_args(argv)
    if not any((args.flame, args.deca, args.emoca, args.texture, args.landmarks, args.uv)):
        parser.error("give at least one of --flame, --deca, --emoca, --texture, --landmarks, --uv")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    jobs = [(args.flame, lambda p: convert_flame(p, args.out)),
            (args.deca, lambda p: convert_deca(p, args.out)),
            (args.emoca, lambda p: convert_emoca(p, args.out)),
            (args.texture, lambda p: convert_texture(p, args.out, args.n_tex)),
            (args.landmarks, lambda p: convert_landmarks(p, args.out)),
            (args.uv, lambda p: convert_uv(p, args.out))]  # after --flame: checked against its faces
    return run_conversions(jobs)


if __name__ == "__main__":
    sys.exit(main())
