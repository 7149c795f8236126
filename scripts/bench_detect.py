"""Detection rate, face counts and CPU speed of models.faces.FaceDetector on the shared test photos.

For the single-face photos that are frontal to three-quarter (index.json: faces == 1, not tagged
profile/extreme) a photo counts as detected when at least one face scores over the threshold and
the largest box is sensible (square-ish, centre inside the image, eyes and mouth inside the box).
For every photo it prints the found and labelled face counts. Timing: per image at batch 1 on the
photos as they are, and per batch of 8 photos resized to 512x512; wall-clock and process CPU time
(the latter is steadier on a shared machine; with N threads it can reach N x the wall time).

    .venv/bin/python scripts/bench_detect.py [--faces DIR] [--min-score 0.5] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.faces.detector import FaceDetector  # noqa: E402
from models.faces.mediapipe_files import find_mediapipe_models  # noqa: E402
from models.faces.types import FaceDetection  # noqa: E402

REQUIRED_RATE = 0.95
EXCLUDED_TAGS = {"profile", "extreme"}


def load_rgb(path: Path) -> torch.Tensor:
    """(1, H, W, 3) float in [0, 1]; alpha dropped, grey repeated."""
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0)[None]


def sensible(face: FaceDetection, width: int, height: int) -> bool:
    x0, y0, x1, y1 = face.box
    w, h = x1 - x0, y1 - y0
    cx, cy = face.center
    if not (min(w, h) >= 8 and 0.5 <= w / h <= 2.0 and 0 <= cx <= width and 0 <= cy <= height):
        return False
    margin = 0.25 * max(w, h)
    p = face.points5
    return bool(((p[:, 0] >= x0 - margin) & (p[:, 0] <= x1 + margin)
                 & (p[:, 1] >= y0 - margin) & (p[:, 1] <= y1 + margin)).all())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    parser.add_argument("--min-score", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    detector = FaceDetector(find_mediapipe_models([]))
    index = json.loads((args.faces / "index.json").read_text())
    photos = {entry["file"]: load_rgb(args.faces / entry["file"]) for entry in index}
    detector.detect(photos[index[0]["file"]], args.min_score)  # warm-up

    print(f"{'photo':34s} {'size':>9s} {'label':>5s} {'found':>5s} {'best':>5s} {'ms':>6s}  verdict")
    rows, times, cpu_times = [], [], []
    for entry in index:
        image = photos[entry["file"]]
        start, cpu_start = time.perf_counter(), time.process_time()
        faces = detector.detect(image, args.min_score)[0]
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        cpu_times.append(time.process_time() - cpu_start)
        height, width = image.shape[1:3]
        single = entry["faces"] == 1 and not EXCLUDED_TAGS & set(entry["tags"])
        largest = max(faces, key=lambda f: f.area, default=None)
        ok = largest is not None and sensible(largest, width, height)
        verdict = ("detected" if ok else "MISSED") if single else ""
        rows.append((entry, len(faces), single, ok))
        best = f"{max(f.score for f in faces):.2f}" if faces else "-"
        print(f"{entry['file'][:34]:34s} {width:4d}x{height:<4d} {entry['faces']:5d} {len(faces):5d} {best:>5s} "
              f"{elapsed * 1000:6.0f}  {verdict}")

    singles = [r for r in rows if r[2]]
    rate = sum(r[3] for r in singles) / max(1, len(singles))
    exact = sum(found == entry["faces"] for entry, found, _, _ in rows)
    labelled = sum(entry["faces"] for entry, *_ in rows)
    found_total = sum(found for _, found, _, _ in rows)
    false_on_empty = sum(found for entry, found, _, _ in rows if entry["faces"] == 0)
    print()
    print(f"face counts: {exact}/{len(rows)} photos exact, {found_total} found vs {labelled} labelled, "
          f"{false_on_empty} found on the {sum(e['faces'] == 0 for e, *_ in rows)} photos without faces")
    for label in sorted({e["faces"] for e, *_ in rows}):
        found = [f for e, f, _, _ in rows if e["faces"] == label]
        print(f"  labelled {label}: found {found}")

    batch = torch.cat([F.interpolate(photos[e["file"]].permute(0, 3, 1, 2), size=(512, 512), mode="bilinear",
                                     antialias=True).permute(0, 2, 3, 1) for e in index[:8]])
    detector.detect(batch, args.min_score)
    batch_times, batch_cpu = [], []
    for _ in range(3):
        start, cpu_start = time.perf_counter(), time.process_time()
        detector.detect(batch, args.min_score)
        batch_times.append(time.perf_counter() - start)
        batch_cpu.append(time.process_time() - cpu_start)
    batch_time, batch_cpu_time = statistics.median(batch_times), statistics.median(batch_cpu)
    print(f"timing ({args.threads} threads), wall / CPU: batch 1 median {statistics.median(times) * 1000:.0f} / "
          f"{statistics.median(cpu_times) * 1000:.0f} ms per image; batch of 8 at 512x512 "
          f"{batch_time * 1000:.0f} / {batch_cpu_time * 1000:.0f} ms per batch "
          f"({batch_time / 8 * 1000:.0f} / {batch_cpu_time / 8 * 1000:.0f} ms per image)")
    status = "PASS" if rate >= REQUIRED_RATE else "FAIL"
    print(f"summary: {status} detection rate {rate:.1%} ({sum(r[3] for r in singles)}/{len(singles)} single-face "
          f"frontal-to-three-quarter photos, required {REQUIRED_RATE:.0%}); counts exact on {exact}/{len(rows)}")


if __name__ == "__main__":
    main()
