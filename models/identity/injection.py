"""Face2Diffusion's identifier injection on ComfyUI-style token lists (pure Python + torch).

Face2Diffusion writes its identifier S* as two words ("f l") and, after CLIP's embedding layer
(token + position embedding), overwrites the hidden states at the identifier's two positions with
the mapping network's two 768-d vectors. ComfyUI's text encoders accept a tensor in place of a
token id (how textual-inversion embeddings travel): the tensor is used as that position's *token*
embedding and the position embedding is added afterwards. Putting `vector - position_embedding[p]`
at position p therefore makes the transformer input at p equal to `vector`, as in the official
code, up to one float32 rounding of the subtraction and addition.

A token list is what `SDTokenizer.tokenize_with_weights` returns: chunks of 77 `(token, weight)`
pairs, the start token included, so the index in a chunk is the position index.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

TokenChunk = list[tuple]


class IdentifierNotFoundError(ValueError):
    """The prompt does not contain the identifier whose embeddings are to be replaced."""


def identifier_positions(chunk: Sequence[tuple], identifier_ids: Sequence[int]) -> list[int]:
    """Start positions of every occurrence of the token-id sequence `identifier_ids` in one chunk."""
    ids = [int(t) if isinstance(t, int) else None for t, *_ in chunk]
    n = len(identifier_ids)
    return [i for i in range(len(ids) - n + 1) if ids[i:i + n] == list(identifier_ids)]


def inject_identifier(chunks: Sequence[Sequence[tuple]], identifier_ids: Sequence[int], vectors: torch.Tensor,
                      position_embedding: torch.Tensor) -> tuple[list[TokenChunk], list[tuple[int, int]]]:
    """Replace each occurrence of the identifier's tokens with the identity vectors.

    `vectors` is (len(identifier_ids), D): the transformer input wanted at those positions;
    `position_embedding` is the text model's (positions, D) table. Returns the new chunks (weights
    kept) and the (chunk, position) of every replaced token. Raises IdentifierNotFoundError when the
    identifier does not occur (also when a chunk boundary splits it).
    """
    if vectors.ndim != 2 or vectors.shape[0] != len(identifier_ids):
        raise ValueError(f"need one vector per identifier token ({len(identifier_ids)}), got {tuple(vectors.shape)}")
    if position_embedding.shape[-1] != vectors.shape[-1]:
        raise ValueError(f"identity vectors are {vectors.shape[-1]}-d but this text encoder's embeddings are "
                         f"{position_embedding.shape[-1]}-d")
    vectors = vectors.detach().to("cpu", torch.float32)
    table = position_embedding.detach().to("cpu", torch.float32)
    out, replaced = [], []
    for c, chunk in enumerate(chunks):
        chunk = [tuple(pair) for pair in chunk]
        for start in identifier_positions(chunk, identifier_ids):
            for k in range(len(identifier_ids)):
                p = start + k
                chunk[p] = (vectors[k] - table[p],) + chunk[p][1:]
                replaced.append((c, p))
        out.append(chunk)
    if not replaced:
        raise IdentifierNotFoundError("the prompt does not contain the identifier")
    return out, replaced
