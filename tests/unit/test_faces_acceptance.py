"""Acceptance of the face foundation on the shared photo set, through the same functions the nodes call:
the detector finds >= 95% of the faces on single-face photos that are frontal to three-quarter, and an
unedited crop -> paste round trip reproduces every photo's face region at >= 40 dB."""
import json

import numpy as np
import pytest
import torch

from face_photos import FACES, photo
from models.faces.cropping import CropSettings, crop_faces
from models.faces.detector import FaceDetector
from models.faces.finder import find_faces
from models.faces.mediapipe_files import find_mediapipe_models
from models.faces.paste import paste_crops


def single_face_photos() -> list[str]:
    if not (FACES / "index.json").exists():
        return []
    entries = json.loads((FACES / "index.json").read_text())
    return [e["file"] for e in entries if e["faces"] == 1 and {"frontal", "three-quarter"} & set(e["tags"])]


@pytest.fixture(scope="module")
def detector():
    return FaceDetector(find_mediapipe_models([]))


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    mse = ((a - b) ** 2).mean(-1)[mask].mean().item()
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def test_detection_rate_and_round_trip(detector):
    names = single_face_photos()
    if not names:
        pytest.skip(f"the shared photo set is not at {FACES}")
    assert len(names) >= 30, f"only {len(names)} single-face photos listed"
    found, worst = 0, float("inf")
    for name in names:
        image = photo(name)[None]
        faces, _ = find_faces(detector, image)
        if not faces.faces[0]:
            continue
        found += 1
        for size in (256, 512):
            crops, info = crop_faces(image, faces, CropSettings(size=size))
            out, mask = paste_crops(image, crops, info)
            inside = mask[0] > 0.5
            assert inside.sum() > 1000, f"{name}: the paste region is implausibly small"
            worst = min(worst, psnr(out[0], image[0], inside))
            assert torch.equal(out[0][~(mask[0] > 0)], image[0][~(mask[0] > 0)]), name
    rate = found / len(names)
    print(f"detection {found}/{len(names)} = {rate:.1%}; worst round trip {worst:.1f} dB")
    assert rate >= 0.95
    assert worst >= 40.0
