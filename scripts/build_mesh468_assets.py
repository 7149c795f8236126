"""Build models/rig/data/mesh468.json: the embedded face rig's topology and canonical shape.

The embedded rig uses the 468-point topology of the face landmark model shipped in mediapipe
0.10.21 (Apache-2.0). This script is run by developers, not users; it needs mediapipe's Python
package (installed in the dev environment) for two things only:
  * triangles: the 3-cliques of mediapipe's face-mesh tesselation edge list, minus the few spurious
    cliques that are not faces, wound counter-clockwise as seen from the front;
  * semantic vertex groups (lips, eyes, brows, face oval, nose) from its connection lists.
The left-right vertex correspondence is recovered from the landmark model itself (mirrored photos).
The canonical (neutral, mean) shape is ours: the generalised-Procrustes mean of the landmarks the
pack's own detector finds on the closed-mouth frontal photos of the shared face set, made
left-right symmetric and put in metric units (63 mm between the eye centres), origin at the head
centre (100 mm behind the nose tip), x right, y up, z toward the camera.

Usage: python scripts/build_mesh468_assets.py [--faces ../shared/faces]
"""
from __future__ import annotations

import argparse
import collections
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.faces.detector import FaceDetector  # noqa: E402
from models.faces.mediapipe_files import find_mediapipe_models  # noqa: E402

PHOTOS = ("lp_src_s2_bw.jpg", "dae_sandy_aligned.png", "a2f_freeman_elder.jpg", "a2f_pose1_threequarter.png",
          "if_blur_lowlight.jpg", "iid_kaifu_glasses.png", "fr_kit_moody.jpg", "ddfa2_jianzhu_glasses.jpg",
          "skimg_astronaut.png", "dae_interp_a_older.png", "lp_drv_d8_glasses_pout.jpg", "fr_alex_smile.png")
GROUPS = ("LIPS", "LEFT_EYE", "RIGHT_EYE", "LEFT_EYEBROW", "RIGHT_EYEBROW", "FACE_OVAL", "NOSE")
EYE_DISTANCE_M = 0.063
HEAD_CENTRE_BEHIND_NOSE_M = 0.100


def tesselation_triangles(edges: set[tuple[int, int]], verts: np.ndarray) -> np.ndarray:
    adj = collections.defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    tris = {tuple(sorted((a, b, c))) for a, b in edges for c in adj[a] & adj[b]}
    # a clique whose three edges are each shared by two other triangles is a hole, not a face
    use = collections.Counter(e for t in tris for e in itertools.combinations(t, 2))
    tris = [t for t in tris if not all(use[e] >= 3 for e in itertools.combinations(t, 2))]
    out = []
    for a, b, c in sorted(tris):
        p = verts[[a, b, c], :2]
        cross = (p[1, 0] - p[0, 0]) * (p[2, 1] - p[0, 1]) - (p[1, 1] - p[0, 1]) * (p[2, 0] - p[0, 0])
        out.append((a, b, c) if cross > 0 else (a, c, b))  # CCW with y up, seen from +z
    return np.array(out, dtype=np.int64)


def procrustes(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """src aligned onto dst by the least-squares similarity transform."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, s, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    r = u @ np.diag([1, 1, d]) @ vt
    scale = (s * [1, 1, d]).sum() / (a ** 2).sum()
    return scale * a @ r.T + md


def mirror_map(pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Left-right vertex correspondence: landmarks found on a mirrored photo, flipped back, are the
    original landmarks permuted. Summing the distance matrices over many photos and solving the
    assignment recovers the permutation (an involution with the midline points fixed)."""
    from scipy.optimize import linear_sum_assignment

    cost = np.zeros((len(pairs[0][0]),) * 2)
    for lm, lm_mirrored in pairs:
        scale = np.linalg.norm(lm[33, :2] - lm[263, :2])
        cost += ((lm[:, None, :2] - lm_mirrored[None, :, :2]) ** 2).sum(-1) / scale ** 2
    rows, cols = linear_sum_assignment(cost)
    mirror = np.empty(len(rows), dtype=np.int64)
    mirror[cols] = rows
    assert (mirror[mirror] == np.arange(len(mirror))).all(), "mirror map is not an involution"
    return mirror


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "faces")
    args = ap.parse_args()
    from mediapipe.python.solutions import face_mesh_connections as fmc

    detector = FaceDetector(find_mediapipe_models([]))
    def landmarks(img: torch.Tensor) -> np.ndarray:
        face = max(detector.detect(img[None], landmarks=True)[0], key=lambda f: f.area)
        return np.array(face.landmarks, dtype=np.float64)

    shapes, pairs = [], []
    for name in PHOTOS:
        img = torch.from_numpy(np.asarray(Image.open(args.faces / name).convert("RGB"), dtype=np.float32) / 255.0)
        lm, lm_m = landmarks(img), landmarks(img.flip(1))
        lm_m[:, 0] = img.shape[1] - lm_m[:, 0]
        pairs.append((lm, lm_m))
        shapes.append(lm * np.array([1.0, -1.0, -1.0]))  # image (x right, y down, z away) -> y up, z toward camera
    mean = shapes[0]
    for _ in range(10):
        mean = np.mean([procrustes(s, mean) for s in shapes], axis=0)
    mean -= mean.mean(0)
    mirror = mirror_map(pairs)
    mean = 0.5 * (mean + mean[mirror] * np.array([-1.0, 1.0, 1.0]))

    groups = {g.lower(): sorted({i for e in getattr(fmc, f"FACEMESH_{g}") for i in e}) for g in GROUPS}
    eye_r, eye_l = mean[groups["right_eye"]].mean(0), mean[groups["left_eye"]].mean(0)
    mean *= EYE_DISTANCE_M / np.linalg.norm(eye_l - eye_r)
    nose_tip = mean[1]
    mean -= np.array([0.0, mean[:, 1].mean(), nose_tip[2] - HEAD_CENTRE_BEHIND_NOSE_M])

    edges = {tuple(sorted(e)) for e in fmc.FACEMESH_TESSELATION}
    triangles = tesselation_triangles(edges, mean)
    data = {
        "about": "Embedded face rig topology (468 points of mediapipe's face landmark model, Apache-2.0; "
                 "triangles and groups derived from its face-mesh connection lists) and the pack's own canonical "
                 "shape (metres; x right, y up, z toward the camera; origin at the head centre). "
                 "Built by scripts/build_mesh468_assets.py.",
        "canonical": np.round(mean, 6).tolist(),
        "triangles": triangles.tolist(),
        "mirror": mirror.tolist(),
        "groups": groups,
    }
    out = ROOT / "models" / "rig" / "data" / "mesh468.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(f"{out}: {len(mean)} vertices, {len(triangles)} triangles, from {len(shapes)} photos; "
          f"mirror pairs {int((mirror != np.arange(len(mirror))).sum() // 2)}")


if __name__ == "__main__":
    main()
