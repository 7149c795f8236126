"""A TFLite graph as a torch nn.Module: constants become buffers, operators run in file order.

Layout contract: rank-4 graph inputs are taken NCHW, e.g. (B, 3, H, W) for an image model whose
TFLite input is (1, H, W, 3); rank-4 outputs are returned in TFLite's NHWC order; the batch
dimension may be any size although the file says 1. Constants are stored float32 and follow
`.to(device, dtype)`; inputs are cast to the module's dtype. Rank-4 activations are kept in
channels-last memory (NHWC bytes behind NCHW indexing): about twice as fast on CPU for these
depthwise-heavy networks, and what TFLite's own reshapes expect, so they cost no copy.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .ops import KERNELS, Kernel, Node, UnsupportedOperatorError, fused_activation
from .reader import TensorInfo, TFLiteGraph, read_tflite
from .sparsity import densify


@dataclass(frozen=True)
class _Step:
    kernel: Kernel
    node: Node
    inputs: tuple[str | int | None, ...]  # buffer name, activation tensor index, or None (omitted)
    output: int
    release: tuple[int, ...]  # activations no later step reads


class TFLiteModule(nn.Module):
    def __init__(self, graph: TFLiteGraph):
        super().__init__()
        self.source = graph.path
        tensors = graph.tensors
        constants = {t.index: t.data for t in tensors if t.data is not None and t.sparsity is None}
        operators = []
        for op in graph.operators:
            if op.op in ("DEQUANTIZE", "DENSIFY"):
                constants[op.outputs[0]] = _fold(op.op, tensors[op.inputs[0]], constants, graph.path)
            else:
                operators.append(op)

        self._input_ids = graph.inputs
        self._output_ids = graph.outputs
        self.input_shapes = tuple(tensors[i].shape for i in graph.inputs)
        self.output_names = tuple(tensors[i].name for i in graph.outputs)
        steps = []
        for op in operators:
            kernel = KERNELS.get(op.op)
            if kernel is None:
                raise UnsupportedOperatorError(
                    f"{graph.path.name}: operator #{op.index} {op.op} is not supported by the PyTorch TFLite "
                    f"runtime (supported: {', '.join(sorted(KERNELS))})"
                )
            if len(op.outputs) != 1:
                raise UnsupportedOperatorError(f"{graph.path.name}: operator #{op.index} {op.op} has several outputs")
            out_rank = len(tensors[op.outputs[0]].shape)
            static, refs = {}, []
            for position, index in enumerate(op.inputs):
                if index < 0:
                    refs.append(None)
                elif index not in constants:
                    refs.append(index)
                elif kernel.layouts.get(position) == "static":
                    static[position] = tuple(int(v) for v in constants[index].ravel())
                    refs.append(None)
                else:
                    layout = kernel.layouts.get(position, "activation")
                    refs.append(self._constant_buffer(index, constants[index], layout, out_rank))
            try:
                node = Node(op.op, op.options, tensors[op.outputs[0]].shape, static, fused_activation(op.options))
            except UnsupportedOperatorError as error:
                raise UnsupportedOperatorError(f"{graph.path.name}: operator #{op.index} {op.op}: {error}") from None
            steps.append(_Step(kernel, node, tuple(refs), op.outputs[0], ()))
        self._steps = _with_releases(steps, graph.outputs)

    @classmethod
    def from_file(cls, path: str | Path) -> "TFLiteModule":
        return cls(read_tflite(path))

    @property
    def dtype(self) -> torch.dtype:
        return next(b.dtype for b in self.buffers() if b.is_floating_point())

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        if len(inputs) != len(self._input_ids):
            raise ValueError(f"{self.source.name} takes {len(self._input_ids)} input(s), got {len(inputs)}")
        values: dict[int, Tensor] = {}
        for index, shape, x in zip(self._input_ids, self.input_shapes, inputs):
            expected = (shape[3], shape[1], shape[2]) if len(shape) == 4 else tuple(shape[1:])
            if tuple(x.shape[1:]) != expected:
                want = ", ".join(map(str, expected))
                raise ValueError(f"{self.source.name} expects input (B, {want}), got {tuple(x.shape)}")
            x = x.to(self.dtype)
            values[index] = x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
        for step in self._steps:
            xs = [None if r is None else self._buffers[r] if isinstance(r, str) else values[r] for r in step.inputs]
            values[step.output] = step.kernel.fn(xs, step.node)
            for index in step.release:
                del values[index]
        return tuple(values[i].permute(0, 2, 3, 1) if values[i].dim() == 4 else values[i] for i in self._output_ids)

    def _constant_buffer(self, index: int, array: np.ndarray, layout: str, out_rank: int) -> str:
        name = f"c{index}_{layout}"
        if name not in self._buffers:
            tensor = torch.from_numpy(np.ascontiguousarray(_to_layout(array, layout, out_rank)))
            if tensor.is_floating_point():
                tensor = tensor.float()
            self.register_buffer(name, tensor, persistent=False)
        return name


def _fold(op: str, source: TensorInfo, constants: dict[int, np.ndarray], path: Path) -> np.ndarray:
    """DEQUANTIZE and DENSIFY only ever read weights: evaluate them once, at load time."""
    if op == "DENSIFY":
        if source.sparsity is None or source.data is None:
            raise UnsupportedOperatorError(f"{path.name}: DENSIFY of {source.name!r}, which is not a sparse constant")
        return densify(source.data, source.shape, source.sparsity)
    if source.index not in constants:
        raise UnsupportedOperatorError(f"{path.name}: DEQUANTIZE of the non-constant tensor {source.name!r}")
    value = constants[source.index]
    if value.dtype != np.float16:
        raise UnsupportedOperatorError(
            f"{path.name}: DEQUANTIZE of {value.dtype} tensor {source.name!r} (only float16 is supported)")
    return value.astype(np.float32)


def _to_layout(array: np.ndarray, layout: str, out_rank: int) -> np.ndarray:
    if layout == "oihw":  # TFLite filters are (out, h, w, in)
        return array.transpose(0, 3, 1, 2)
    if layout == "depthwise":  # (1, h, w, channels * multiplier) -> (channels * multiplier, 1, h, w)
        return array.transpose(3, 0, 1, 2)
    if layout == "channels" and out_rank == 4 and array.ndim >= 1 and all(d == 1 for d in array.shape[:-1]):
        return array.reshape(-1)
    if layout in ("activation", "channels") and out_rank == 4:
        return array.reshape((1,) * (4 - array.ndim) + array.shape).transpose(0, 3, 1, 2)
    return array


def _with_releases(steps: list[_Step], outputs: tuple[int, ...]) -> tuple[_Step, ...]:
    """Mark each activation for release after its last reader, keeping peak memory to a few maps."""
    last_read = {}
    for position, step in enumerate(steps):
        for ref in step.inputs:
            if isinstance(ref, int):
                last_read[ref] = position
    released = [[] for _ in steps]
    for index, position in last_read.items():
        if index not in outputs:
            released[position].append(index)
    return tuple(
        _Step(s.kernel, s.node, s.inputs, s.output, tuple(r)) for s, r in zip(steps, released)
    )
