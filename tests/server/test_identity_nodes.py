"""The identity nodes in a real ComfyUI: identity similarity on real photos (dlib, no downloads), the
MSID encoder on Face2Diffusion-format files with random weights, and the Face2Diffusion condition
through the stock CLIPLoader on a full-size SD1.x CLIP-L with random weights (the exact positions it
changes are checked in tests/unit/test_identity_injection.py)."""
from __future__ import annotations

import importlib.util
import re

import pytest
import torch

from comfy_runner import REPO, ComfyError
from convert_face2diffusion import main as convert_main  # scripts/ is on sys.path (conftest)
from models.identity import mapping_state_shapes, msid_state_shapes

pytestmark = pytest.mark.server
FACES = REPO.parent / "shared" / "faces"  # as tests/unit/face_photos.py
OBAMA_A, OBAMA_B, KIT = "fr_obama_small_lowres.jpg", "fr_obama_partial.jpg", "fr_kit_moody.jpg"


def load(comfy, name):
    path = FACES / name
    if not path.is_file():
        pytest.skip(f"test photos not found at {FACES}")
    return {"class_type": "LoadImage", "inputs": {"image": comfy.copy_input(path)}}


def similarity(a, b, scorer="dlib (built-in, 128-d)"):
    return {"class_type": "LikenessIdentitySimilarity",
            "inputs": {"images_a": a, "images_b": b, "scorer": scorer, "min_score": 0.5, "max_detect_side": 1024}}


def preview(source):
    return {"class_type": "PreviewAny", "inputs": {"source": source}}


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


def random_file_state(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = torch.ones(shape)
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.02
    return state


@pytest.fixture(scope="module")
def f2d_files(comfy, tmp_path_factory):
    """Official-format msid.pt / mapping.pt with random weights, converted into the server's model folder."""
    folder = tmp_path_factory.mktemp("f2d_official")
    torch.save(random_file_state(msid_state_shapes(), 0), folder / "msid.pt")
    torch.save(random_file_state(mapping_state_shapes(), 1), folder / "mapping.pt")
    out = comfy.base / "models" / "likeness" / "face2diffusion"
    assert convert_main(["--msid", str(folder / "msid.pt"), "--mapping", str(folder / "mapping.pt"),
                         "--out", str(out)]) == 0
    return out


def msid(images, average):
    return {"class_type": "LikenessMSIDEncoder",
            "inputs": {"images": images, "msid_file": "f2d_msid.safetensors", "average": average,
                       "min_score": 0.5, "max_detect_side": 1024}}


def test_msid_encoder_gives_one_identity_per_image_or_their_mean(comfy, f2d_files):
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


def test_msid_encoder_names_the_images_without_a_face(comfy, f2d_files):
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 256, "height": 256, "batch_size": 1,
                                                           "color": 0}},
              "2": msid(["1", 0], False), "3": preview(["2", 0])}
    with pytest.raises(ComfyError, match=r"no face found in image\(s\) \[0\]"):
        comfy.run(prompt)


def clip_l_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A full-size SD1.x CLIP-L text encoder (transformers key layout) with random fp16 weights, ~250 MB."""
    generator = torch.Generator().manual_seed(seed)
    d, shapes = 768, {"text_model.embeddings.token_embedding.weight": (49408, 768),
                      "text_model.embeddings.position_embedding.weight": (77, 768),
                      "text_model.final_layer_norm.weight": (768,), "text_model.final_layer_norm.bias": (768,)}
    for i in range(12):
        p = f"text_model.encoder.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes[p + f"self_attn.{name}.weight"], shapes[p + f"self_attn.{name}.bias"] = (d, d), (d,)
        for norm in ("layer_norm1", "layer_norm2"):
            shapes[p + f"{norm}.weight"], shapes[p + f"{norm}.bias"] = (d,), (d,)
        shapes[p + "mlp.fc1.weight"], shapes[p + "mlp.fc1.bias"] = (4 * d, d), (4 * d,)
        shapes[p + "mlp.fc2.weight"], shapes[p + "mlp.fc2.bias"] = (d, 4 * d), (d,)
    return {k: (torch.ones(s) if k.endswith("norm1.weight") or k.endswith("norm2.weight")
                or k.endswith("final_layer_norm.weight") else torch.randn(s, generator=generator) * 0.02
                ).half() for k, s in shapes.items()}


@pytest.fixture(scope="module")
def clip_file(comfy):
    from safetensors.torch import save_file

    folder = comfy.base / "models" / "text_encoders"
    folder.mkdir(parents=True, exist_ok=True)
    save_file(clip_l_state(), str(folder / "likeness_test_clip_l.safetensors"))
    return "likeness_test_clip_l.safetensors"


def condition_prompt(clip_name: str, text: str) -> dict:
    return {"1": {"class_type": "CLIPLoader", "inputs": {"clip_name": clip_name, "type": "stable_diffusion",
                                                         "device": "default"}},
            "3": {"class_type": "LikenessExpressionGuidance",
                  "inputs": {"source": "learned null vector (official)", "strength": 1.0}},
            "4": {"class_type": "LikenessFace2DiffusionCondition",
                  "inputs": {"clip": ["1", 0], "text": text, "face_id": ["6", 0], "mapping_file":
                             "f2d_mapping.safetensors", "identifier": "f l", "face_expression": ["3", 0]}},
            "5": preview(["4", 0])}


def test_condition_runs_through_a_stock_sd1_clip_and_requires_the_identifier(comfy, f2d_files, clip_file):
    prompt = condition_prompt(clip_file, "a photo of f l person")
    prompt["0"] = load(comfy, OBAMA_A)
    prompt["6"] = msid(["0", 0], False)
    text = comfy.run(prompt)["outputs"]["5"]["text"][0]
    assert "pooled_output" in text
    prompt["4"]["inputs"]["text"] = "a photo of a person"
    with pytest.raises(ComfyError, match="does not contain the identifier 'f l'"):
        comfy.run(prompt)
