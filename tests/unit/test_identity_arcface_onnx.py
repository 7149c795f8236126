"""The InsightFace ArcFace ONNX runner, on tiny recognition models exported here with torch.onnx.

The input convention (RGB, (x - 127.5) / 127.5 on 0..255 pixels, NCHW) is checked by comparing
with the exported network run in PyTorch on inputs prepared independently in the test.
onnx / onnxruntime are optional; the tests skip without them, except in CI (CI=true).
"""
from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest
import torch
from torch import nn

from face_photos import photo, points5
from models.identity import ArcFaceOnnxConfig, ArcFaceOnnxEmbedder, MissingDependencyError, arcface_crops
from models.loading import ModelFileError


def require_onnx() -> None:
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        reason = f"{', '.join(missing)} not installed (pip install onnx onnxruntime)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}: the ArcFace ONNX tests must run in CI")
        pytest.skip(reason)


class TinyRecognizer(nn.Module):
    """Same signature as w600k_r50: (N, 3, 112, 112) float -> (N, 512), not normalised."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, kernel_size=8, stride=8)
        self.fc = nn.Linear(4 * 14 * 14, 512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def export(model: nn.Module, path, dynamic_batch: bool = True, rename_first: tuple[str, ...] = ()) -> None:
    import onnx

    kwargs = {"dynamic_axes": {"input.1": {0: "None"}, "embedding": {0: "None"}}} if dynamic_batch else {}
    torch.onnx.export(model.eval(), (torch.zeros(1, 3, 112, 112),), str(path), input_names=["input.1"],
                      output_names=["embedding"], dynamo=False, **kwargs)
    if rename_first:  # node names as in MXNet-converted models, which normalise inside the graph
        graph = onnx.load(str(path))
        for node, name in zip(graph.graph.node, rename_first):
            node.name = name
        onnx.save(graph, str(path))


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    require_onnx()
    folder = tmp_path_factory.mktemp("arcface")
    model = TinyRecognizer()
    export(model, folder / "dynamic.onnx")
    export(model, folder / "batch1.onnx", dynamic_batch=False)
    export(model, folder / "mxnet_style.onnx", rename_first=("Sub_0", "Mul_1"))
    return {"model": model, "folder": folder}


def reference(model: nn.Module, crops_rgb01: np.ndarray, mean: float = 127.5, std: float = 127.5) -> np.ndarray:
    x = torch.from_numpy(crops_rgb01).permute(0, 3, 1, 2) * 255.0
    with torch.no_grad():
        out = model((x - mean) / std).numpy()
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def random_crops(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 112, 112, 3), dtype=np.float32)


def test_embeddings_follow_insightface_input_convention(model_files):
    embedder = ArcFaceOnnxEmbedder(model_files["folder"] / "dynamic.onnx")
    crops = random_crops(3)
    out = embedder.embed_crops(crops)
    assert out.shape == (3, 512) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out, reference(model_files["model"], crops), atol=1e-5)
    # BGR input would be a different embedding: the channel order matters to this network
    assert np.abs(out - reference(model_files["model"], crops[..., ::-1].copy())).max() > 1e-2
    assert (embedder.input_mean, embedder.input_std) == (127.5, 127.5)


def test_fixed_batch_models_run_face_by_face(model_files):
    crops = random_crops(3, seed=1)
    fixed = ArcFaceOnnxEmbedder(model_files["folder"] / "batch1.onnx")
    assert fixed.fixed_batch == 1
    np.testing.assert_allclose(fixed.embed_crops(crops), reference(model_files["model"], crops), atol=1e-5)
    assert fixed.embed_crops(np.zeros((0, 112, 112, 3), np.float32)).shape == (0, 512)


def test_graphs_that_normalise_themselves_get_raw_pixels(model_files):
    crops = random_crops(2, seed=2)
    embedder = ArcFaceOnnxEmbedder(model_files["folder"] / "mxnet_style.onnx")
    assert (embedder.input_mean, embedder.input_std) == (0.0, 1.0)
    np.testing.assert_allclose(embedder.embed_crops(crops), reference(model_files["model"], crops, 0.0, 1.0),
                               atol=1e-5)
    forced = ArcFaceOnnxEmbedder(model_files["folder"] / "mxnet_style.onnx",
                                 ArcFaceOnnxConfig(input_mean=127.5, input_std=127.5))
    np.testing.assert_allclose(forced.embed_crops(crops), reference(model_files["model"], crops), atol=1e-5)


def test_embed_aligns_the_faces_first(model_files):
    embedder = ArcFaceOnnxEmbedder(model_files["folder"] / "dynamic.onnx")
    image, p = photo("fr_alex_smile.png"), points5("fr_alex_smile.png")
    crops = arcface_crops(image[None], [p])
    np.testing.assert_allclose(embedder.embed(image[None], [p]), embedder.embed_crops(crops), atol=1e-6)


def test_bad_files_are_reported(model_files, tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        ArcFaceOnnxEmbedder(tmp_path / "w600k_r50.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="onnxruntime cannot load"):
        ArcFaceOnnxEmbedder(tmp_path / "junk.onnx")
    wide = tmp_path / "wide.onnx"  # not a 112 x 112 recogniser
    torch.onnx.export(nn.Conv2d(3, 3, 1), (torch.zeros(1, 3, 112, 96),), str(wide), dynamo=False)
    with pytest.raises(ModelFileError, match=r"\(N, 3, S, S\)"):
        ArcFaceOnnxEmbedder(wide)


def test_missing_onnxruntime_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match="pip install onnxruntime"):
        ArcFaceOnnxEmbedder(tmp_path / "w600k_r50.onnx")
