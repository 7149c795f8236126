"""The identity nodes in a real ComfyUI, on the session's stand-in files (tests/fixtures/identity_weights.py):
identity similarity on real photos (dlib, no downloads), the MSID encoder, and Face2Diffusion end to end
through the stock CheckpointLoaderSimple -> KSampler -> VAEDecode chain on a tiny SD1.x-shaped checkpoint,
with each Expression Guidance source. The exact token positions the condition changes are checked in
tests/unit/test_identity_injection.py; the Deep3DFaceRecon crop and network in tests/unit/test_identity_deep3d*.py."""
from __future__ import annotations

import contextlib
import importlib.util
import re
import uuid

import numpy as np
import pytest
from PIL import Image

from comfy_runner import REPO, ComfyError
from identity_weights import F2D_FOLDER, write_deep3d_stand_in
from models.identity import DEEP3D_FILE
from models.identity.rig_expression import RIG_MAP_FILE
from sd1_checkpoint import SD1_CHECKPOINT_FILE

pytestmark = pytest.mark.server
FACES = REPO.parent / "shared" / "faces"  # as tests/unit/face_photos.py
OBAMA_A, OBAMA_B, KIT = "fr_obama_small_lowres.jpg", "fr_obama_partial.jpg", "fr_kit_moody.jpg"
PORTRAIT = REPO / "assets" / "likeness_portrait.png"
DLIB = "dlib (built-in, 128-d)"
NULL, RIG, DEEP3D = "learned null vector (official)", "face rig (trained map)", "Deep3DFaceRecon (photo)"
LOAD_WARNINGS = ("unet missing", "unet unexpected", "clip missing", "Missing VAE keys", "no match")


def load(comfy, name, as_name: str | None = None):
    path = name if name == PORTRAIT else FACES / name
    if not path.is_file():
        pytest.skip(f"test photo {path} not found")
    return {"class_type": "LoadImage", "inputs": {"image": comfy.copy_input(path, as_name)}}


def similarity(a, b, scorer=DLIB, on_missing_face="error"):
    return {"class_type": "LikenessIdentitySimilarity",
            "inputs": {"images_a": a, "images_b": b, "scorer": scorer, "min_score": 0.5, "max_detect_side": 1024,
                       "on_missing_face": on_missing_face}}


def preview(source):
    return {"class_type": "PreviewAny", "inputs": {"source": source}}


def save(images):
    return {"class_type": "SaveImage", "inputs": {"images": images, "filename_prefix": f"t_{uuid.uuid4().hex[:8]}"}}


def report(comfy, first, second) -> str:
    prompt = {"1": load(comfy, first), "2": load(comfy, second), "3": similarity(["1", 0], ["2", 0]),
              "4": preview(["3", 1])}
    return comfy.run(prompt)["outputs"]["4"]["text"][0]


def l2(text: str) -> float:
    return float(re.search(r"L2 ([0-9.]+)", text).group(1))


@pytest.mark.skipif(importlib.util.find_spec("dlib") is None, reason="dlib not installed (pip install dlib-bin)")
def test_dlib_similarity_separates_same_and_different_people(comfy):
    same, different = report(comfy, OBAMA_A, OBAMA_B), report(comfy, OBAMA_A, KIT)
    assert "same person" in same and "different people" in different
    assert l2(same) < 0.6 < l2(different)  # dlib's threshold; tests/unit/test_identity_dlib.py has the numbers


@pytest.mark.skipif(importlib.util.find_spec("dlib") is None, reason="dlib not installed (pip install dlib-bin)")
def test_similarity_reports_or_refuses_images_without_a_face(comfy):
    prompt = {"1": load(comfy, OBAMA_A), "2": load(comfy, KIT),
              "3": {"class_type": "EmptyImage", "inputs": {"width": 256, "height": 256, "batch_size": 1,
                                                           "color": 0}},
              "4": {"class_type": "ImageScale", "inputs": {"image": ["2", 0], "upscale_method": "bilinear",
                                                           "width": 256, "height": 256, "crop": "center"}},
              "5": {"class_type": "ImageBatch", "inputs": {"image1": ["4", 0], "image2": ["3", 0]}},
              "6": similarity(["1", 0], ["5", 0], on_missing_face="report"), "7": preview(["6", 1]),
              "8": preview(["6", 0])}
    outputs = comfy.run(prompt)["outputs"]
    text = outputs["7"]["text"][0]
    assert "pair 0: cosine" in text and "different people" in text
    assert "pair 1: not compared, no face found in B" in text
    mean = float(re.search(r"mean cosine similarity: ([-0-9.]+)", text).group(1))
    assert float(outputs["8"]["text"][0]) == pytest.approx(mean, abs=1e-4)  # the mean skips the empty pair
    prompt["6"]["inputs"]["on_missing_face"] = "error"
    with pytest.raises(ComfyError, match=r"no face found in image\(s\) \[1\] of batch B"):
        comfy.run(prompt)


def msid(images, average=False):
    return {"class_type": "LikenessMSIDEncoder",
            "inputs": {"images": images, "msid_file": "f2d_msid.safetensors", "average": average,
                       "min_score": 0.5, "max_detect_side": 1024}}


def test_msid_encoder_gives_one_identity_per_image_or_their_mean(comfy):
    prompt = {"1": load(comfy, OBAMA_A), "2": load(comfy, KIT),
              "3": {"class_type": "ImageScale", "inputs": {"image": ["2", 0], "upscale_method": "bilinear",
                                                           "width": 512, "height": 512, "crop": "center"}},
              "4": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "bilinear",
                                                           "width": 512, "height": 512, "crop": "center"}},
              "5": {"class_type": "ImageBatch", "inputs": {"image1": ["4", 0], "image2": ["3", 0]}},
              "6": msid(["5", 0], False), "7": msid(["5", 0], True),
              "8": preview(["6", 0]), "9": preview(["7", 0])}
    outputs = comfy.run(prompt)["outputs"]
    assert "labels=('image 0', 'image 1')" in outputs["8"]["text"][0]
    assert "labels=('mean of 2 image(s)',)" in outputs["9"]["text"][0]


def test_msid_encoder_names_the_images_without_a_face(comfy):
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 256, "height": 256, "batch_size": 1,
                                                           "color": 0}},
              "2": msid(["1", 0], False), "3": preview(["2", 0])}
    with pytest.raises(ComfyError, match=r"no face found in image\(s\) \[0\]"):
        comfy.run(prompt)


# --- Face2Diffusion through the stock SD1.x chain -------------------------------------------------------------

def checkpoint():
    return {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": SD1_CHECKPOINT_FILE}}


def condition(face_id, text="a photo of f l person as a chef", expression=None):
    inputs = {"clip": ["ckpt", 1], "text": text, "face_id": face_id, "mapping_file": "f2d_mapping.safetensors",
              "identifier": "f l"}
    if expression is not None:
        inputs["face_expression"] = expression
    return {"class_type": "LikenessFace2DiffusionCondition", "inputs": inputs}


def guidance(source=NULL, strength=1.0, **wires):
    return {"class_type": "LikenessExpressionGuidance",
            "inputs": {"source": source, "strength": strength, "rig_map_file": RIG_MAP_FILE,
                       "deep3d_file": DEEP3D_FILE, **wires}}


def sampled(positive, size=64, batch=1) -> dict:
    """positive -> KSampler (2 steps, fixed seed) -> VAEDecode -> SaveImage, as nodes 'ckpt' .. 'save'."""
    return {"ckpt": checkpoint(),
            "neg": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["ckpt", 1], "text": "blurry"}},
            "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size,
                                                                    "batch_size": batch}},
            "sampler": {"class_type": "KSampler", "inputs": {
                "model": ["ckpt", 0], "seed": 7, "steps": 2, "cfg": 7.0, "sampler_name": "euler",
                "scheduler": "normal", "positive": positive, "negative": ["neg", 0], "latent_image": ["latent", 0],
                "denoise": 1.0}},
            "decode": {"class_type": "VAEDecode", "inputs": {"samples": ["sampler", 0], "vae": ["ckpt", 2]}},
            "save": save(["decode", 0])}


def images(comfy, prompt) -> list[np.ndarray]:
    entry = comfy.run(prompt)
    return [np.asarray(Image.open(p)) for p in comfy.outputs_by_node(entry)["save"]]


def portrait_image(comfy, expression_nodes: dict | None = None, photo_name: str | None = None) -> np.ndarray:
    """The portrait's identity with the given Expression Guidance node ('expr'), sampled."""
    nodes = {"photo": load(comfy, PORTRAIT, photo_name), "id": msid(["photo", 0]),
             "cond": condition(["id", 0], expression=["expr", 0] if expression_nodes else None),
             **sampled(["cond", 0]), **(expression_nodes or {})}
    return images(comfy, nodes)[0]


def test_stand_in_checkpoint_loads_as_sd1_with_every_tensor_filled(comfy):
    prompt = {"ckpt": checkpoint(), "enc": {"class_type": "CLIPTextEncode",
                                            "inputs": {"clip": ["ckpt", 1], "text": "a photo of a person"}},
              "photo": load(comfy, PORTRAIT), "id": msid(["photo", 0]), "cond": condition(["id", 0]),
              "p1": preview(["enc", 0]), "p2": preview(["cond", 0])}
    comfy.run(prompt)  # Face2Diffusion Condition accepts only an SD1.x CLIP (CLIP-L, no CLIP-G)
    log = comfy.log_text()  # whole log: an earlier test may have loaded (and cached) the checkpoint
    assert "model_type EPS" in log
    assert not [w for w in LOAD_WARNINGS if w in log], log


def test_identity_reaches_the_image_and_the_same_identity_gives_the_same_image(comfy):
    first = portrait_image(comfy)
    again = portrait_image(comfy, photo_name=f"portrait_copy_{uuid.uuid4().hex[:6]}.png")  # every node reruns
    other = images(comfy, {"photo": load(comfy, KIT), "id": msid(["photo", 0]), "cond": condition(["id", 0]),
                           **sampled(["cond", 0])})[0]
    plain = images(comfy, {"plain": {"class_type": "CLIPTextEncode",
                                     "inputs": {"clip": ["ckpt", 1], "text": "a photo of f l person as a chef"}},
                           **sampled(["plain", 0])})[0]
    assert first.shape == (64, 64, 3)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, plain)


def test_condition_requires_the_identifier(comfy):
    prompt = {"ckpt": checkpoint(), "photo": load(comfy, PORTRAIT), "id": msid(["photo", 0]),
              "cond": condition(["id", 0], text="a photo of a person"), "p": preview(["cond", 0])}
    with pytest.raises(ComfyError, match="does not contain the identifier 'f l'"):
        comfy.run(prompt)


def test_several_identities_give_one_conditioning_each(comfy):
    nodes = {"a": load(comfy, PORTRAIT), "b": load(comfy, KIT),
             "sa": {"class_type": "ImageScale", "inputs": {"image": ["a", 0], "upscale_method": "bilinear",
                                                           "width": 384, "height": 384, "crop": "center"}},
             "sb": {"class_type": "ImageScale", "inputs": {"image": ["b", 0], "upscale_method": "bilinear",
                                                           "width": 384, "height": 384, "crop": "center"}},
             "both": {"class_type": "ImageBatch", "inputs": {"image1": ["sa", 0], "image2": ["sb", 0]}},
             "id": msid(["both", 0]), "cond": condition(["id", 0]), **sampled(["cond", 0], batch=2)}
    two = images(comfy, nodes)
    assert len(two) == 2 and not np.array_equal(two[0], two[1])


# --- Expression Guidance sources -----------------------------------------------------------------------------

def fitted_rig(comfy) -> dict:
    return {"ephoto": load(comfy, PORTRAIT),
            "crop": {"class_type": "LikenessFaceAlignCrop", "inputs": {
                "image": ["ephoto", 0], "size": 256, "padding": 0.0, "selection": "largest", "face_index": 0,
                "on_no_face": "error", "min_score": 0.5, "max_detect_side": 1024}},
            "fit": {"class_type": "LikenessFaceFit", "inputs": {
                "crops": ["crop", 0], "face_crop": ["crop", 1], "backend": "embedded mesh (468 points)",
                "max_yaw": 45.0, "refine_steps": 0}}}


def test_rig_expression_blends_from_the_official_null_vector(comfy):
    official = portrait_image(comfy, {"expr": guidance(NULL, 1.0)})
    assert np.array_equal(official, portrait_image(comfy))  # no expression input = the official null vector
    rig_none = portrait_image(comfy, {**fitted_rig(comfy), "expr": guidance(RIG, 0.0, face_rig=["fit", 0])})
    rig_full = portrait_image(comfy, {**fitted_rig(comfy), "expr": guidance(RIG, 1.0, face_rig=["fit", 0])})
    zeros = portrait_image(comfy, {"expr": guidance(NULL, 0.0)})
    assert np.array_equal(rig_none, official)  # strength 0 is exactly the null vector
    assert not np.array_equal(rig_full, official)  # the rig's code reaches the image
    assert not np.array_equal(zeros, official)


def test_rig_source_needs_a_rig(comfy):
    prompt = {"expr": guidance(RIG, 1.0), "p": preview(["expr", 0])}
    with pytest.raises(ComfyError, match="needs a FACE_RIG on the face_rig input"):
        comfy.run(prompt)


@contextlib.contextmanager
def absent(path):
    """The file moved away for the duration (the combo still offers its default name)."""
    away = path.with_name(f".{path.name}.away")
    if path.exists():
        path.rename(away)
    try:
        yield
    finally:
        if away.exists():
            away.rename(path)


def test_missing_rig_map_names_folder_file_and_trainer(comfy):
    folder = comfy.base / "models" / F2D_FOLDER
    prompt = {**fitted_rig(comfy), "expr": guidance(RIG, 1.0, face_rig=["fit", 0]), "p": preview(["expr", 0])}
    prompt["expr"]["inputs"]["strength"] = 0.95  # not served from an earlier run's cache
    with absent(folder / RIG_MAP_FILE), pytest.raises(ComfyError) as caught:
        comfy.run(prompt)
    message = str(caught.value)
    assert f"'{RIG_MAP_FILE}' not found in {folder}" in message
    assert "scripts/train_face2diffusion.py" in message


def test_missing_deep3d_file_names_folder_file_and_converter(comfy):
    folder = comfy.base / "models" / F2D_FOLDER
    prompt = {"photo": load(comfy, PORTRAIT), "expr": guidance(DEEP3D, 0.9, images=["photo", 0]),
              "p": preview(["expr", 0])}
    with absent(folder / DEEP3D_FILE), pytest.raises(ComfyError) as caught:
        comfy.run(prompt)
    message = str(caught.value)
    assert f"'{DEEP3D_FILE}' not found in {folder}" in message
    assert "scripts/convert_deep3d.py" in message and "epoch_20.pth" in message


@pytest.fixture(scope="module")
def deep3d_file(comfy):
    path = write_deep3d_stand_in(comfy.base / "models" / F2D_FOLDER)
    yield path
    path.unlink(missing_ok=True)


def test_deep3d_expression_of_photos(comfy, deep3d_file):
    two = {"a": load(comfy, PORTRAIT), "b": load(comfy, KIT),
           "sa": {"class_type": "ImageScale", "inputs": {"image": ["a", 0], "upscale_method": "bilinear",
                                                         "width": 384, "height": 384, "crop": "center"}},
           "sb": {"class_type": "ImageScale", "inputs": {"image": ["b", 0], "upscale_method": "bilinear",
                                                         "width": 384, "height": 384, "crop": "center"}},
           "both": {"class_type": "ImageBatch", "inputs": {"image1": ["sa", 0], "image2": ["sb", 0]}},
           "expr": guidance(DEEP3D, 1.0, images=["both", 0]), "p": preview(["expr", 0])}
    text = comfy.run(two)["outputs"]["p"]["text"][0]
    assert f"source='Deep3DFaceRecon ({DEEP3D_FILE})'" in text and "labels=('image 0', 'image 1')" in text

    # one identity takes every code: a conditioning batch of two
    nodes = {**two, "photo": load(comfy, PORTRAIT), "id": msid(["photo", 0]),
             "cond": condition(["id", 0], expression=["expr", 0]), **sampled(["cond", 0], batch=2)}
    del nodes["p"]
    assert len(images(comfy, nodes)) == 2
    # two identities and two codes pair up; two identities and three codes do not
    nodes["id"] = msid(["both", 0])
    assert len(images(comfy, nodes)) == 2
    nodes["three"] = {"class_type": "ImageBatch", "inputs": {"image1": ["both", 0], "image2": ["sa", 0]}}
    nodes["expr"] = guidance(DEEP3D, 1.0, images=["three", 0])
    with pytest.raises(ComfyError, match="2 identities and 3 expression codes"):
        comfy.run(nodes)


def test_deep3d_expression_blends_from_the_null_vector(comfy, deep3d_file):
    official = portrait_image(comfy)
    none = portrait_image(comfy, {"ephoto": load(comfy, PORTRAIT),
                                  "expr": guidance(DEEP3D, 0.0, images=["ephoto", 0])})
    full = portrait_image(comfy, {"ephoto": load(comfy, PORTRAIT),
                                  "expr": guidance(DEEP3D, 1.0, images=["ephoto", 0])})
    assert np.array_equal(none, official)
    assert not np.array_equal(full, official)
