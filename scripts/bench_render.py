"""Throughput of the built-in renderer (models/render): rasterization alone and the full physical
buffers, for face-rig-sized meshes at 256 and 512 px, batch 1 and 8, on CPU (and CUDA if present).

    .venv/bin/python scripts/bench_render.py [--threads N] [--repeats R] [--devices cpu,cuda]

Meshes: an icosphere of subdivision 5 (10,242 vertices / 20,480 faces, both hemispheres drawn), a
FLAME-sized dome-shaped grid (71 x 71 = 5,041 vertices / 9,800 faces, about FLAME's 5,023 / 9,976) and a
MediaPipe-sized grid (18 x 26 = 468 vertices / 850 faces). Each fills about 70% of the image width.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.render import (  # noqa: E402
    BufferSettings, RasterSettings, available_backends, face_vertex_normals, rasterize, render_buffers,
    sh_from_direction)
from models.render.backends import resolve_backend  # noqa: E402
from models.render.primitives import grid_mesh, icosphere  # noqa: E402
from bench_timing import timed  # noqa: E402


def meshes() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Unit-size meshes in a screen-like frame: x right, y down, z = depth (smaller = nearer)."""
    out = {}
    v, f = icosphere(5)
    out["icosphere5 (10242 v / 20480 f)"] = (v * 0.5, f)
    for rows, cols, name in ((71, 71, "dome grid (5041 v / 9800 f)"), (26, 18, "grid (468 v / 850 f)")):
        v, f = grid_mesh(rows, cols)
        x, y = v[:, 0] - 0.5, v[:, 1] - 0.5
        depth = -torch.sqrt((0.75 - x * x - y * y).clamp(min=0))
        out[name] = (torch.stack([x, y, depth], -1), f)
    return out




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--devices", default="cpu,cuda")
    ap.add_argument("--backends", default="builtin,auto",
                    help="rasterizers to time; 'auto' uses nvdiffrast / pytorch3d on CUDA when importable")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [d for d in args.devices.split(",") if d == "cpu" or (d == "cuda" and torch.cuda.is_available())]
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, devices {devices}, "
          f"importable rasterizers {available_backends()}")
    print("ms = median wall time per call (cpu ms = process CPU time); /s = images per second of wall time")
    print(f"{'mesh':32s} {'device':6s} {'raster':10s} {'size':>5s} {'batch':>5s} {'raster ms':>10s} {'cpu ms':>8s} {'raster/s':>9s} "
          f"{'buffers ms':>11s} {'cpu ms':>8s} {'buffers/s':>10s}")
    for name, (v, f) in meshes().items():
        for device, backend in ((d, b) for d in devices for b in args.backends.split(",")):
            resolved = resolve_backend(backend, torch.device(device))
            if backend == "auto" and resolved == "builtin" and "builtin" in args.backends.split(","):
                continue  # the same as the builtin rows
            settings = RasterSettings(backend=resolved)
            sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
            for size in (256, 512):
                for batch in (1, 8):
                    g = torch.Generator().manual_seed(0)
                    angle = torch.rand(batch, generator=g) * 0.6 - 0.3  # a different head turn per item
                    c, s = torch.cos(angle), torch.sin(angle)
                    rot = torch.zeros(batch, 3, 3)
                    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = c, s, 1, -s, c
                    world = v[None] @ rot.transpose(1, 2)
                    screen = (world * (0.7 * size) + torch.tensor([size / 2, size / 2, 0.0])).to(device)
                    normals = face_vertex_normals(world, f).to(device)
                    albedo = torch.full((batch, v.shape[0], 3), 0.6, device=device)
                    light = sh_from_direction(torch.tensor([0.3, -0.4, -1.0]), 1.0, ambient=0.3).to(device)
                    light = light.expand(batch, -1, -1)
                    faces = f.to(device)
                    t_r = timed(lambda: rasterize(screen, faces, size, size, settings), args.repeats, sync)
                    t_b = timed(lambda: render_buffers(screen, faces, normals, light, size, size,
                                                       albedo_vertex=albedo,
                                                       settings=BufferSettings(raster=settings)),
                                args.repeats, sync)
                    print(f"{name:32s} {device:6s} {resolved:10s} {size:5d} {batch:5d} {t_r[0] * 1e3:10.1f} {t_r[1] * 1e3:8.1f} "
                          f"{batch / t_r[0]:9.1f} {t_b[0] * 1e3:11.1f} {t_b[1] * 1e3:8.1f} {batch / t_b[0]:10.1f}",
                          flush=True)


if __name__ == "__main__":
    main()
