"""Reads a .tflite flatbuffer into plain Python values: tensors, constants and the operator list.

The flatbuffer accessors of the `tflite` package are lazy and verbose; everything downstream works
on the small frozen records below instead, so the schema is touched in this file only.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tflite

_DTYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.INT64: np.int64,
    tflite.TensorType.INT8: np.int8,
    tflite.TensorType.UINT8: np.uint8,
}
_OPERATOR_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_OPTION_CLASSES = {v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")}
_INDEX_VECTORS = {
    tflite.SparseIndexVector.Int32Vector: tflite.Int32Vector,
    tflite.SparseIndexVector.Uint16Vector: tflite.Uint16Vector,
    tflite.SparseIndexVector.Uint8Vector: tflite.Uint8Vector,
}


@dataclass(frozen=True)
class SparseDim:
    """One level of a sparse tensor's storage: dense with `size` entries, or CSR segments/indices."""

    size: int
    segments: np.ndarray | None = None
    indices: np.ndarray | None = None

    @property
    def dense(self) -> bool:
        return self.segments is None


@dataclass(frozen=True)
class Sparsity:
    """TFLite sparsity metadata; `dims` follow `traversal_order`, block dims come after the tensor's own."""

    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...]
    dims: tuple[SparseDim, ...]


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: type
    data: np.ndarray | None  # constants only; the stored values (the non-zeros when sparse)
    sparsity: Sparsity | None = None


@dataclass(frozen=True)
class OperatorInfo:
    index: int
    op: str  # builtin name such as "CONV_2D", or "CUSTOM:<code>"
    inputs: tuple[int, ...]  # -1 marks an omitted optional input
    outputs: tuple[int, ...]
    options: dict  # scalar builtin options by snake_case name, e.g. {"stride_h": 2, "padding": 0}


@dataclass(frozen=True)
class TFLiteGraph:
    path: Path
    tensors: tuple[TensorInfo, ...]
    operators: tuple[OperatorInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def read_tflite(path: str | Path) -> TFLiteGraph:
    """Parse the first subgraph of a .tflite file (the only one in single-model files)."""
    path = Path(path)
    raw = path.read_bytes()
    model = tflite.Model.GetRootAsModel(raw, 0)
    if model.SubgraphsLength() < 1:
        raise ValueError(f"{path}: the .tflite file holds no subgraph")
    graph = model.Subgraphs(0)
    tensors = tuple(_read_tensor(model, graph.Tensors(i), i, raw, path) for i in range(graph.TensorsLength()))
    operators = tuple(_read_operator(model, graph.Operators(i), i) for i in range(graph.OperatorsLength()))
    return TFLiteGraph(
        path=path,
        tensors=tensors,
        operators=operators,
        inputs=tuple(int(i) for i in graph.InputsAsNumpy()),
        outputs=tuple(int(i) for i in graph.OutputsAsNumpy()),
    )


def _read_tensor(model, tensor, index: int, raw: bytes, path: Path) -> TensorInfo:
    name = tensor.Name().decode("utf-8", "replace")
    dtype = _DTYPES.get(tensor.Type())
    if dtype is None:
        raise ValueError(f"{path}: tensor {name!r} has TFLite type {tensor.Type()}, which this runtime does not read")
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    buffer = model.Buffers(tensor.Buffer())
    data = None
    offset = buffer.Offset() if hasattr(buffer, "Offset") else 0  # field added in tflite 2.14's schema
    if offset > 1:  # models over 2 GB keep buffers after the flatbuffer, addressed by offset/size
        data = np.frombuffer(raw, np.uint8, count=buffer.Size(), offset=offset)
    elif buffer.DataLength() > 0:
        data = buffer.DataAsNumpy()
    sparsity = _read_sparsity(tensor.Sparsity())
    if data is not None:
        data = np.frombuffer(data.tobytes(), dtype=dtype)
        if sparsity is None:
            data = data.reshape(shape)
    return TensorInfo(index, name, shape, dtype, data, sparsity)


def _read_sparsity(params) -> Sparsity | None:
    if params is None:
        return None
    dims = []
    for i in range(params.DimMetadataLength()):
        meta = params.DimMetadata(i)
        if meta.Format() == tflite.DimensionType.DENSE:
            dims.append(SparseDim(int(meta.DenseSize())))
            continue
        segments = _index_vector(meta.ArraySegmentsType(), meta.ArraySegments())
        indices = _index_vector(meta.ArrayIndicesType(), meta.ArrayIndices())
        dims.append(SparseDim(0, segments, indices))
    return Sparsity(
        traversal_order=tuple(int(v) for v in params.TraversalOrderAsNumpy()) if params.TraversalOrderLength() else (),
        block_map=tuple(int(v) for v in params.BlockMapAsNumpy()) if params.BlockMapLength() else (),
        dims=tuple(dims),
    )


def _index_vector(kind: int, table) -> np.ndarray:
    vector = _INDEX_VECTORS[kind]()
    vector.Init(table.Bytes, table.Pos)
    return np.asarray(vector.ValuesAsNumpy(), dtype=np.int64)


def _read_operator(model, op, index: int) -> OperatorInfo:
    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())  # schema v3 split the field in two
    name = _OPERATOR_NAMES.get(builtin, f"BUILTIN_{builtin}")
    if builtin == tflite.BuiltinOperator.CUSTOM:
        name = "CUSTOM:" + code.CustomCode().decode("utf-8", "replace")
    return OperatorInfo(
        index=index,
        op=name,
        inputs=tuple(int(i) for i in op.InputsAsNumpy()) if op.InputsLength() else (),
        outputs=tuple(int(i) for i in op.OutputsAsNumpy()) if op.OutputsLength() else (),
        options=_read_options(op),
    )


def _read_options(op) -> dict:
    """All scalar fields of the operator's builtin options table, keyed in snake_case."""
    class_name = _OPTION_CLASSES.get(op.BuiltinOptionsType())
    table = op.BuiltinOptions()
    if class_name is None or class_name == "NONE" or table is None:
        return {}
    options = getattr(tflite, class_name)()
    options.Init(table.Bytes, table.Pos)
    values = {}
    for attr, method in inspect.getmembers(options, inspect.ismethod):
        if not attr[0].isupper() or attr in ("Init",) or attr.startswith("GetRootAs"):
            continue
        if attr.endswith(("AsNumpy", "Length", "IsNone", "BufferHasIdentifier")):
            continue
        if len(inspect.signature(method).parameters) == 0:
            values[_snake(attr)] = method()
    return values


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
