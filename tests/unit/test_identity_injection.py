"""Face2Diffusion's identifier injection: the pure token-list rewrite, then ComfyUI's own SD1 CLIP text
encoder (a 1-layer model with CLIP-L's tokenizer, built in-process) fed the rewritten tokens: exactly
the identifier's two positions of the transformer input change, and they equal the mapped vectors."""
from __future__ import annotations

import sys

import pytest
import torch

from comfy_runner import comfyui_dir  # scripts/ is on sys.path (conftest)
from models.identity.injection import IdentifierNotFoundError, identifier_positions, inject_identifier

START, END = 49406, 49407


def chunk(ids: list[int], length: int = 12) -> list[tuple[int, float]]:
    return [(START, 1.0)] + [(t, 1.0) for t in ids] + [(END, 1.0)] * (length - len(ids) - 1)


def test_positions_of_every_occurrence():
    c = chunk([5, 7, 8, 5, 7, 5])
    assert identifier_positions(c, [5, 7]) == [1, 4]
    assert identifier_positions(c, [7, 5]) == [5]
    assert identifier_positions(c, [9, 9]) == []


def test_injected_tensor_is_the_vector_minus_its_position_embedding():
    table = torch.randn(12, 4)
    vectors = torch.randn(2, 4)
    out, replaced = inject_identifier([chunk([3, 5, 7, 9])], [5, 7], vectors, table)
    assert replaced == [(0, 2), (0, 3)]
    for k, p in enumerate((2, 3)):
        token, weight = out[0][p]
        assert weight == 1.0 and torch.equal(token, vectors[k] - table[p])
        torch.testing.assert_close(token + table[p], vectors[k], rtol=0, atol=1e-6)
    untouched = [i for i in range(12) if i not in (2, 3)]
    assert [out[0][i] for i in untouched] == [chunk([3, 5, 7, 9])[i] for i in untouched]


def test_weights_are_kept_and_missing_identifier_is_an_error():
    c = [(START, 1.0), (5, 1.2), (7, 1.2), (END, 1.0)]
    out, _ = inject_identifier([c], [5, 7], torch.zeros(2, 3), torch.zeros(4, 3))
    assert [w for _, w in out[0]] == [1.0, 1.2, 1.2, 1.0]
    with pytest.raises(IdentifierNotFoundError):
        inject_identifier([chunk([5, 9, 7])], [5, 7], torch.zeros(2, 3), torch.zeros(12, 3))
    with pytest.raises(ValueError, match="one vector per identifier token"):
        inject_identifier([c], [5, 7], torch.zeros(3, 3), torch.zeros(4, 3))


@pytest.fixture(scope="module")
def comfy_clip():
    """ComfyUI's SDTokenizer (CLIP-L vocabulary) and SDClipModel with a 1-layer, 64-wide text transformer."""
    path = str(comfyui_dir())
    if path not in sys.path:
        sys.path.append(path)  # after the repo, so the pack's `models` package keeps precedence
    from comfy import cli_args

    cli_args.args.cpu = True  # read when comfy.model_management is first imported (by sd1_clip)
    from comfy import sd1_clip

    config = {"num_hidden_layers": 1, "hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128,
              "hidden_act": "quick_gelu", "max_position_embeddings": 77, "vocab_size": 49408,
              "eos_token_id": END, "bos_token_id": START}
    model = sd1_clip.SDClipModel(textmodel_json_config=config, dtype=torch.float32)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.1)
    return sd1_clip.SDTokenizer(), model


def transformer_input(model, chunks) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden states entering the first transformer layer, final output) of ComfyUI's encode path.

    The states are cloned: the layers add to them in place."""
    seen = []
    encoder = model.transformer.text_model.encoder
    hook = encoder.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    try:
        with torch.no_grad():
            out, _ = model.encode_token_weights(chunks)
    finally:
        hook.remove()
    return seen[0][0], out[0]


def test_comfy_clip_sees_the_mapped_vectors_at_exactly_the_identifier_positions(comfy_clip):
    tokenizer, model = comfy_clip
    chunks = tokenizer.tokenize_with_weights("a photo of f l person with a hat")
    ids = [t for t, _ in tokenizer.tokenize_with_weights("f l")[0][1:3]]
    assert len(ids) == 2 and END not in ids
    table = model.transformer.text_model.embeddings.position_embedding.weight
    vectors = torch.randn(2, 64, generator=torch.Generator().manual_seed(1))
    injected, replaced = inject_identifier(chunks, ids, vectors, table)
    assert replaced == [(0, 4), (0, 5)]  # <start> a photo of [f] [l] person ...

    plain_in, plain_out = transformer_input(model, chunks)
    new_in, new_out = transformer_input(model, injected)
    changed = (plain_in != new_in).any(-1).nonzero().flatten().tolist()
    assert changed == [4, 5]
    torch.testing.assert_close(new_in[4:6], vectors, rtol=0, atol=1e-6)
    # causal attention: the text before the identifier encodes exactly as before
    assert torch.equal(plain_out[:4], new_out[:4]) and not torch.equal(plain_out[4:], new_out[4:])
