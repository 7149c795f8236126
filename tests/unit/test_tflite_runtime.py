"""models.tflite: the PyTorch TFLite runtime, on mediapipe's three face models and on small cases
whose answers are worked out by hand from TFLite's definitions."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from models.faces.mediapipe_files import find_mediapipe_models
from models.tflite import TFLiteModule, UnsupportedOperatorError, read_tflite
from models.tflite.module import _to_layout
from models.tflite.ops import KERNELS, Node, average_pool_2d, depth_to_space, fused_activation, prelu, same_padding
from models.tflite.reader import SparseDim, Sparsity
from models.tflite.sparsity import densify

FOLDED = {"DEQUANTIZE", "DENSIFY"}
EXPECTED_OPS = {
    "short_range": {"CONV_2D", "DEPTHWISE_CONV_2D", "RELU", "ADD", "PAD", "MAX_POOL_2D", "RESHAPE", "CONCATENATION",
                    "DEQUANTIZE"},
    "full_range": {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "PAD", "RESIZE_BILINEAR", "DEPTH_TO_SPACE", "RESHAPE",
                   "DEQUANTIZE", "DENSIFY"},
    "face_mesh": {"CONV_2D", "DEPTHWISE_CONV_2D", "PRELU", "ADD", "PAD", "MAX_POOL_2D", "DEQUANTIZE"},
}


@pytest.fixture(scope="module")
def model_files():
    try:
        return find_mediapipe_models([])
    except FileNotFoundError as error:
        pytest.skip(str(error))


def node(op: str, **options) -> Node:
    return Node(op, options, (), {}, fused_activation(options))


def test_same_padding_puts_the_odd_pixel_after():
    assert same_padding(128, 5, 2) == (1, 2)  # BlazeFace's first conv: 64 outputs need 131 inputs
    assert same_padding(96, 3, 1) == (1, 1)
    assert same_padding(64, 2, 2) == (0, 0)
    assert same_padding(9, 3, 1, dilation=2) == (2, 2)


def test_average_pool_same_leaves_padding_out_of_the_count():
    x = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    y = average_pool_2d([x], node("AVERAGE_POOL_2D", padding=0, stride_h=2, stride_w=2, filter_height=2,
                                  filter_width=2, fused_activation_function=0))
    # SAME on 3 with stride 2: 2 outputs, one pixel of padding after; edge windows average what they cover.
    expected = torch.tensor([[(1 + 2 + 4 + 5) / 4, (3 + 6) / 2], [(7 + 8) / 2, 9.0]])
    assert torch.allclose(y[0, 0], expected)


def test_depth_to_space_uses_tflite_channel_order():
    nhwc = np.arange(2 * 3 * 8, dtype=np.float32).reshape(1, 2, 3, 8)  # block 2, 2 output channels
    expected = np.zeros((1, 4, 6, 2), np.float32)
    for h in range(2):
        for w in range(3):
            for i in range(2):
                for j in range(2):
                    expected[0, h * 2 + i, w * 2 + j] = nhwc[0, h, w, (i * 2 + j) * 2:(i * 2 + j) * 2 + 2]
    y = depth_to_space([torch.from_numpy(nhwc).permute(0, 3, 1, 2)], node("DEPTH_TO_SPACE", block_size=2))
    assert np.array_equal(y.permute(0, 2, 3, 1).numpy(), expected)


def test_prelu_per_channel_and_per_position():
    x = torch.tensor([-2.0, 3.0]).reshape(1, 1, 1, 2).repeat(1, 2, 1, 1)  # NCHW, 2 channels
    per_channel = torch.from_numpy(_to_layout(np.array([[[0.5, 0.25]]], np.float32), "channels", 4))
    assert per_channel.shape == (2,)
    assert torch.equal(prelu([x, per_channel], node("PRELU"))[0, :, 0], torch.tensor([[-1.0, 3], [-0.5, 3]]))
    per_position = torch.from_numpy(_to_layout(np.array([[[0.5], [0.1]]], np.float32), "channels", 4))
    assert per_position.shape == (1, 1, 1, 2)  # (H=1, W=2, C=1) slopes broadcast over the channels
    assert torch.allclose(prelu([x, per_position], node("PRELU"))[0, :, 0], torch.tensor([[-1.0, 3], [-1, 3]]))


def test_densify_csr_and_blocks():
    # 3x4, rows dense, columns CSR: row 0 has (0, 1.0) (3, 2.0), row 1 nothing, row 2 (2, 3.0).
    csr = Sparsity((0, 1), (), (SparseDim(3), SparseDim(0, np.array([0, 2, 2, 3]), np.array([0, 3, 2]))))
    dense = densify(np.array([1.0, 2.0, 3.0], np.float32), (3, 4), csr)
    assert np.array_equal(dense, [[1, 0, 0, 2], [0, 0, 0, 0], [0, 0, 3, 0]])
    # 2x4 in 1x2 blocks: block rows dense, block columns CSR (block 1 of row 0, block 0 of row 1).
    blocked = Sparsity((0, 1, 2), (1,), (SparseDim(2), SparseDim(0, np.array([0, 1, 2]), np.array([1, 0])),
                                          SparseDim(2)))
    dense = densify(np.array([1.0, 2.0, 3.0, 4.0], np.float32), (2, 4), blocked)
    assert np.array_equal(dense, [[0, 0, 1, 2], [3, 4, 0, 0]])


@pytest.mark.parametrize("name", sorted(EXPECTED_OPS))
def test_each_model_uses_only_supported_operators(model_files, name):
    graph = read_tflite(getattr(model_files, name))
    ops = {op.op for op in graph.operators}
    assert ops == EXPECTED_OPS[name]
    assert ops <= set(KERNELS) | FOLDED


def test_sparse_weights_are_densified(model_files):
    graph = read_tflite(model_files.full_range)
    sparse = [t for t in graph.tensors if t.sparsity is not None]
    assert len(sparse) == 46
    for tensor in sparse[:5]:
        dense = densify(tensor.data, tensor.shape, tensor.sparsity)
        assert dense.shape == tensor.shape
        assert np.count_nonzero(dense) == np.count_nonzero(tensor.data)


def test_unsupported_operator_names_operator_and_file(model_files):
    graph = read_tflite(model_files.face_mesh)
    operators = list(graph.operators)
    operators[5] = dataclasses.replace(operators[5], op="SOFTMAX")
    with pytest.raises(UnsupportedOperatorError, match=r"face_landmark\.tflite: operator #5 SOFTMAX"):
        TFLiteModule(dataclasses.replace(graph, operators=tuple(operators)))


@pytest.mark.parametrize("name,size,outputs", [
    ("short_range", 128, [(896, 16), (896, 1)]),
    ("full_range", 192, [(2304, 16), (2304, 1)]),
    ("face_mesh", 192, [(1, 1, 1404), (1, 1, 1)]),
])
def test_module_is_batched_and_follows_dtype(model_files, name, size, outputs):
    module = TFLiteModule.from_file(getattr(model_files, name)).eval()
    assert all(not p for p in module.state_dict())  # constants are non-persistent buffers
    x = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        batched = module(x)
        singles = [module(x[i:i + 1]) for i in range(3)]
        half = module.to(torch.float16)(x[:1])  # float32 input, cast by the module
    assert [tuple(y.shape[1:]) for y in batched] == outputs
    for k, y in enumerate(batched):
        assert y.shape[0] == 3
        assert torch.allclose(y, torch.cat([s[k] for s in singles]), atol=1e-3, rtol=1e-4)
        assert half[k].dtype == torch.float16
        assert (half[k].float() - y[:1]).abs().max() < 0.01 * max(1.0, float(y.abs().max()))


@pytest.mark.parametrize("name", sorted(EXPECTED_OPS))
def test_raw_outputs_match_the_tflite_interpreter(model_files, name):
    interpreter_module = pytest.importorskip("ai_edge_litert.interpreter")
    path = getattr(model_files, name)
    interpreter = interpreter_module.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]
    x = np.random.default_rng(1).uniform(-1, 1, source["shape"]).astype(np.float32)
    interpreter.set_tensor(source["index"], x)
    interpreter.invoke()
    expected = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    with torch.no_grad():
        ours = TFLiteModule.from_file(path).eval()(torch.from_numpy(x).permute(0, 3, 1, 2))
    for y, ref in zip(ours, expected):
        assert y.shape == ref.shape
        assert np.abs(y.numpy() - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())  # float32 rounding only
