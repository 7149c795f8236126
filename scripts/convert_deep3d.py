#!/usr/bin/env python
"""Convert Deep3DFaceRecon's released regressor into the safetensors Expression Guidance loads.

Deep3DFaceRecon_pytorch's authors distribute their trained model as
`checkpoints/<name>/epoch_20.pth` (not shipped with the pack). Users who have it convert it once:

    python scripts/convert_deep3d.py --checkpoint epoch_20.pth \\
        --out ComfyUI/models/likeness/face2diffusion

The file is read with the pack's restricted loader (`torch.load(weights_only=True)`: tensors and
plain containers only, nothing in the file is run); only its `net_recon` state dict is kept (the
optimiser and scheduler states are dropped) and compared key by key and shape by shape with the
pack's ResNet-50 regressor, and a mismatch stops with the missing, unexpected and mis-shaped keys.
The output `deep3d_recon.safetensors` is written to a temporary file and renamed into place, with
provenance (source name, size, sha256, counts) and the kind tag as JSON metadata under `likeness`.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.identity import deep3d_files  # noqa: E402
from models.loading import sha256_file, write_safetensors_atomic  # noqa: E402
from models.loading.conversions import run_conversions  # noqa: E402

FORMAT_VERSION = 1
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def provenance(source: Path, tensors: dict[str, torch.Tensor], filled: list[str], ignored: list[str]
               ) -> dict[str, Any]:
    parameters = sum(t.numel() for k, t in tensors.items() if not k.endswith(BUFFER_SUFFIXES))
    return {"kind": deep3d_files.DEEP3D_KIND, "format_version": FORMAT_VERSION,
            "converter": deep3d_files.DEEP3D_CONVERTER,
            "source": {"name": source.name, "bytes": source.stat().st_size, "sha256": sha256_file(source)},
            "tensors": len(tensors), "parameters": parameters, "filled_in": filled, "dropped_entries": ignored}


def convert_deep3d(source: Path, out_dir: Path) -> Path:
    tensors, filled, ignored = deep3d_files.read_deep3d_checkpoint(source)
    return write_safetensors_atomic(Path(out_dir) / deep3d_files.DEEP3D_FILE, tensors,
                                    provenance(Path(source), tensors, filled, ignored))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="Deep3DFaceRecon_pytorch checkpoints/<name>/epoch_20.pth")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder, e.g. ComfyUI/models/likeness/face2diffusion")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_conversions([(args.checkpoint, lambda p: convert_deep3d(p, args.out))])


if __name__ == "__main__":
    sys.exit(main())
