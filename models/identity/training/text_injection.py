"""The identifier injection for a transformers CLIPTextModel, for training (gradients reach the vectors).

The official code runs CLIP's embedding layer (token + position embedding) and overwrites the
hidden states at the identifier's two positions with the mapping network's two vectors. Here a
forward hook on the text model's embedding module does the same: its output at those positions
becomes the vectors, so the transformer starts from them exactly. The hook uses public module APIs
only (`get_input_embeddings`, `register_forward_hook`) and is removed when the context ends, so the
same frozen text encoder also encodes the class-word prompt untouched.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

FIRST, LAST = 1, 2  # slot codes of identifier_slots


def text_embeddings(text_encoder: nn.Module) -> nn.Module:
    """The module that sums token and position embeddings (CLIPTextEmbeddings) of a text encoder."""
    token = text_encoder.get_input_embeddings()
    for module in text_encoder.modules():
        if getattr(module, "token_embedding", None) is token and isinstance(
                getattr(module, "position_embedding", None), nn.Embedding):
            return module
    raise ValueError(f"{type(text_encoder).__name__} has no CLIP-style embedding module "
                     "(token_embedding + position_embedding)")


def identifier_slots(input_ids: torch.Tensor, identifier_ids: Sequence[int]) -> torch.Tensor:
    """(B, L) codes: FIRST / LAST where the two identifier tokens stand, 0 elsewhere.

    Every occurrence is marked (as the nodes replace every occurrence); a row without the
    identifier raises, since its vectors would silently be ignored.
    """
    if len(identifier_ids) != 2:
        raise ValueError(f"Face2Diffusion's identifier is two tokens, got {len(identifier_ids)}")
    first, last = (int(i) for i in identifier_ids)
    start = (input_ids[:, :-1] == first) & (input_ids[:, 1:] == last)
    missing = (~start.any(dim=1)).nonzero().flatten().tolist()
    if missing:
        raise ValueError(f"prompt row(s) {missing} do not contain the identifier tokens {[first, last]}")
    slots = torch.zeros_like(input_ids)
    slots[:, :-1][start] = FIRST
    slots[:, 1:][start] = LAST
    return slots


@contextmanager
def inject_identifier(text_encoder: nn.Module, identifier_ids: Sequence[int], first: torch.Tensor,
                      last: torch.Tensor) -> Iterator[None]:
    """Within the context, the text encoder's input at the identifier is `first` / `last` (each (B, D)).

    Row b of the prompt batch gets row b of the vectors.
    """
    module = text_embeddings(text_encoder)
    width = module.position_embedding.embedding_dim
    if first.shape != last.shape or first.ndim != 2 or first.shape[1] != width:
        raise ValueError(f"identifier vectors must both be (B, {width}), got {tuple(first.shape)} and "
                         f"{tuple(last.shape)}")

    def hook(_module, args, kwargs, output):
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if input_ids is None:
            raise ValueError("the identifier injection needs the prompt's input_ids")
        if len(input_ids) != len(first):
            raise ValueError(f"{len(input_ids)} prompts for {len(first)} identities")
        slots = identifier_slots(input_ids, identifier_ids)[..., None]
        out = torch.where(slots == FIRST, first.to(output.dtype)[:, None], output)
        return torch.where(slots == LAST, last.to(output.dtype)[:, None], out)

    handle = module.register_forward_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()
