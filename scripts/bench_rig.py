"""Quality and speed of the embedded face rig on the shared photo set; prints its figures.

  fit        share of single-face photos (frontal to three-quarter) where detection + FaceFit succeed
  model err  mean distance between the landmarks and the rig WITHOUT the per-person identity residual
             (canonical face + fitted pose + fitted action units), over the inter-ocular distance:
             how much of each face the pose and expression model explains (the full rig reproduces
             the landmarks exactly by construction)
  mirror     |yaw(mirrored photo) + yaw| and |roll(mirrored) + roll| in degrees (0 = perfectly antisymmetric)
  psnr       the fitted rig re-rendered with its own albedo and light vs the photo, inside the face mask
  identity   RMS distance between identity shapes (mm) of two photos of one person vs of different people
  speed      fits/s (FaceFit only, on crops) and renders/s (RenderBuffers) at batch 1 and 8, 256 and 512 px

Usage: .venv/bin/python scripts/bench_rig.py [--faces ../shared/faces]
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

from models.faces.cropping import CropSettings, crop_faces  # noqa: E402
from models.faces.detector import FaceDetector  # noqa: E402
from models.faces.finder import find_faces  # noqa: E402
from models.faces.mediapipe_files import find_mediapipe_models  # noqa: E402
from models.faces.select import normalize_image_channels  # noqa: E402
from models.rig.action_units import action_unit_basis  # noqa: E402
from models.rig.edit import rig_yaw_pitch_roll  # noqa: E402
from models.rig.fit_mesh import fit_mesh468, landmarks_in_crop  # noqa: E402
from models.rig.geometry import to_screen  # noqa: E402
from models.rig.procrustes import similarity_fit  # noqa: E402
from models.rig.render import render_rig  # noqa: E402
from models.rig.rotation import axis_angle_to_matrix  # noqa: E402
from models.rig.topology import load_mesh468  # noqa: E402

SAME_PERSON = (("fr_obama_small_lowres.jpg", "fr_obama_partial.jpg"),
               ("lp_drv_d30_hand_on_cheek.jpg", "lp_drv_d30_hand_on_cheek.jpg:mirror"))


def load(faces_dir: Path, name: str) -> torch.Tensor:
    mirror = name.endswith(":mirror")
    a = np.asarray(Image.open(faces_dir / name.removesuffix(":mirror")), dtype=np.float32) / 255.0
    a = a[..., None] if a.ndim == 2 else a
    img = normalize_image_channels(torch.from_numpy(a)[None])
    return img.flip(2) if mirror else img


def fit(detector, image: torch.Tensor, size: int = 256):
    faces, _ = find_faces(detector, image)
    if not faces.faces[0]:
        return None
    crops, info = crop_faces(image, faces, CropSettings(size=size))
    return crops, info, fit_mesh468(crops, info)


def model_error(rig, info) -> float:
    mesh = load_mesh468()
    local = mesh.canonical + torch.einsum("k,kvc->vc", rig.expression[0], action_unit_basis(mesh))
    world = local @ axis_angle_to_matrix(rig.pose[0]).T
    screen = to_screen(world[None], rig.camera[:1], rig.crop_size)[0, :, :2].double()
    target = landmarks_in_crop(info.items[0])
    half = rig.crop_size / 2
    target_px = torch.stack([(target[:, 0] + 1) * half, (1 - target[:, 1]) * half], -1)
    iod = (target_px[[33, 133]].mean(0) - target_px[[263, 362]].mean(0)).norm()
    return float((screen - target_px).norm(dim=-1).mean() / iod)


def identity_distance_mm(a, b) -> float:
    ia, ib = a.identity[0].double(), b.identity[0].double()
    s, r, t = similarity_fit(ib, ia[None])
    aligned = s[0] * ib @ r[0].T + t[0]
    return float(((aligned - ia) ** 2).sum(-1).mean().sqrt() * 1000)


def timed(fn, repeat: int = 3) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    detector = FaceDetector(find_mediapipe_models([]))
    index = json.loads((args.faces / "index.json").read_text())
    names = [e["file"] for e in index if e["faces"] == 1 and {"frontal", "three-quarter"} & set(e["tags"])]

    rows, fits = [], {}
    print(f"{'photo':34s} {'fit':>4s} {'model err':>9s} {'|yaw+yaw_m|':>11s} {'|roll+roll_m|':>13s} {'psnr dB':>8s}")
    for name in names:
        image = load(args.faces, name)
        got, got_m = fit(detector, image), fit(detector, image.flip(2))
        if got is None:
            print(f"{name:34s} {'no':>4s}")
            rows.append(None)
            continue
        crops, info, rig = got
        fits[name] = rig
        err = model_error(rig, info)
        out = render_rig(rig)
        mask = out.buffers.mask[0] > 0
        psnr = float(10 * torch.log10(1 / ((out.buffers.rendered[0] - crops[0]) ** 2).mean(-1)[mask].mean()))
        ypr = rig_yaw_pitch_roll(rig)[0]
        yaw_m = roll_m = float("nan")
        if got_m is not None:
            ypr_m = rig_yaw_pitch_roll(got_m[2])[0]
            yaw_m, roll_m = abs(float(ypr[0] + ypr_m[0])), abs(float(ypr[2] + ypr_m[2]))
        rows.append((err, yaw_m, roll_m, psnr, float(ypr[0])))
        print(f"{name:34s} {'yes':>4s} {err:9.3f} {yaw_m:11.2f} {roll_m:13.2f} {psnr:8.1f}   (yaw {float(ypr[0]):+.1f})")

    ok = [r for r in rows if r is not None]
    arr = np.array([r[:4] for r in ok])
    print(f"\nfit success {len(ok)}/{len(rows)} = {len(ok) / max(1, len(rows)):.1%}")
    print(f"model error / inter-ocular: mean {arr[:, 0].mean():.3f}, median {np.median(arr[:, 0]):.3f}")
    print(f"mirror |yaw + yaw_m|: mean {np.nanmean(arr[:, 1]):.2f} deg, max {np.nanmax(arr[:, 1]):.2f} deg; "
          f"|roll + roll_m|: mean {np.nanmean(arr[:, 2]):.2f} deg, max {np.nanmax(arr[:, 2]):.2f} deg "
          f"(|yaw| up to {max(abs(r[4]) for r in ok):.1f} deg)")
    print(f"re-render PSNR in the face mask: mean {arr[:, 3].mean():.1f} dB, min {arr[:, 3].min():.1f} dB")

    same = []
    for a, b in SAME_PERSON:
        ra, rb = fits.get(a) or fit(detector, load(args.faces, a))[2], fit(detector, load(args.faces, b))[2]
        same.append(identity_distance_mm(ra, rb))
    keys = sorted(fits)
    different = [identity_distance_mm(fits[a], fits[b]) for i, a in enumerate(keys) for b in keys[i + 1:]
                 if a.split("_")[1] != b.split("_")[1]]
    print(f"identity RMS distance: same person {', '.join(f'{d:.2f}' for d in same)} mm; different people "
          f"min {min(different):.2f}, median {np.median(different):.2f} mm over {len(different)} pairs")

    image = load(args.faces, "skimg_astronaut.png")
    for size in (256, 512):
        faces, _ = find_faces(detector, image)
        crops, info = crop_faces(image, faces, CropSettings(size=size))
        for batch in (1, 8):
            c = crops.expand(batch, -1, -1, -1).contiguous()
            from models.faces.crops import FaceCrops
            inf = FaceCrops(info.items * batch)
            t_fit = timed(lambda: fit_mesh468(c, inf))
            rig = fit_mesh468(c, inf)
            t_render = timed(lambda: render_rig(rig))
            print(f"CPU {size}px batch {batch}: {batch / t_fit:6.1f} fits/s, {batch / t_render:6.1f} renders/s")


if __name__ == "__main__":
    main()
