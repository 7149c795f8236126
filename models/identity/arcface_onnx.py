"""InsightFace ArcFace recognisers from users' ONNX files (`w600k_r50.onnx`, `glintr100.onnx`).

Users of InstantID / PuLID-style packs usually have these in `ComfyUI/models/insightface/models/`
(buffalo_l, antelopev2); this runs them with onnxruntime, imported when an embedder is built.

Input convention, as InsightFace's `ArcFaceONNX.get_feat` applies it: a 112 x 112 crop aligned to
the ArcFace template, channels **RGB** (InsightFace holds BGR images from cv2 and converts with
`blobFromImages(..., swapRB=True)`), NCHW float32, `(pixel - 127.5) / 127.5` with pixels in
0..255. Models converted from MXNet carry that normalisation inside the graph; InsightFace detects
them by `Sub` and `Mul` nodes among the first eight graph nodes and feeds raw 0..255 pixels, and so
does this class when the `onnx` package is there to read the graph (without it, and unless the
config says otherwise, 127.5 / 127.5 is used, which is right for w600k_r50 and glintr100).
The output is the embedding divided by its length (InsightFace's `normed_embedding`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import torch

from ..loading import ModelFileError
from .alignment import Face, arcface_crops
from .optional import import_optional

PYTORCH_STYLE = (127.5, 127.5)  # (mean, std) on 0..255 pixels
MXNET_STYLE = (0.0, 1.0)  # the graph normalises itself


@dataclass(frozen=True)
class ArcFaceOnnxConfig:
    input_mean: float | None = None  # None: InsightFace's rule (see the module docstring)
    input_std: float | None = None
    antialias: bool = True  # prefilter when cropping; False = InsightFace's plain bilinear crop
    providers: tuple[str, ...] = ("CPUExecutionProvider",)


def graph_normalises_itself(model_path: str | PathLike[str]) -> bool | None:
    """InsightFace's test for MXNet-converted graphs; None when `onnx` is not installed to read it."""
    try:
        import onnx
    except ImportError:
        return None
    names = [node.name for node in onnx.load(str(model_path), load_external_data=False).graph.node[:8]]
    has_sub = any(n.startswith(("Sub", "_minus")) for n in names)
    has_mul = any(n.startswith(("Mul", "_mul")) for n in names)
    return has_sub and has_mul


class ArcFaceOnnxEmbedder:
    """Unit-length ArcFace embeddings (512-d for InsightFace's models) of aligned faces."""

    def __init__(self, model_path: str | PathLike[str], config: ArcFaceOnnxConfig = ArcFaceOnnxConfig()):
        ort = import_optional("onnxruntime", "onnxruntime", "The ArcFace ONNX identity scorer")
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelFileError(self.model_path, "ArcFace ONNX model not found (InsightFace's w600k_r50.onnx from "
                                                  "buffalo_l or glintr100.onnx from antelopev2)")
        self.config = config
        try:
            self._session = ort.InferenceSession(str(self.model_path), providers=list(config.providers))
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
            raise ModelFileError(self.model_path, f"onnxruntime cannot load this model ({exc})") from exc
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(self.model_path, f"expected one input and one output (a recognition model), "
                                                  f"found {len(inputs)} inputs and {len(outputs)} outputs")
        shape = inputs[0].shape
        if len(shape) != 4 or shape[1] != 3 or shape[2] != shape[3] or not isinstance(shape[2], int):
            raise ModelFileError(self.model_path, f"expected an input of shape (N, 3, S, S), found {shape}")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        self.input_size = int(shape[2])
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self.embedding_dim = outputs[0].shape[-1] if isinstance(outputs[0].shape[-1], int) else None
        self.input_mean, self.input_std = self._normalisation(config)

    def _normalisation(self, config: ArcFaceOnnxConfig) -> tuple[float, float]:
        mean, std = MXNET_STYLE if graph_normalises_itself(self.model_path) else PYTORCH_STYLE
        return (mean if config.input_mean is None else config.input_mean,
                std if config.input_std is None else config.input_std)

    def embed_crops(self, crops: torch.Tensor | np.ndarray) -> np.ndarray:
        """(N, S, S, 3) aligned RGB crops in [0, 1] -> (N, D) float32 unit-length embeddings."""
        if isinstance(crops, torch.Tensor):
            crops = crops.detach().to("cpu", torch.float32).numpy()
        crops = np.asarray(crops, dtype=np.float32)
        size = self.input_size
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3):
            raise ValueError(f"crops must be (N, {size}, {size}, 3) RGB in [0, 1], got {crops.shape}")
        blob = (crops.transpose(0, 3, 1, 2) * 255.0 - self.input_mean) / self.input_std
        blob = np.ascontiguousarray(blob, dtype=np.float32)
        step = self.fixed_batch or max(len(blob), 1)
        parts = [self._session.run([self.output_name], {self.input_name: blob[i:i + step]})[0]
                 for i in range(0, len(blob), step)]
        if not parts:
            return np.zeros((0, self.embedding_dim or 0), np.float32)
        out = np.concatenate(parts).reshape(len(blob), -1).astype(np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def embed(self, images: torch.Tensor, faces: Sequence[Face]) -> np.ndarray:
        """(B, H, W, 3) images in [0, 1] and N faces (FaceDetections or 5 points) -> (N, D) unit embeddings."""
        crops = arcface_crops(images, faces, self.input_size, antialias=self.config.antialias)
        return self.embed_crops(crops)
