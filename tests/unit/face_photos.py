"""Real test photos (shared/faces) and their 5 points (tests/fixtures/points5.json), for the align and
paste-back tests. The points come from scripts/bench_roundtrip.py --write-fixture, so the tests do
not depend on any detector."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.faces.select import normalize_image_channels

FACES = Path(__file__).resolve().parents[2].parent / "shared" / "faces"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "points5.json"

# A 1024 px grey photo (the worst plain round trip), an RGBA photo, a small face that the 256 crop
# enlarges, a 720 px face with glasses.
ROUND_TRIP_PHOTOS = (
    "lp_src_s2_bw.jpg",
    "fr_alex_smile.png",
    "skimg_astronaut.png",
    "lp_drv_d8_glasses_pout.jpg",
)


@lru_cache(maxsize=None)
def photo(name: str) -> torch.Tensor:
    """(H, W, 3) float32 in [0, 1]: RGBA and grey converted with normalize_image_channels."""
    if not (FACES / name).exists():
        pytest.skip(f"test photos not found at {FACES}")
    a = np.asarray(Image.open(FACES / name), dtype=np.float32) / 255.0
    a = a[..., None] if a.ndim == 2 else a
    return normalize_image_channels(torch.from_numpy(a)[None])[0].contiguous()


@lru_cache(maxsize=None)
def points5(name: str) -> np.ndarray:
    return np.asarray(json.loads(FIXTURE.read_text())["points5"][name], dtype=np.float64)


def psnr(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor | None = None) -> float:
    """PSNR of (H, W, C) images, over the pixels where `where` (H, W) is true if given."""
    err = ((a - b) ** 2).mean(-1)
    mse = float(err.mean() if where is None else (err * where).sum() / where.sum())
    return float("inf") if mse == 0.0 else 10.0 * float(np.log10(1.0 / mse))
