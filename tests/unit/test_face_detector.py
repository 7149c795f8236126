"""models.faces detector stack: BlazeFace and the face mesh in PyTorch against mediapipe's own
solutions on real photos, plus the FaceDetector contract (batching, ordering, no-face images,
large images, model lookup)."""
from __future__ import annotations

import json
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from models.faces import mediapipe_files
from models.faces.blazeface import FULL_RANGE, SHORT_RANGE, BlazeFace, Letterbox, ssd_anchors
from models.faces.detector import (
    FaceDetector,
    FaceDetectorConfig,
    load_network,
    points5_from_keypoints,
    points5_from_mesh,
)
from models.faces.facemesh import FaceMesh, rois_from_detections
from models.faces.finder import POSSIBLE_FACE_SCORE, find_faces
from models.faces.mediapipe_files import find_mediapipe_models
from models.faces.nms import weighted_nms

FACES = Path(__file__).resolve().parents[2].parent / "shared" / "faces"
MIRROR = Path(__file__).resolve().parents[2] / "models" / "rig" / "data" / "mesh468.json"
CPU = torch.device("cpu")
RIGHT_EYE, LEFT_EYE = [33, 133, 159, 145], [263, 362, 386, 374]


@lru_cache(maxsize=None)
def photo(name: str) -> torch.Tensor:
    """(1, H, W, 3) float32 in [0, 1]; RGBA and grey photos made RGB."""
    if not (FACES / name).exists():
        pytest.skip(f"test photos not found at {FACES}")
    return torch.from_numpy(np.asarray(Image.open(FACES / name).convert("RGB"), np.float32) / 255.0)[None]


def resized(name: str, height: int, width: int) -> torch.Tensor:
    x = photo(name).permute(0, 3, 1, 2)
    return F.interpolate(x, size=(height, width), mode="bilinear", antialias=True).permute(0, 2, 3, 1)


def as_uint8(image: torch.Tensor) -> np.ndarray:
    return (image[0].numpy() * 255.0 + 0.5).astype(np.uint8)


def eye_distance(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[RIGHT_EYE, :2].mean(0) - landmarks[LEFT_EYE, :2].mean(0)))


@pytest.fixture(scope="module")
def files():
    try:
        return find_mediapipe_models([])
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def detector(files):
    return FaceDetector(files)


@pytest.fixture(scope="module")
def blazeface(files):
    return {0: BlazeFace(load_network(files.short_range, CPU, torch.float32), SHORT_RANGE),
            1: BlazeFace(load_network(files.full_range, CPU, torch.float32), FULL_RANGE)}


@pytest.fixture(scope="module")
def mediapipe_solutions():
    """mediapipe's own FaceDetection (short, full range) and FaceMesh solutions, the reference."""
    solutions = pytest.importorskip("mediapipe.python.solutions")
    models = {0: solutions.face_detection.FaceDetection(model_selection=0),
              1: solutions.face_detection.FaceDetection(model_selection=1),
              "mesh": solutions.face_mesh.FaceMesh(static_image_mode=True)}
    yield models
    for model in models.values():
        model.close()


def mediapipe_detections(solutions: dict, image: np.ndarray, model_selection: int
                         ) -> list[tuple[np.ndarray, float]]:
    """(6, 2) keypoints in pixels and the score of each face mediapipe finds."""
    height, width = image.shape[:2]
    found = solutions[model_selection].process(image).detections or []
    return [(np.array([[k.x * width, k.y * height] for k in d.location_data.relative_keypoints]), d.score[0])
            for d in found]


# --- model files -----------------------------------------------------------------------------------


def test_model_files_come_from_search_dirs_first(files, tmp_path):
    shutil.copy(files.face_mesh, tmp_path / files.face_mesh.name)
    found = find_mediapipe_models([tmp_path / "missing", tmp_path])
    assert found.face_mesh == tmp_path / "face_landmark.tflite"
    assert found.short_range == files.short_range  # the others still from the mediapipe package


def test_missing_model_files_say_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setattr(mediapipe_files, "_mediapipe_package_dir", lambda: None)
    with pytest.raises(FileNotFoundError) as error:
        find_mediapipe_models([tmp_path])
    message = str(error.value)
    for needed in ("face_detection_short_range.tflite", "face_detection_full_range_sparse.tflite",
                   "face_landmark.tflite", str(tmp_path), "pip install --no-deps mediapipe==0.10.21",
                   "models/likeness/mediapipe"):
        assert needed in message


# --- BlazeFace post-processing ---------------------------------------------------------------------


def test_anchors_match_the_models_outputs(files):
    short, full = ssd_anchors(SHORT_RANGE), ssd_anchors(FULL_RANGE)
    assert (len(short), len(full)) == (896, 2304)
    for anchors, path, size in ((short, files.short_range, 128), (full, files.full_range, 192)):
        with torch.no_grad():
            boxes, scores = load_network(path, CPU, torch.float32)(torch.zeros(1, 3, size, size))
        assert boxes.shape == (1, len(anchors), 16) and scores.shape == (1, len(anchors), 1)
    assert torch.allclose(short[:3], torch.tensor([[1 / 32, 1 / 32]] * 2 + [[3 / 32, 1 / 32]]))
    assert torch.allclose(short[512:519:6], torch.tensor([[1 / 16, 1 / 16], [3 / 16, 1 / 16]]))  # 6 per 8x8 cell
    assert torch.allclose(full[[0, 1, 48]], torch.tensor([[1 / 96, 1 / 96], [3 / 96, 1 / 96], [1 / 96, 3 / 96]]))


def test_weighted_nms_averages_a_cluster_by_score():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
    points = torch.tensor([[[5.0, 5]], [[6, 6]], [[55, 55]]])
    scores = torch.tensor([0.6, 0.9, 0.7])
    out_boxes, out_points, out_scores = weighted_nms(boxes, points, scores, 0.3)
    assert torch.allclose(out_scores, torch.tensor([0.9, 0.7]))
    assert torch.allclose(out_boxes[0], torch.tensor([0.6, 0.6, 10.6, 10.6]))  # (0.6 * 0 + 0.9 * 1) / 1.5
    assert torch.allclose(out_points[1], torch.tensor([[55.0, 55]]))


def test_letterbox_maps_back_to_image_pixels():
    box = Letterbox.fit(300, 600, 128)
    assert (box.resized, box.pad_x, box.pad_y) == ((64, 128), 0, 32)
    corners = box.to_image(torch.tensor([[0.0, 32 / 128], [1.0, 96 / 128]]))
    assert torch.allclose(corners, torch.tensor([[0.0, 0.0], [600.0, 300.0]]))


@pytest.mark.parametrize("model_selection,height,width", [(0, 128, 128), (0, 96, 128), (1, 192, 192),
                                                            (1, 192, 144)])
def test_blazeface_matches_mediapipe_without_resampling(blazeface, mediapipe_solutions, model_selection, height,
                                                        width):
    """At the model's own input size mediapipe does no resampling, so both must agree to float noise:
    this pins anchors, decoding, letterbox padding and weighted suppression."""
    for name in ("dlib_group_three_glasses.jpg", "fr_two_people.jpg", "a2f_exp4_scream.png"):
        image = as_uint8(resized(name, height, width))
        reference = mediapipe_detections(mediapipe_solutions, image, model_selection)
        min_score = 0.5 if model_selection == 0 else 0.6  # the full-range graph keeps its own 0.6
        ours = blazeface[model_selection](torch.from_numpy(image).permute(2, 0, 1)[None] / 255.0, min_score)[0]
        assert len(reference) == len(ours.scores) > 0
        for keypoints, score in reference:
            match = int(torch.argmin((ours.keypoints[:, 2] - torch.from_numpy(keypoints[2])).norm(dim=-1)))
            assert np.abs(ours.keypoints[match].numpy() - keypoints).max() < 1e-3
            assert abs(float(ours.scores[match]) - score) < 1e-4


@pytest.mark.parametrize("model_selection", [0, 1])
def test_blazeface_matches_mediapipe_on_photos(blazeface, mediapipe_solutions, model_selection):
    """At native size the resampling differs: mediapipe's OpenCV warp maps pixel indices, not pixel
    centres, which shifts its output by half an input pixel (undone here), and we antialias. Mean
    keypoint distance under 8% of the eye distance (measured 1.6-6.4%); scores of the full-range
    model move by up to 0.1 with the resampling (exact without it, see the test above)."""
    size = SHORT_RANGE.input_size if model_selection == 0 else FULL_RANGE.input_size
    for name in ("skimg_astronaut.png", "dlib_tomcruise_smile.jpg", "lp_src_s2_bw.jpg", "a2f_freeman_elder.jpg",
                 "iid_kaifu_glasses.png"):
        image = as_uint8(photo(name))
        side = max(image.shape[:2])
        reference = mediapipe_detections(mediapipe_solutions, image, model_selection)
        ours = blazeface[model_selection](torch.from_numpy(image).permute(2, 0, 1)[None] / 255.0, 0.5)[0]
        assert len(reference) == len(ours.scores) == 1
        keypoints, score = reference[0]
        keypoints = keypoints - 0.5 * side / size + 0.5
        eyes = np.linalg.norm(keypoints[0] - keypoints[1])
        error = np.linalg.norm(ours.keypoints[0, :4].numpy() - keypoints[:4], axis=1).mean() / eyes
        assert error < 0.08, (name, error)
        assert abs(float(ours.scores[0]) - score) < 0.15


# --- face mesh -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["skimg_astronaut.png", "dlib_tomcruise_smile.jpg", "a2f_pose1_threequarter.png",
                                  "if_darkskin_tilt.jpg"])
def test_face_mesh_matches_mediapipe(files, blazeface, mediapipe_solutions, name):
    """468 points from the short-range detection's crop, as mediapipe's FaceMesh in static mode:
    mean distance under 2.5% of the eye distance (measured 0.9-1.5% on these photos)."""
    image = photo(name)
    height, width = image.shape[1:3]
    found = mediapipe_solutions["mesh"].process(as_uint8(image)).multi_face_landmarks
    reference = np.array([[p.x * width, p.y * height, p.z * width] for p in found[0].landmark])
    nchw = image.permute(0, 3, 1, 2)
    faces = blazeface[0](nchw, 0.5)[0]
    mesh = FaceMesh(load_network(files.face_mesh, CPU, torch.float32))
    result = mesh(nchw, torch.zeros(1, dtype=torch.long), rois_from_detections(faces.boxes[:1], faces.keypoints[:1]))
    ours = result.landmarks[0].numpy()
    scale = eye_distance(reference)
    assert np.linalg.norm(ours[:, :2] - reference[:, :2], axis=1).mean() / scale < 0.025
    assert np.abs(ours[:, 2] - reference[:, 2]).mean() / scale < 0.025
    assert float(result.presence[0]) > 0.9


def test_landmarks_mirror_with_the_photo(detector):
    """The mesh of a mirrored photo, with left and right vertices swapped (the canonical mesh's
    mirror map), mirrored back: mean distance under 4% of the eye distance (measured ~2%)."""
    mirror = json.loads(MIRROR.read_text())["mirror"]
    assert sorted(mirror) == list(range(468)) and [mirror[i] for i in mirror] == list(range(468))
    for name in ("skimg_astronaut.png", "a2f_freeman_elder.jpg", "fa_aflw_lookup_arm.jpg"):
        image = photo(name)
        width = image.shape[2]
        straight, flipped = (faces[0] for faces in detector.detect(torch.cat([image, image.flip(2)])))
        back = flipped.landmarks[mirror].copy()
        back[:, 0] = width - back[:, 0]
        scale = eye_distance(straight.landmarks)
        assert np.linalg.norm(straight.landmarks[:, :2] - back[:, :2], axis=1).mean() / scale < 0.04
        swapped = flipped.points5[[1, 0, 2, 4, 3]].copy()  # ArcFace order is by the subject's sides
        swapped[:, 0] = width - swapped[:, 0]
        assert np.linalg.norm(straight.points5 - swapped, axis=1).max() / scale < 0.08


# --- FaceDetector ----------------------------------------------------------------------------------


def test_detect_returns_faces_left_to_right_with_points5(detector):
    faces = detector.detect(photo("dlib_group_three_glasses.jpg"))[0]
    assert len(faces) == 3
    assert [f.center[0] for f in faces] == sorted(f.center[0] for f in faces)
    for face in faces:
        x0, y0, x1, y1 = face.box
        assert face.score > 0.5 and face.landmarks.shape == (468, 3)
        right_eye, left_eye, nose, mouth_right, mouth_left = face.points5
        assert x0 < right_eye[0] < left_eye[0] < x1 and x0 < mouth_right[0] < mouth_left[0] < x1
        assert y0 < right_eye[1] < nose[1] < mouth_right[1] < y1
        assert np.allclose(face.points5, points5_from_mesh(face.landmarks))


def test_points5_without_landmarks_come_from_blazeface(detector):
    with_mesh = detector.detect(photo("skimg_astronaut.png"))[0][0]
    without = detector.detect(photo("skimg_astronaut.png"), landmarks=False)[0][0]
    assert without.landmarks is None
    assert np.allclose(without.box, with_mesh.box)
    error = np.linalg.norm(without.points5 - with_mesh.points5, axis=1) / eye_distance(with_mesh.landmarks)
    assert error[:3].max() < 0.15 and error[3:].max() < 0.3  # mouth widths vary with the expression
    corners = points5_from_keypoints(np.array([[0, 0], [10, 0], [5, 5], [5, 10], [-3, 2], [13, 2]], np.float32))
    assert np.allclose(corners[3:], [[0.8, 9.5], [9.2, 9.5]])  # 0.42 eye distances out, 0.05 up


def test_batch_gives_the_same_faces_as_single_calls(detector):
    names = ("skimg_astronaut.png", "fr_kit_rose_2faces.jpg", "dlib_two_glasses.jpg")
    images = [resized(name, 384, 384) for name in names]
    batched = detector.detect(torch.cat(images))
    singles = [detector.detect(image)[0] for image in images]
    assert [len(faces) for faces in batched] == [len(faces) for faces in singles] == [1, 2, 2]
    for faces_b, faces_s in zip(batched, singles):
        for b, s in zip(faces_b, faces_s):
            assert np.allclose(b.box, s.box, atol=0.05) and abs(b.score - s.score) < 1e-4
            assert np.abs(b.landmarks - s.landmarks).max() < 0.05


def test_empty_batch_and_faceless_photos(detector):
    assert detector.detect(torch.zeros(0, 64, 64, 3)) == []
    for name in ("skimg_chelsea_cat.png", "dlib_horses_landscape.jpg"):
        assert detector.detect(photo(name)) == [[]]


def test_large_image_is_searched_downscaled_and_read_at_full_size(detector):
    small = photo("skimg_astronaut.png")
    large = resized("skimg_astronaut.png", 2048, 2048)
    face_small = detector.detect(small)[0][0]
    face_large = detector.detect(large, max_detect_side=1024)[0][0]
    scale = eye_distance(face_small.landmarks)
    assert np.abs(np.array(face_large.box) / 4 - np.array(face_small.box)).max() / scale < 0.1
    assert np.linalg.norm(face_large.landmarks[:, :2] / 4 - face_small.landmarks[:, :2], axis=1).mean() / scale < 0.03


def test_refined_landmarks_stay_on_the_face(files):
    image = photo("skimg_astronaut.png")
    plain = FaceDetector(files).detect(image)[0][0]
    refined = FaceDetector(files, config=FaceDetectorConfig(refine_landmarks=True)).detect(image)[0][0]
    error = np.linalg.norm(plain.landmarks[:, :2] - refined.landmarks[:, :2], axis=1).mean()
    assert 0 < error / eye_distance(plain.landmarks) < 0.05


def test_progress_and_interrupt_hooks(files):
    detector = FaceDetector(files, config=FaceDetectorConfig(batch_size=2))
    images = resized("skimg_astronaut.png", 256, 256).expand(5, -1, -1, -1)
    progress = []
    assert len(detector.detect(images, landmarks=False, on_progress=lambda d, t: progress.append((d, t)))) == 5
    assert progress == [(2, 5), (4, 5), (5, 5)]

    class Stop(Exception):
        pass

    calls = []

    def interrupt():
        calls.append(1)
        if len(calls) == 2:
            raise Stop

    with pytest.raises(Stop):
        detector.detect(images, check_interrupt=interrupt)
    assert len(calls) == 2


def test_a_face_the_mesh_refuses_is_reported_with_a_reason(detector):
    """Grey out the top 70% of a detected face: BlazeFace still finds it, the mesh's presence
    collapses, and find_faces says so (with where and how confident) instead of 'no face'."""
    image = photo("skimg_astronaut.png")
    x0, y0, x1, y1 = (int(v) for v in detector.detect(image)[0][0].box)
    covered = image.clone()
    covered[0, y0:y0 + int(0.7 * (y1 - y0)), x0:x1] = 0.5
    heard = []
    assert detector.detect(torch.cat([image, covered]), on_rejected=heard.append)[1] == []
    assert [r.image_index for r in heard] == [1]
    assert heard[0].presence < detector.config.min_presence and heard[0].score >= POSSIBLE_FACE_SCORE
    assert abs(heard[0].box[0] - x0) < 0.25 * (x1 - x0)

    faces, reasons = find_faces(detector, torch.cat([image, covered, resized("skimg_chelsea_cat.png", 512, 512)]))
    assert faces.faces[0] and not faces.faces[1] and list(reasons) == [1, 2]
    assert "heavily occluded" in reasons[1] and "face presence" in reasons[1]
    assert reasons[2].startswith("no face found")
