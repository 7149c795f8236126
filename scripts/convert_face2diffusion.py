#!/usr/bin/env python
"""Convert Face2Diffusion's released checkpoints into the safetensors the Likeness nodes load.

The official `checkpoints/msid.pt` (identity encoder) and `checkpoints/mapping.pt` (mapping
network) are distributed by the authors (mapooon/Face2Diffusion, README) and are not shipped with
the pack. Users convert them once:

    python scripts/convert_face2diffusion.py --msid msid.pt --mapping mapping.pt \\
        --out ComfyUI/models/likeness/face2diffusion

Either input may be given alone. Both are read with `torch.load(weights_only=True)` (nothing in
the file is run) and compared key by key and shape by shape with the pack's modules; a mismatch
stops with a list of the missing, unexpected and mis-shaped keys. Absent BatchNorm
`num_batches_tracked` counters are allowed and written as 0. Each output is written to a temporary
file and renamed into place, with provenance (source name, size, sha256, counts) as JSON in the
safetensors metadata under `likeness`.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.identity import files, official  # noqa: E402
from models.loading import sha256_file, write_safetensors_atomic  # noqa: E402
from models.loading.conversions import run_conversions  # noqa: E402

FORMAT_VERSION = 1
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def provenance(kind: str, source: Path, tensors: dict[str, torch.Tensor], filled: list[str]) -> dict[str, Any]:
    """The metadata stored with every converted file."""
    parameters = sum(t.numel() for k, t in tensors.items() if not k.endswith(BUFFER_SUFFIXES))
    return {"kind": kind, "format_version": FORMAT_VERSION, "converter": files.CONVERTER,
            "source": {"name": source.name, "bytes": source.stat().st_size, "sha256": sha256_file(source)},
            "tensors": len(tensors), "parameters": parameters, "filled_in": filled}


def convert(source: Path, out: Path, read: Callable[[Path], tuple[dict[str, torch.Tensor], list[str]]],
            kind: str) -> Path:
    tensors, filled = read(source)
    return write_safetensors_atomic(out, tensors, provenance(kind, source, tensors, filled))


def convert_msid(source: Path, out_dir: Path) -> Path:
    return convert(source, out_dir / files.MSID_FILE, official.read_f2d_msid, files.MSID_KIND)


def convert_mapping(source: Path, out_dir: Path) -> Path:
    return convert(source, out_dir / files.MAPPING_FILE, official.read_f2d_mapping, files.MAPPING_KIND)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--msid", type=Path, help="Face2Diffusion checkpoints/msid.pt")
    parser.add_argument("--mapping", type=Path, help="Face2Diffusion checkpoints/mapping.pt")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder, e.g. ComfyUI/models/likeness/face2diffusion")
    args = parser.parse_args(argv)
    if not (args.msid or args.mapping):
        parser.error("give at least one of --msid, --mapping")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_conversions([(args.msid, lambda p: convert_msid(p, args.out)),
                            (args.mapping, lambda p: convert_mapping(p, args.out))])


if __name__ == "__main__":
    sys.exit(main())
