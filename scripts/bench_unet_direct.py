"""Per-step cost of the full-size backbones called directly (no sampler): one denoiser forward at
batch 1, 256 px, random weights, for Diff-AE ffhq256_autoenc and DiffusionRig, on CPU (and CUDA
if present). A 20-step DDIM sample costs about 20 of these; an encode costs one semantic-encoder
or ResNet-18 call, reported separately.

    .venv/bin/python scripts/bench_unet_direct.py [--threads N] [--repeats R] [--devices cpu,cuda]
                                                  [--dtype float32|float16|bfloat16]

Peak memory: on CUDA the allocator's peak during the forward passes; on CPU the peak resident
set of a fresh process that builds and runs only that model (so the two models do not mix).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.diffusion import DiffAEAutoencoder, DiffusionRig  # noqa: E402
from bench_timing import timed  # noqa: E402

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}




def measure(name: str, device: str, dtype: torch.dtype, repeats: int) -> dict:
    torch.manual_seed(0)
    model = (DiffAEAutoencoder() if name == "diffae" else DiffusionRig()).to(device=device, dtype=dtype).eval()
    x_t = torch.randn(1, 3, 256, 256, device=device, dtype=dtype)
    t = torch.tensor([500], device=device)
    with torch.no_grad():
        cond = model.encode(x_t)
        if name == "diffae":
            step = lambda: model(x_t, t, cond)  # noqa: E731
        else:
            physic_cond = torch.rand(1, 9, 256, 256, device=device, dtype=dtype)
            step = lambda: model(x_t, t, physic_cond, cond)  # noqa: E731
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        step_wall, step_cpu = timed(step, repeats, sync)
        encode_wall, _ = timed(lambda: model.encode(x_t), max(1, repeats // 2), sync)
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    params = sum(p.numel() for p in model.parameters())
    return {"model": name, "device": device, "dtype": str(dtype).removeprefix("torch."), "params": params,
            "step_ms": step_wall * 1e3, "step_cpu_ms": step_cpu * 1e3, "encode_ms": encode_wall * 1e3,
            "peak_mib": peak / 2 ** 20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--devices", default="cpu,cuda")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # "model:device": measure in this process, print JSON
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        name, device = args.one.split(":")
        print(json.dumps(measure(name, device, DTYPES[args.dtype], args.repeats)))
        return

    devices = [d for d in args.devices.split(",") if d == "cpu" or (d == "cuda" and torch.cuda.is_available())]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, dtype {args.dtype}, batch 1, 256 px")
    print(f"{'model':8} {'device':6} {'params':>12} {'step ms':>9} {'step cpu ms':>12} {'encode ms':>10} {'peak MiB':>9}")
    for device in devices:
        for name in ("diffae", "rig"):
            command = [sys.executable, __file__, "--one", f"{name}:{device}", "--repeats", str(args.repeats),
                       "--threads", str(torch.get_num_threads()), "--dtype", args.dtype]
            row = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            print(f"{row['model']:8} {row['device']:6} {row['params']:>12,} {row['step_ms']:>9.1f} "
                  f"{row['step_cpu_ms']:>12.1f} {row['encode_ms']:>10.1f} {row['peak_mib']:>9.0f}")


if __name__ == "__main__":
    main()
