"""dlib's 128-d identity descriptors on real photos: same person close, different people far.

dlib and face-recognition-models are optional for users; these tests skip without them, except in
CI (CI=true), where they must run.
"""
from __future__ import annotations

import importlib.util
import itertools
import os
import sys

import numpy as np
import pytest
import torch

from face_photos import photo, points5
from models.faces.detector import FaceDetector
from models.faces.mediapipe_files import find_mediapipe_models
from models.faces.types import FaceDetection
from models.identity import (DLIB_SAME_PERSON_DISTANCE, DlibFaceEmbedder, MissingDependencyError, cosine_similarity,
                             find_dlib_model_files, l2_distance, start_box)
from models.identity.dlib_embedder import RECOGNITION_MODEL, to_uint8_rgb
from models.loading import ModelFileError

# Single-face photos of distinct, well-known people (shared/faces/SOURCES.md): Barack Obama, Kit
# Harington, Alex Lacamoire, Lin-Manuel Miranda, Tom Cruise, Morgan Freeman, Audrey Hepburn, Eileen
# Collins (skimage's astronaut), Kai-Fu Lee, Sam Altman.
DIFFERENT_PEOPLE = ("fr_obama_small_lowres.jpg", "fr_kit_moody.jpg", "fr_alex_smile.png", "fr_lmm_microphone.png",
                    "dlib_tomcruise_smile.jpg", "a2f_freeman_elder.jpg", "a2f_hepburn_vintage.png",
                    "skimg_astronaut.png", "iid_kaifu_glasses.png", "iid_sam_smile.png")
# Two different photos of Obama; photos against their mirror images (a three-quarter view among them).
SAME_PERSON_PHOTOS = (("fr_obama_small_lowres.jpg", "fr_obama_partial.jpg"),)
MIRRORED = ("fr_obama_partial.jpg", "fr_kit_moody.jpg", "a2f_pose1_threequarter.png", "iid_kaifu_glasses.png")


@pytest.fixture(scope="module")
def embedder() -> DlibFaceEmbedder:
    missing = [m for m in ("dlib", "face_recognition_models") if importlib.util.find_spec(m) is None]
    if missing:
        reason = f"{', '.join(missing)} not installed (pip install dlib-bin face-recognition-models)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}: the dlib tests must run in CI")
        pytest.skip(reason)
    return DlibFaceEmbedder()


def mirrored(name: str) -> tuple[torch.Tensor, np.ndarray]:
    """The photo flipped left-right and its points, relabelled so the ArcFace order still holds."""
    image, p = photo(name), points5(name).copy()
    p[:, 0] = image.shape[1] - p[:, 0]
    return image.flip(1), p[[1, 0, 2, 4, 3]]


def embed(embedder: DlibFaceEmbedder, name: str) -> np.ndarray:
    return embedder.embed(photo(name), [points5(name)])[0]


def test_same_person_is_closer_than_different_people(embedder):
    vectors = {name: embed(embedder, name) for name in {*DIFFERENT_PEOPLE, *itertools.chain(*SAME_PERSON_PHOTOS),
                                                         *MIRRORED}}
    same = {f"{a} ~ {b}": float(l2_distance(vectors[a], vectors[b])[0]) for a, b in SAME_PERSON_PHOTOS}
    for name in MIRRORED:
        image, p = mirrored(name)
        flipped = embedder.embed(image, [p])[0]
        same[f"{name} ~ mirror"] = float(l2_distance(vectors[name], flipped)[0])
    different = {f"{a} ~ {b}": float(l2_distance(vectors[a], vectors[b])[0])
                 for a, b in itertools.combinations(DIFFERENT_PEOPLE, 2)}
    print("\nsame person (L2):", {k: round(v, 3) for k, v in same.items()})
    closest = sorted(different.items(), key=lambda kv: kv[1])[:5]
    print(f"different people (L2) over {len(different)} pairs: min {min(different.values()):.3f}, "
          f"median {np.median(list(different.values())):.3f}, max {max(different.values()):.3f}; closest:",
          [(k, round(v, 3)) for k, v in closest])
    assert max(same.values()) < min(different.values())
    # and on the right side of dlib's own decision threshold
    assert max(same.values()) < DLIB_SAME_PERSON_DISTANCE < min(different.values())


def test_same_person_found_again_in_group_photos_by_the_pack_detector(embedder):
    """Kit Harington and Barack Obama in group photos, faces from models.faces.detector: the face
    nearest to their single-face photo is under dlib's threshold, the other people are over it."""
    try:
        detector = FaceDetector(find_mediapipe_models([]))
    except FileNotFoundError as error:
        pytest.skip(str(error))
    for group, single in (("fr_kit_rose_2faces.jpg", "fr_kit_moody.jpg"),
                          ("fr_obama_biden_group.jpg", "fr_obama_small_lowres.jpg")):
        faces = detector.detect(photo(group)[None])[0]
        distances = sorted(l2_distance(embed(embedder, single), embedder.embed(photo(group), faces)))
        print(f"\n{single} vs the {len(faces)} faces found in {group} (L2): {np.round(distances, 3).tolist()}")
        assert len(faces) >= 2
        assert distances[0] < DLIB_SAME_PERSON_DISTANCE < distances[1]


def test_dlib_eye_landmarks_land_on_the_pack_points(embedder):
    """The start box is where dlib's predictor expects a face: its eye corners straddle our eye centres."""
    for name in ("fr_obama_small_lowres.jpg", "lp_src_s2_bw.jpg", "a2f_pose1_threequarter.png"):
        p = points5(name)
        shape = embedder.landmarks(photo(name), [p])[0]  # image-right eye corners, image-left eye corners, nose
        eye_distance = np.linalg.norm(p[1] - p[0])
        assert np.linalg.norm(shape[0:2].mean(0) - p[1]) < 0.15 * eye_distance
        assert np.linalg.norm(shape[2:4].mean(0) - p[0]) < 0.15 * eye_distance


def test_float_uint8_and_face_detection_inputs_give_the_same_descriptor(embedder):
    name = "fr_alex_smile.png"
    as_float = embedder.embed(photo(name), [points5(name)])
    as_uint8 = embedder.embed(to_uint8_rgb(photo(name)), [points5(name)])
    np.testing.assert_array_equal(as_float, as_uint8)
    detection = FaceDetection(box=(0, 0, 1, 1), score=1.0, points5=points5(name))  # the box is not used
    np.testing.assert_allclose(embedder.embed(photo(name), [detection]), as_float, atol=1e-6)
    assert as_float.shape == (1, 128) and as_float.dtype == np.float32
    assert embedder.embed(photo(name), []).shape == (0, 128)


def test_start_box_is_a_square_around_the_eyes_and_mouth():
    p = np.array([[40.0, 50.0], [80.0, 50.0], [60.0, 70.0], [45.0, 90.0], [75.0, 90.0]])
    x0, y0, x1, y1 = start_box(p, box_scale=1.0)
    assert (x1 - x0) == pytest.approx(y1 - y0) == pytest.approx(np.hypot(40.0, 40.0))
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((60.0, 70.0))
    with pytest.raises(ValueError, match="degenerate"):
        start_box(np.zeros((5, 2)))


def test_missing_model_file_names_it_and_the_package(tmp_path):
    with pytest.raises(ModelFileError) as caught:
        find_dlib_model_files(tmp_path)
    message = str(caught.value)
    assert RECOGNITION_MODEL in message and "pip install dlib-bin face-recognition-models" in message


def test_missing_dlib_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` fail
    with pytest.raises(MissingDependencyError, match="pip install dlib-bin"):
        DlibFaceEmbedder()


def test_similarity_helpers():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(cosine_similarity(a, b), [1.0, 0.0])
    np.testing.assert_allclose(l2_distance(a, b), [1.0, np.sqrt(5.0)])
    np.testing.assert_allclose(l2_distance(a, np.zeros(2)), [1.0, 2.0])  # one row broadcasts
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        l2_distance(np.zeros((1, 2, 3)), np.zeros(3))
