"""Round-trip fidelity of align-crop + paste-back on the shared test photos.

For every single-face photo in shared/faces/index.json with 5 points (from tests/fixtures/points5.json,
or from mediapipe's face mesh when it is importable), crop at 256 and 512 px with FFHQ framing, paste
the crop back unedited and print the PSNR inside the blend mask (> 0.5): with preserve_unchanged
("keep"), with it after the crop went through 8-bit storage ("keep8"), and without it ("plain").

    .venv/bin/python scripts/bench_roundtrip.py                  # print the table
    .venv/bin/python scripts/bench_roundtrip.py --write-fixture  # (re)derive the fixture with mediapipe
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
sys.path.insert(0, str(ROOT))

from models.faces.align import ffhq_affine, warp_affine  # noqa: E402
from models.faces.paste import paste_back  # noqa: E402

FACES = ROOT.parent / "shared" / "faces"
FIXTURE = ROOT / "tests" / "fixtures" / "points5.json"
SIZES = (256, 512)


def load_rgb(name: str) -> np.ndarray:
    """A photo as (H, W, 3) float32 in [0, 1]; alpha dropped, grey repeated."""
    return np.asarray(Image.open(FACES / name).convert("RGB"), dtype=np.float32) / 255.0


def mediapipe_points5(rgb: np.ndarray) -> np.ndarray | None:
    """ArcFace-order 5 points from mediapipe's face mesh: eye-contour means, nose tip, mouth corners."""
    import mediapipe as mp

    mesh = mp.solutions.face_mesh
    h, w, _ = rgb.shape
    with mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as model:
        result = model.process((rgb * 255.0 + 0.5).astype(np.uint8))
    if not result.multi_face_landmarks:
        return None
    lm = np.array([(p.x * w, p.y * h) for p in result.multi_face_landmarks[0].landmark])

    def eye(edges) -> np.ndarray:
        return lm[sorted({i for e in edges for i in e})].mean(axis=0)

    # mediapipe's RIGHT_EYE is the subject's right eye, on the image's left.
    return np.stack([eye(mesh.FACEMESH_RIGHT_EYE), eye(mesh.FACEMESH_LEFT_EYE), lm[1], lm[61], lm[291]])


def single_face_photos() -> list[str]:
    index = json.loads((FACES / "index.json").read_text())
    return [e["file"] for e in index if e["faces"] == 1]


def write_fixture() -> None:
    points = {}
    for name in single_face_photos():
        p = mediapipe_points5(load_rgb(name))
        if p is not None:
            points[name] = np.round(p, 2).tolist()
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps({
        "about": "ArcFace-order 5 points (x, y pixels, pixel centres at +0.5) of the single-face photos "
                 "in shared/faces, from mediapipe 0.10.21 face mesh via scripts/bench_roundtrip.py "
                 "--write-fixture (eye-contour means, landmark 1, landmarks 61 and 291).",
        "points5": points,
    }, indent=1) + "\n")
    print(f"wrote {len(points)} faces to {FIXTURE}")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-fixture", action="store_true")
    parser.add_argument("--padding", type=float, default=0.0)
    args = parser.parse_args()
    if args.write_fixture:
        write_fixture()
        return
    fixture = json.loads(FIXTURE.read_text())["points5"] if FIXTURE.exists() else {}
    columns = "".join(f" {f'{s} {kind}':>9s}" for s in SIZES for kind in ("keep", "keep8", "plain"))
    print(f"{'photo':34s} {'eyes px':>7s}{columns} {'s/paste':>7s}")
    for name in single_face_photos():
        rgb = load_rgb(name)
        points = fixture.get(name)
        if points is None:
            try:
                points = mediapipe_points5(rgb)
            except ImportError:
                points = None
        if points is None:
            continue
        points = np.asarray(points)
        image = torch.from_numpy(rgb)
        row = f"{name:34s} {np.hypot(*(points[1] - points[0])):7.1f}"
        seconds = []
        for size in SIZES:
            a = ffhq_affine(points, size, args.padding)
            crop = warp_affine(image[None], a[None], size)[0]
            stored = torch.round(crop * 255.0) / 255.0
            for edited, keep in ((crop, True), (stored, True), (crop, False)):
                start = time.perf_counter()
                out, mask = paste_back(image, edited, a, preserve_unchanged=keep)
                seconds.append(time.perf_counter() - start)
                face = mask > 0.5
                row += f" {psnr(out[face], image[face]):9.2f}"
        print(row + f" {np.mean(seconds):7.3f}")


if __name__ == "__main__":
    main()
