"""The face nodes in a real ComfyUI, on the awkward inputs users bring: several faces, no face, RGBA,
tiny and very large frames, and batches of frames. Graphs use stock nodes to produce those inputs."""
import uuid

import numpy as np
import pytest
import torch
from PIL import Image

from comfy_runner import ComfyError, REPO

pytestmark = pytest.mark.server
FIXTURES = REPO / "tests" / "fixtures" / "faces"
PORTRAIT = REPO / "assets" / "likeness_portrait.png"


def load(comfy, path):
    return {"class_type": "LoadImage", "inputs": {"image": comfy.copy_input(path)}}


def crop(image, **kw):
    inputs = {"image": image, "size": 256, "padding": 0.0, "selection": "largest", "face_index": 0,
              "on_no_face": "error", "min_score": 0.5, "max_detect_side": 1024}
    inputs.update(kw)
    return {"class_type": "LikenessFaceAlignCrop", "inputs": inputs}


def paste(image, crops, face_crop, **kw):
    inputs = {"image": image, "crops": crops, "face_crop": face_crop, "feather": 0.08, "color_match": "none",
              "preserve_unchanged": True}
    inputs.update(kw)
    return {"class_type": "LikenessFacePasteBack", "inputs": inputs}


def save(images):
    return {"class_type": "SaveImage", "inputs": {"images": images, "filename_prefix": f"t_{uuid.uuid4().hex[:8]}"}}


def saved(comfy, entry, node_id) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in comfy.outputs_by_node(entry)[node_id]]


def test_detect_counts_and_previews_every_face(comfy):
    prompt = {"1": load(comfy, FIXTURES / "fr_two_people.jpg"),
              "2": {"class_type": "LikenessFaceDetect", "inputs": {"image": ["1", 0], "min_score": 0.5,
                                                                   "max_detect_side": 1024}},
              "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 2]}},
              "4": save(["2", 1])}
    entry = comfy.run(prompt)
    assert entry["outputs"]["3"]["text"] == ["2"]
    preview, = saved(comfy, entry, "4")
    original = np.asarray(Image.open(FIXTURES / "fr_two_people.jpg").convert("RGB"))
    assert preview.shape == original.shape and (preview != original).any(axis=-1).mean() > 0.001


def test_all_faces_are_cropped_left_to_right_and_pasted_back(comfy):
    prompt = {"1": load(comfy, FIXTURES / "fr_two_people.jpg"), "2": crop(["1", 0], selection="all"),
              "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
              "4": paste(["1", 0], ["3", 0], ["2", 1]), "5": save(["2", 0]), "6": save(["4", 0])}
    entry = comfy.run(prompt)
    crops = saved(comfy, entry, "5")
    assert len(crops) == 2 and all(c.shape == (256, 256, 3) for c in crops)
    result, = saved(comfy, entry, "6")
    original = np.asarray(Image.open(FIXTURES / "fr_two_people.jpg").convert("RGB")).astype(int)
    changed = np.abs(result.astype(int) - original).max(-1) > 60
    # two separate inverted face regions, one in each half of the photo, with untouched photo between and around
    w = original.shape[1]
    assert changed[:, : w // 2].sum() > 2000 and changed[:, w // 2:].sum() > 2000
    assert changed.mean() < 0.35 and not changed.any(0).all()


def test_no_face_stops_with_a_clear_message(comfy):
    prompt = {"1": load(comfy, FIXTURES / "skimg_chelsea_cat.png"), "2": crop(["1", 0]), "3": save(["2", 0])}
    with pytest.raises(ComfyError, match=r"image 1 of 1: no face found with score >= 0\.5.*passthrough"):
        comfy.run(prompt)


def test_heavily_occluded_face_stops_with_a_clear_message(comfy, tmp_path):
    """The detector sees the face but the landmark model cannot read it: the user hears that, not 'no face'."""
    from models.faces.detector import FaceDetector
    from models.faces.mediapipe_files import find_mediapipe_models

    pixels = np.asarray(Image.open(PORTRAIT).convert("RGB")).copy()
    x0, y0, x1, y1 = (int(v) for v in FaceDetector(find_mediapipe_models([])).detect(
        torch.from_numpy(pixels.astype(np.float32) / 255)[None])[0][0].box)
    pixels[y0:y0 + int(0.7 * (y1 - y0)), x0:x1] = 128
    Image.fromarray(pixels).save(tmp_path / "covered.png")
    prompt = {"1": load(comfy, tmp_path / "covered.png"), "2": crop(["1", 0]), "3": save(["2", 0])}
    with pytest.raises(ComfyError, match=r"image 1 of 1: the face detector found a possible face at .*\(face "
                                         r"presence 0\.\d+ < 0\.5\): if it is a face, it is probably heavily "
                                         r"occluded"):
        comfy.run(prompt)


def test_no_face_passthrough_leaves_the_frame_unchanged(comfy):
    prompt = {"1": load(comfy, FIXTURES / "skimg_chelsea_cat.png"), "2": crop(["1", 0], on_no_face="passthrough"),
              "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
              "4": paste(["1", 0], ["3", 0], ["2", 1]), "5": save(["4", 0]),
              "6": {"class_type": "MaskToImage", "inputs": {"mask": ["4", 1]}}, "7": save(["6", 0])}
    entry = comfy.run(prompt)
    result, = saved(comfy, entry, "5")
    mask, = saved(comfy, entry, "7")
    assert np.array_equal(result, np.asarray(Image.open(FIXTURES / "skimg_chelsea_cat.png").convert("RGB")))
    assert mask.max() == 0


def test_rgba_input_is_cropped(comfy):
    prompt = {"1": load(comfy, FIXTURES / "fr_alex_smile.png"),
              "2": {"class_type": "JoinImageWithAlpha", "inputs": {"image": ["1", 0], "alpha": ["1", 1]}},
              "3": crop(["2", 0]), "4": save(["3", 0])}
    out, = saved(comfy, comfy.run(prompt), "4")
    assert out.shape == (256, 256, 3) and out.std() > 20


def test_tiny_image_is_reported_as_too_small(comfy):
    prompt = {"1": load(comfy, PORTRAIT),
              "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "area",
                                                           "width": 40, "height": 40, "crop": "disabled"}},
              "3": crop(["2", 0]), "4": save(["3", 0])}
    with pytest.raises(ComfyError, match="40x40 px; faces need at least 48 px"):
        comfy.run(prompt)


def test_8k_frame_is_detected_downscaled_and_cropped_at_full_resolution(comfy):
    prompt = {"1": load(comfy, PORTRAIT),
              "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "bilinear",
                                                           "width": 7680, "height": 7680, "crop": "disabled"}},
              "3": crop(["2", 0], size=512), "4": crop(["1", 0], size=512), "5": save(["3", 0]),
              "6": save(["4", 0])}
    entry = comfy.run(prompt, timeout=600)
    big, = saved(comfy, entry, "5")
    small, = saved(comfy, entry, "6")
    # the same face, framed the same way whichever resolution it was found at
    diff = np.abs(big.astype(float) - small.astype(float)).mean()
    assert big.shape == (512, 512, 3) and diff < 12, diff


def test_batch_of_frames_keeps_one_crop_per_frame(comfy):
    prompt = {"1": load(comfy, PORTRAIT), "2": load(comfy, FIXTURES / "skimg_chelsea_cat.png"),
              "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
              "4": {"class_type": "ImageBatch", "inputs": {"image1": ["3", 0], "image2": ["1", 0]}},
              "5": crop(["4", 0], on_no_face="passthrough"),
              "6": {"class_type": "ImageInvert", "inputs": {"image": ["5", 0]}},
              "7": paste(["4", 0], ["6", 0], ["5", 1]), "8": save(["5", 0]), "9": save(["7", 0])}
    entry = comfy.run(prompt)
    assert len(saved(comfy, entry, "8")) == 3
    frames = saved(comfy, entry, "9")
    portrait = np.asarray(Image.open(PORTRAIT).convert("RGB")).astype(int)
    edited = [np.abs(f.astype(int) - portrait).max(-1) > 60 for f in (frames[0], frames[2])]
    assert all(0.02 < e.mean() < 0.6 for e in edited)
    assert np.array_equal(edited[0], edited[1])  # the same frame gets the same edit wherever it sits in the batch
