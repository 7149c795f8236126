"""Which samples each process trains on, as a pure function of (seed, epoch): exact resumption.

Every process draws the same permutation of the dataset for an epoch, pads it by wrapping around
to a whole number of global batches, and takes every world_size-th sample from its rank on, so the
processes' shards partition the epoch. A resumed run skips the batches this epoch already used.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


def batches_per_epoch(size: int, world_size: int, batch_size: int) -> int:
    """Per-process batches in one epoch (the last global batch is completed by wrapping around)."""
    return math.ceil(size / (world_size * batch_size))


def shard_order(size: int, world_size: int, rank: int, batch_size: int, seed: int, epoch: int) -> list[int]:
    """This rank's sample indices for one epoch, batches_per_epoch * batch_size of them."""
    if size <= 0:
        raise ValueError("the dataset is empty")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(size, generator=generator).tolist()
    total = batches_per_epoch(size, world_size, batch_size) * world_size * batch_size
    order = (order * math.ceil(total / size))[:total]
    return order[rank::world_size]


class EpochShardSampler(Sampler[int]):
    """shard_order for one epoch, starting after `skip_batches` batches."""

    def __init__(self, size: int, world_size: int, rank: int, batch_size: int, seed: int, epoch: int,
                 skip_batches: int = 0):
        self.indices = shard_order(size, world_size, rank, batch_size, seed, epoch)[skip_batches * batch_size:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
