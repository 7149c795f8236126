"""TFLite builtin operators as torch functions, working on NCHW activations.

TFLite lays images out NHWC; torch's convolutions want NCHW. The runtime keeps every rank-4 tensor
NCHW and leaves tensors of other ranks in TFLite's own layout, so only the operators that move data
between ranks (RESHAPE) or name an axis (CONCATENATION, PAD) translate. Constants are converted once
at load time to the layout their consumer wants (see `Kernel.layouts`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import tflite
import torch
import torch.nn.functional as F
from torch import Tensor

_NCHW_AXIS_OF_NHWC = (0, 2, 3, 1)  # NHWC axis a is NCHW axis _NCHW_AXIS_OF_NHWC[a]
_NHWC_AXIS_OF_NCHW = (0, 3, 1, 2)


class UnsupportedOperatorError(RuntimeError):
    """The .tflite file uses an operator (or an operator option) this runtime does not implement."""


@dataclass(frozen=True)
class Node:
    """One operator as the kernels see it: its options, int constants, and output's TFLite shape."""

    op: str
    options: dict
    out_shape: tuple[int, ...]
    static: dict[int, tuple[int, ...]]  # int constant inputs, flattened
    activation: Callable[[Tensor], Tensor]  # the fused activation, identity when none


@dataclass(frozen=True)
class Kernel:
    """`fn(inputs, node)`; `layouts[position]` says how a constant at that input is stored.

    Layouts: "oihw" (conv filter), "depthwise" (depthwise filter), "plain" (as in the file),
    "static" (int values put in `Node.static`), "channels" (a (1, .., 1, C) constant becomes a
    (C,) vector, others as "activation"), default "activation" (rank-4 or broadcast against a
    rank-4 output: moved to NCHW).
    """

    fn: Callable[[list[Tensor | None], Node], Tensor]
    layouts: dict[int, str] = field(default_factory=dict)


_ACTIVATIONS: dict[int, Callable[[Tensor], Tensor]] = {
    tflite.ActivationFunctionType.NONE: lambda x: x,
    tflite.ActivationFunctionType.RELU: F.relu,
    tflite.ActivationFunctionType.RELU_N1_TO_1: lambda x: x.clamp(-1.0, 1.0),
    tflite.ActivationFunctionType.RELU6: lambda x: x.clamp(0.0, 6.0),
    tflite.ActivationFunctionType.TANH: torch.tanh,
}


def fused_activation(options: dict) -> Callable[[Tensor], Tensor]:
    code = options.get("fused_activation_function", tflite.ActivationFunctionType.NONE)
    if code not in _ACTIVATIONS:
        raise UnsupportedOperatorError(f"fused activation {code} is not supported")
    return _ACTIVATIONS[code]


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite's SAME padding: output ceil(size / stride), the odd pixel of padding goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _spatial_padding(x: Tensor, node: Node, kh: int, kw: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding of a windowed operator."""
    if node.options["padding"] == tflite.Padding.VALID:
        return 0, 0, 0, 0
    top, bottom = same_padding(x.shape[2], kh, node.options["stride_h"], node.options.get("dilation_h_factor", 1))
    left, right = same_padding(x.shape[3], kw, node.options["stride_w"], node.options.get("dilation_w_factor", 1))
    return left, right, top, bottom


def _pad_spatial(x: Tensor, node: Node, kh: int, kw: int, value: float = 0.0) -> Tensor:
    padding = _spatial_padding(x, node, kh, kw)
    return F.pad(x, padding, value=value) if any(padding) else x


def _conv(xs: list[Tensor | None], node: Node, groups: int) -> Tensor:
    x, weight, bias = xs[0], xs[1], xs[2] if len(xs) > 2 else None
    left, right, top, bottom = _spatial_padding(x, node, weight.shape[2], weight.shape[3])
    inside = (0, 0)
    if left == right and top == bottom:  # the convolution pads symmetrically itself, without a copy
        inside = (top, left)
    else:
        x = F.pad(x, (left, right, top, bottom))
    o = node.options
    y = F.conv2d(x, weight, bias, (o["stride_h"], o["stride_w"]), inside,
                 (o["dilation_h_factor"], o["dilation_w_factor"]), groups)
    return node.activation(y)


def conv_2d(xs, node):
    return _conv(xs, node, groups=xs[0].shape[1] // xs[1].shape[1])


def depthwise_conv_2d(xs, node):
    return _conv(xs, node, groups=xs[0].shape[1])


def _pool_window(node: Node) -> tuple[tuple[int, int], tuple[int, int]]:
    o = node.options
    return (o["filter_height"], o["filter_width"]), (o["stride_h"], o["stride_w"])


def max_pool_2d(xs, node):
    window, stride = _pool_window(node)
    x = _pad_spatial(xs[0], node, *window, value=float("-inf"))
    return node.activation(F.max_pool2d(x, window, stride))


def average_pool_2d(xs, node):
    """TFLite averages over the window's in-image pixels only, so padding is left out of the count."""
    window, stride = _pool_window(node)
    x = xs[0]
    ones = torch.ones_like(x[:1, :1])
    total = F.avg_pool2d(_pad_spatial(x, node, *window), window, stride)
    count = F.avg_pool2d(_pad_spatial(ones, node, *window), window, stride)
    return node.activation(total / count)


def add(xs, node):
    return node.activation(xs[0] + xs[1])


def mul(xs, node):
    return node.activation(xs[0] * xs[1])


def prelu(xs, node):
    x, alpha = xs
    if alpha.dim() == 1:  # one slope per channel
        return F.prelu(x, alpha)
    return torch.where(x >= 0, x, x * alpha)


def pad(xs, node):
    x = xs[0]
    pairs = node.static[1]
    per_dim = [pairs[2 * d: 2 * d + 2] for d in range(x.dim())]
    if x.dim() == 4:
        per_dim = [per_dim[a] for a in _NHWC_AXIS_OF_NCHW]
    flat = [v for pair in reversed(per_dim) for v in pair]  # F.pad lists the last dimension first
    return F.pad(x, flat)


def reshape(xs, node):
    """Reshape in TFLite's memory order; the leading (batch) dimension follows the input."""
    x = xs[0]
    if x.dim() == 4:
        x = x.permute(0, 2, 3, 1)
    y = x.reshape((-1,) + tuple(node.out_shape[1:]))
    return y.permute(0, 3, 1, 2) if y.dim() == 4 else y


def concatenation(xs, node):
    axis = node.options["axis"] % len(node.out_shape)
    if len(node.out_shape) == 4:
        axis = _NCHW_AXIS_OF_NHWC[axis]
    return node.activation(torch.cat(xs, dim=axis))


def resize_bilinear(xs, node):
    align, half_pixel = node.options["align_corners"], node.options["half_pixel_centers"]
    if not (align or half_pixel):
        raise UnsupportedOperatorError("RESIZE_BILINEAR without align_corners or half_pixel_centers is not supported")
    size = tuple(node.static[1])
    return F.interpolate(xs[0], size=size, mode="bilinear", align_corners=bool(align))


def depth_to_space(xs, node):
    """TFLite orders the output block (row, column) before the channel; torch's pixel_shuffle after it."""
    x = xs[0]
    b, c, h, w = x.shape
    s = node.options["block_size"]
    y = x.reshape(b, s, s, c // (s * s), h, w).permute(0, 3, 4, 1, 5, 2)
    return y.reshape(b, c // (s * s), h * s, w * s)


def logistic(xs, node):
    return torch.sigmoid(xs[0])


def relu(xs, node):
    return F.relu(xs[0])


def relu6(xs, node):
    return xs[0].clamp(0.0, 6.0)


KERNELS: dict[str, Kernel] = {
    "CONV_2D": Kernel(conv_2d, {1: "oihw", 2: "plain"}),
    "DEPTHWISE_CONV_2D": Kernel(depthwise_conv_2d, {1: "depthwise", 2: "plain"}),
    "MAX_POOL_2D": Kernel(max_pool_2d),
    "AVERAGE_POOL_2D": Kernel(average_pool_2d),
    "ADD": Kernel(add),
    "MUL": Kernel(mul),
    "PRELU": Kernel(prelu, {1: "channels"}),
    "PAD": Kernel(pad, {1: "static"}),
    "RESHAPE": Kernel(reshape, {1: "static"}),
    "CONCATENATION": Kernel(concatenation),
    "RESIZE_BILINEAR": Kernel(resize_bilinear, {1: "static"}),
    "DEPTH_TO_SPACE": Kernel(depth_to_space),
    "LOGISTIC": Kernel(logistic),
    "RELU": Kernel(relu),
    "RELU6": Kernel(relu6),
}
