"""Throughput of the identity models: Face2Diffusion's MSID encoder + mapping network, and dlib's descriptor.

MSID + mapping run on aligned 112 x 112 crops at batch 1 and 16 (network only, float32 on the CPU;
also float16 on CUDA when a GPU is present), and end to end from a photo (alignment included) at
batch 1. Weights are random unless `--weights DIR` holds the converted files: speed does not depend
on them. dlib is timed per face on the shared test photos (shape predictor + 150 px chip +
descriptor). Wall-clock and process CPU time are printed (CPU time is steadier on a shared machine).

    .venv/bin/python scripts/bench_identity.py [--threads 2] [--weights DIR] [--faces DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_timing import timed  # noqa: E402
from models.identity import (MAPPING_FILE, MSID_FILE, DlibFaceEmbedder, Img2TextMapping, MSIDEncoder,  # noqa: E402
                             MissingDependencyError, load_mapping, load_msid_encoder)

PHOTO = "fr_obama_small_lowres.jpg"




def report(label: str, faces: int, wall: float, cpu: float) -> None:
    print(f"  {label:44s} {faces / wall:8.1f} faces/s  ({wall / faces * 1000:7.1f} ms wall, "
          f"{cpu / faces * 1000:7.1f} ms CPU per face)")


def build(weights: Path | None) -> tuple[MSIDEncoder, Img2TextMapping]:
    if weights is not None:
        return load_msid_encoder(weights / MSID_FILE), load_mapping(weights / MAPPING_FILE)
    torch.manual_seed(0)
    return MSIDEncoder().eval(), Img2TextMapping().eval()


def bench_f2d(encoder: MSIDEncoder, mapping: Img2TextMapping, device: torch.device, dtype: torch.dtype,
              repeats: int) -> None:
    encoder, mapping = encoder.to(device, dtype), mapping.to(device, dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(f"MSID + mapping on {device} ({str(dtype).removeprefix('torch.')}):")
    for batch in (1, 16):
        pixels = torch.rand(batch, 3, 112, 112, device=device, dtype=dtype) * 2 - 1

        @torch.no_grad()
        def step(pixels: torch.Tensor = pixels) -> None:
            mapping(encoder(pixels))

        wall, cpu = timed(step, repeats if batch == 1 else max(2, repeats // 4), sync)
        report(f"network only, batch {batch}", batch, wall, cpu)


def bench_end_to_end(encoder: MSIDEncoder, mapping: Img2TextMapping, faces_dir: Path, repeats: int) -> None:
    points = json.loads((ROOT / "tests" / "fixtures" / "points5.json").read_text())["points5"][PHOTO]
    image = torch.from_numpy(np.asarray(Image.open(faces_dir / PHOTO).convert("RGB"), np.float32) / 255.0)[None]
    encoder, mapping = encoder.to("cpu", torch.float32), mapping.to("cpu", torch.float32)

    @torch.no_grad()
    def step() -> None:
        mapping(encoder.encode_faces(image, [np.asarray(points)]))

    wall, cpu = timed(step, repeats)
    report(f"photo {tuple(image.shape[1:3])} -> tokens, batch 1", 1, wall, cpu)


def bench_dlib(faces_dir: Path) -> None:
    try:
        embedder = DlibFaceEmbedder()
    except (MissingDependencyError, ValueError) as exc:
        print(f"dlib: skipped ({exc})")
        return
    fixture = json.loads((ROOT / "tests" / "fixtures" / "points5.json").read_text())["points5"]
    photos = {name: np.asarray(Image.open(faces_dir / name).convert("RGB")) for name in sorted(fixture)}
    embedder.embed(photos[PHOTO], [fixture[PHOTO]])
    start, cpu_start = time.perf_counter(), time.process_time()
    for name, image in photos.items():
        embedder.embed(image, [fixture[name]])
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print("dlib descriptor (shape predictor + chip + ResNet), CPU:")
    report(f"{len(photos)} photos, one face each", len(photos), wall, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--weights", type=Path, help="folder with the converted f2d_*.safetensors")
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} CPU threads")

    encoder, mapping = build(args.weights)
    bench_f2d(encoder, mapping, torch.device("cpu"), torch.float32, args.repeats)
    if args.faces.is_dir():
        bench_end_to_end(encoder, mapping, args.faces, args.repeats)
    if torch.cuda.is_available():
        for dtype in (torch.float32, torch.float16):
            bench_f2d(encoder, mapping, torch.device("cuda"), dtype, args.repeats * 4)
    if args.faces.is_dir():
        bench_dlib(args.faces)


if __name__ == "__main__":
    main()
