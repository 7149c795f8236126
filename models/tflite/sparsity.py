"""Expands a TFLite sparse constant (the input of a DENSIFY operator) into a dense array.

TFLite stores such a tensor as a tree: each level of `traversal_order` is either dense (every
coordinate present) or CSR (a segment per parent node, listing the coordinates that hold values).
Optional block dimensions (listed after the tensor's own and mapped by `block_map`) tile a dense
dimension into blocks. The walk below expands the tree one level at a time for all paths at once.
"""
from __future__ import annotations

import numpy as np

from .reader import Sparsity


def densify(values: np.ndarray, shape: tuple[int, ...], sparsity: Sparsity) -> np.ndarray:
    rank = len(shape)
    order = sparsity.traversal_order or tuple(range(rank))
    block_sizes = [sparsity.dims[order.index(rank + k)].size for k in range(len(sparsity.block_map))]

    parents = np.zeros(1, dtype=np.int64)  # position of each path in the storage of its level
    coords = np.zeros((1, len(order)), dtype=np.int64)  # per path, coordinate of each expanded dim
    for level, dim in enumerate(sparsity.dims):
        if dim.dense:
            children = np.arange(dim.size, dtype=np.int64)
            parents, child = (parents[:, None] * dim.size + children).ravel(), np.tile(children, len(parents))
            coords = np.repeat(coords, dim.size, axis=0)
        else:
            starts, ends = dim.segments[parents], dim.segments[parents + 1]
            counts = ends - starts
            coords = np.repeat(coords, counts, axis=0)
            parents = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(starts) else parents[:0]
            child = dim.indices[parents]
        coords[:, order[level]] = child

    index = coords[:, :rank].copy()
    for k, dim_of_block in enumerate(sparsity.block_map):
        index[:, dim_of_block] = index[:, dim_of_block] * block_sizes[k] + coords[:, rank + k]
    dense = np.zeros(shape, dtype=values.dtype)
    dense[tuple(index.T)] = values[parents]
    return dense
