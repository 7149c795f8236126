#!/usr/bin/env python
"""Convert the official Diff-AE and DiffusionRig checkpoints into the safetensors the Likeness nodes load.

    python scripts/convert_diffae_diffusionrig.py \\
        --diffae checkpoints/ffhq256_autoenc/last.ckpt \\
        --diffusionrig model050000.pt \\
        --out ComfyUI/models/likeness/diffusion

Diff-AE's Lightning checkpoint keeps its EMA weights (`ema_model.*`, what Diff-AE samples with)
and drops the rest; DiffusionRig's plain state dict is kept whole. Neither file is unpickled
with code execution: the plain one goes through `torch.load(weights_only=True)`, the Lightning one
as well or, when it names Lightning classes, through a restricted unpickler that turns those into
inert records and refuses any other global. Every tensor is checked key for key and shape for
shape against the model definition. Outputs are written to a temporary file and renamed into
place, with provenance (source name, size, sha256; config; step) in the safetensors metadata.
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

from models.diffusion import files, official  # noqa: E402
from models.diffusion.file_config import config_fields  # noqa: E402
from models.diffusion.config import (DIFFUSIONRIG_256, FFHQ256_AUTOENC, DiffAEConfig,  # noqa: E402
                                     DiffusionRigConfig)
from models.loading import sha256_file, write_safetensors_atomic  # noqa: E402
from models.loading.conversions import run_conversions  # noqa: E402

FORMAT_VERSION = 1


def provenance(kind: str, config: str, source: Path, tensors: dict[str, Any], **facts: Any) -> dict[str, Any]:
    """The metadata stored with every converted file."""
    parameters = sum(t.numel() for k, t in tensors.items()
                     if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    return {"kind": kind, "config": config, "format_version": FORMAT_VERSION, "converter": files.CONVERTER,
            "source": {"name": source.name, "bytes": source.stat().st_size, "sha256": sha256_file(source)},
            "tensors": len(tensors), "parameters": parameters, **facts}


def convert_diffae(source: Path, out_dir: Path, config: DiffAEConfig = FFHQ256_AUTOENC) -> Path:
    tensors, info = official.read_diffae_checkpoint(source, config)
    meta = provenance(files.DIFFAE_KIND, config.name, source, tensors, config_fields=config_fields(config), **info)
    return write_safetensors_atomic(out_dir / files.DIFFAE_FILE, tensors, meta)


def convert_diffusionrig(source: Path, out_dir: Path, config: DiffusionRigConfig = DIFFUSIONRIG_256) -> Path:
    tensors, info = official.read_diffusionrig_checkpoint(source, config)
    meta = provenance(files.DIFFUSIONRIG_KIND, config.name, source, tensors, config_fields=config_fields(config),
                      **info)
    return write_safetensors_atomic(out_dir / files.diffusionrig_file(info["step"]), tensors, meta)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--diffae", type=Path, help="Diff-AE checkpoints/ffhq256_autoenc/last.ckpt")
    parser.add_argument("--diffusionrig", type=Path, help="DiffusionRig modelNNNNNN.pt")
    parser.add_argument("--out", type=Path, required=True, help="output folder, e.g. ComfyUI/models/likeness/diffusion")
    args = parser.parse_args(argv)
    if not (args.diffae or args.diffusionrig):
        parser.error("give --diffae and/or --diffusionrig")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_conversions([(args.diffae, lambda p: convert_diffae(p, args.out)),
                            (args.diffusionrig, lambda p: convert_diffusionrig(p, args.out))])


if __name__ == "__main__":
    sys.exit(main())
