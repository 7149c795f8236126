"""Face2Diffusion training pieces: CGDR loss, identifier injection, null-expression swap, trainable
module, sharded sampler, face mask, dataset files and the exported weight files."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.identity import load_mapping
from models.identity.mapping import Img2TextMapping, MappingConfig
from models.identity.rig_expression import RigExpressionMap, load_rig_expression_map
from models.identity.training import (CGDRConfig, DatasetIndex, EpochShardSampler, Face2DiffusionTrainable,
                                      FaceTrainingDataset, FrozenParts, PromptConfig, TrainableConfig,
                                      batches_per_epoch, cgdr_loss, identifier_slots, inject_identifier, latent_mask,
                                      sample_prompts, save_mapping, save_rig_map, shard_order, swap_null_expression,
                                      training_loss, write_sample)
from models.identity.training.face_mask import crop_points, hull_mask
from models.loading import ModelFileError

TINY = MappingConfig(identity_dim=24, hidden_dim=16, token_dim=32)


def predictions(seed: int = 0, shape=(2, 4, 8, 8)):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) for _ in range(3)]


# CGDR ---------------------------------------------------------------------------------------------

def test_cgdr_with_the_whole_latent_as_face_is_plain_mse():
    pred, target, class_pred = predictions()
    terms = cgdr_loss(pred, target, class_pred, torch.ones(2, 1, 8, 8))
    assert torch.allclose(terms.total, F.mse_loss(pred, target))
    assert float(terms.background) == 0.0


def test_cgdr_with_no_face_pulls_towards_the_class_prediction_and_never_back_into_it():
    pred, target, class_pred = predictions(1)
    pred.requires_grad_(True)
    class_pred.requires_grad_(True)
    terms = cgdr_loss(pred, target, class_pred, torch.zeros(2, 1, 8, 8))
    assert torch.allclose(terms.total, F.mse_loss(pred, class_pred))
    assert float(terms.foreground) == 0.0
    terms.total.backward()
    assert class_pred.grad is None  # stop-gradient: the class-word branch is a fixed target
    assert torch.allclose(pred.grad, 2 * (pred - class_pred).detach() / pred.numel())


def test_cgdr_splits_the_gradient_by_the_mask_and_weights_the_terms():
    pred, target, class_pred = predictions(2)
    pred.requires_grad_(True)
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., :4] = 1.0  # left half is face
    config = CGDRConfig(foreground_weight=2.0, background_weight=0.5)
    terms = cgdr_loss(pred, target, class_pred, mask, config)
    terms.total.backward()
    n = pred.numel()
    expected = torch.where(mask.bool(), 2.0 * 2 * (pred - target), 0.5 * 2 * (pred - class_pred)).detach() / n
    assert torch.allclose(pred.grad, expected, atol=1e-7)
    assert torch.allclose(terms.total, 2.0 * terms.foreground + 0.5 * terms.background)


def test_cgdr_background_weight_zero_needs_no_class_prediction():
    pred, target, _ = predictions(3)
    mask = torch.rand(2, 1, 8, 8)
    terms = cgdr_loss(pred, target, None, mask, CGDRConfig(background_weight=0.0))
    assert torch.allclose(terms.total, (mask * (pred - target) ** 2).mean())
    with pytest.raises(ValueError, match="class-word"):
        cgdr_loss(pred, target, None, mask)


def test_latent_mask_averages_pixels_into_latent_cells():
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :2, :3] = 1.0
    small = latent_mask(mask, (4, 4))
    assert small.shape == (1, 1, 4, 4)
    assert torch.allclose(small[0, 0, 0], torch.tensor([1.0, 0.5, 0.0, 0.0]))
    assert torch.isclose(small.mean(), mask.mean())


# identifier injection -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def text_encoder():
    pytest.importorskip("transformers")
    from tiny_sd_diffusers import tiny_text_encoder

    return tiny_text_encoder().requires_grad_(False)


IDENTIFIER = (325, 331)  # CLIP-L's "f</w>", "l</w>"


def prompt_ids(rows: list[list[int]], length: int = 12) -> torch.Tensor:
    return torch.tensor([[49406, *row] + [49407] * (length - 1 - len(row)) for row in rows])


def embedding_output(model, ids):
    """What the transformer layers receive: the embedding module's output, captured by a hook."""
    seen = {}

    def grab(_module, args, kwargs):
        seen["x"] = args[0] if args else kwargs["hidden_states"]

    layer0 = next(m for name, m in model.named_modules() if name.endswith("encoder.layers.0"))
    handle = layer0.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        out = model(ids)[0]
    finally:
        handle.remove()
    return seen["x"], out


def test_injection_changes_exactly_the_two_identifier_positions(text_encoder):
    ids = prompt_ids([[320, 1125, 539, *IDENTIFIER], [*IDENTIFIER, 1125, 539, 320]])  # at positions 4,5 and 1,2
    first, last = torch.randn(2, 32), torch.randn(2, 32)
    with torch.no_grad():
        plain, plain_out = embedding_output(text_encoder, ids)
        with inject_identifier(text_encoder, IDENTIFIER, first, last):
            injected, injected_out = embedding_output(text_encoder, ids)
        after, _ = embedding_output(text_encoder, ids)
    changed = (plain != injected).any(-1)
    expected = torch.zeros_like(changed)
    expected[0, 4:6] = True
    expected[1, 1:3] = True
    assert torch.equal(changed, expected)
    assert torch.equal(injected[0, 4], first[0]) and torch.equal(injected[0, 5], last[0])
    assert torch.equal(injected[1, 1], first[1]) and torch.equal(injected[1, 2], last[1])
    assert torch.equal(after, plain)  # the hook is gone after the context
    assert not torch.allclose(injected_out[0, 6:], plain_out[0, 6:])  # later tokens attend to the identity
    assert torch.equal(injected_out[0, :4], plain_out[0, :4])  # causal mask: earlier ones do not


def test_injection_passes_gradients_to_the_identity_vectors_only(text_encoder):
    ids = prompt_ids([[320, *IDENTIFIER, 1125]])
    first, last = torch.randn(1, 32, requires_grad=True), torch.randn(1, 32, requires_grad=True)
    with inject_identifier(text_encoder, IDENTIFIER, first, last):
        text_encoder(ids)[0].sum().backward()
    assert first.grad is not None and first.grad.abs().sum() > 0
    assert last.grad is not None and last.grad.abs().sum() > 0
    assert all(p.grad is None for p in text_encoder.parameters())  # frozen, as in training


def test_injection_refuses_prompts_without_the_identifier(text_encoder):
    ids = prompt_ids([[320, *IDENTIFIER], [320, 1125, 539]])
    with pytest.raises(ValueError, match=r"row\(s\) \[1\]"):
        with inject_identifier(text_encoder, IDENTIFIER, torch.zeros(2, 32), torch.zeros(2, 32)):
            text_encoder(ids)
    with pytest.raises(ValueError, match="must both be"):
        with inject_identifier(text_encoder, IDENTIFIER, torch.zeros(2, 16), torch.zeros(2, 16)):
            pass


def test_identifier_slots_mark_every_occurrence():
    ids = prompt_ids([[*IDENTIFIER, 320, *IDENTIFIER, 331]])
    assert identifier_slots(ids, IDENTIFIER)[0, :8].tolist() == [0, 1, 2, 0, 1, 2, 0, 0]


def test_prompts_put_the_class_word_where_the_identifier_was():
    config = PromptConfig(templates=("a photo of {}", "{} at the beach"))
    with_id, with_class = sample_prompts(config, 16, torch.Generator().manual_seed(0))
    assert {p for p in with_id} == {"a photo of f l", "f l at the beach"}
    assert all(c == i.replace("f l", "person") for i, c in zip(with_id, with_class))
    with pytest.raises(ValueError, match="exactly one"):
        PromptConfig(templates=("no subject",))


# null expression and the trainable module ---------------------------------------------------------

def test_null_swap_replaces_whole_rows_with_the_probability_given():
    expression, null = torch.randn(4000, 8), torch.randn(8)
    kept, swapped = swap_null_expression(expression, null, 0.0)
    assert torch.equal(kept, expression) and not swapped.any()
    out, swapped = swap_null_expression(expression, null, 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(out[swapped], null.expand(int(swapped.sum()), -1))
    assert torch.equal(out[~swapped], expression[~swapped])
    assert abs(float(swapped.float().mean()) - 0.3) < 0.03
    out, swapped = swap_null_expression(expression, null, 1.0)
    assert swapped.all() and torch.equal(out, null.expand_as(out))


def test_null_swap_sends_gradient_to_null_exp_only_through_swapped_rows():
    null = torch.zeros(8, requires_grad=True)
    expression = torch.randn(6, 8, requires_grad=True)
    out, swapped = swap_null_expression(expression, null, 0.5, torch.Generator().manual_seed(1))
    assert 0 < int(swapped.sum()) < 6
    out.sum().backward()
    assert torch.equal(null.grad, torch.full((8,), float(swapped.sum())))
    assert torch.equal(expression.grad[swapped], torch.zeros_like(expression.grad[swapped]))


def trainable(freeze: bool = False, probability: float = 0.5) -> Face2DiffusionTrainable:
    torch.manual_seed(0)
    rig = RigExpressionMap("mesh468:au28+jaw3", 31, TINY.expression_dim)
    return Face2DiffusionTrainable(Img2TextMapping(TINY), rig, TrainableConfig(freeze, probability))


def test_trainable_with_frozen_mapping_trains_only_the_rig_map():
    model = trainable(freeze=True, probability=0.0).train()
    assert not model.mapping.training and model.rig_map.training
    first, last = model(torch.randn(3, 24), torch.randn(3, 31))
    (first.sum() + last.sum()).backward()
    assert all(p.grad is None for p in model.mapping.parameters())
    assert model.rig_map.linear.weight.grad.abs().sum() > 0


def test_trainable_feeds_the_rig_code_into_the_expression_slot():
    model = trainable(probability=0.0).eval()
    with torch.no_grad():
        model.rig_map.linear.bias.fill_(0.5)
        features = torch.randn(2, 31)
        assert torch.equal(model.expression(2, features), torch.full((2, TINY.expression_dim), 0.5))
        assert torch.equal(model(torch.ones(2, 24), features)[0],
                           model.mapping(torch.ones(2, 24), torch.full((2, TINY.expression_dim), 0.5))[0])
    with pytest.raises(ValueError, match="nothing to train"):
        Face2DiffusionTrainable(Img2TextMapping(TINY), None, TrainableConfig(freeze_mapping=True))


def test_trainable_keeps_null_exp_in_the_graph_even_without_swaps():
    model = trainable(probability=0.0).train()
    first, _ = model(torch.randn(2, 24), torch.randn(2, 31))
    first.sum().backward()
    assert model.mapping.null_exp.grad is not None  # DistributedDataParallel needs every parameter used


# one training step through tiny frozen diffusers / transformers models --------------------------------

@pytest.fixture(scope="module")
def frozen_parts():
    pytest.importorskip("diffusers")
    from tiny_sd_diffusers import tiny_sd_parts

    parts = tiny_sd_parts()
    tokenizer = parts["tokenizer"]

    def tokenize(prompts):
        return tokenizer(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids

    return FrozenParts(parts["vae"], parts["unet"], parts["text_encoder"], parts["scheduler"], tokenize,
                       tokenizer("f l", add_special_tokens=False).input_ids).freeze()


def face_batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1.0
    return {"pixels": torch.rand(2, 3, 64, 64, generator=g) * 2 - 1, "mask": mask,
            "identity": torch.randn(2, 24, generator=g), "rig_expression": torch.randn(2, 31, generator=g)}


def test_training_step_reaches_mapping_and_rig_map_through_the_frozen_models(frozen_parts):
    assert frozen_parts.identifier_ids == list(IDENTIFIER)
    model = trainable(probability=0.0).train()
    torch.manual_seed(0)
    terms = training_loss(face_batch(), frozen_parts, model, PromptConfig())
    assert torch.isfinite(terms.total) and terms.foreground > 0 and terms.background > 0
    terms.total.backward()
    assert model.mapping.i2t_first.fc_out.weight.grad.abs().sum() > 0
    assert model.mapping.i2t_last.fc_out.weight.grad.abs().sum() > 0
    assert model.rig_map.linear.weight.grad.abs().sum() > 0
    frozen = (frozen_parts.unet, frozen_parts.vae, frozen_parts.text_encoder)
    assert all(p.grad is None and not p.requires_grad for m in frozen for p in m.parameters())


def test_training_step_with_frozen_mapping_updates_only_the_rig_map(frozen_parts):
    model = trainable(freeze=True, probability=0.0).train()
    torch.manual_seed(0)
    training_loss(face_batch(), frozen_parts, model, PromptConfig()).total.backward()
    assert all(p.grad is None for p in model.mapping.parameters())
    assert model.rig_map.linear.weight.grad.abs().sum() > 0


def test_training_step_without_background_term_is_masked_denoising(frozen_parts):
    model = trainable(probability=0.0).eval()
    with torch.no_grad():
        torch.manual_seed(0)
        both = training_loss(face_batch(), frozen_parts, model, PromptConfig())
        torch.manual_seed(0)
        face_only = training_loss(face_batch(), frozen_parts, model, PromptConfig(), CGDRConfig(background_weight=0))
    assert torch.equal(face_only.foreground, both.foreground)  # same noise, same timesteps, same prompts
    assert float(face_only.background) == 0.0 and torch.equal(face_only.total, both.foreground)


# sampler ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size,world,batch", [(3, 2, 1), (10, 2, 3), (7, 3, 2), (5, 1, 4)])
def test_shards_cover_the_epoch_and_stay_equally_long(size, world, batch):
    shards = [shard_order(size, world, r, batch, seed=1, epoch=4) for r in range(world)]
    per_rank = batches_per_epoch(size, world, batch) * batch
    assert all(len(s) == per_rank for s in shards)
    flat = [i for s in shards for i in s]
    assert set(flat) == set(range(size))
    if size % (world * batch) == 0:
        assert sorted(flat) == list(range(size))  # no repeats when it divides


def test_shard_order_depends_on_seed_and_epoch_and_resumes_mid_epoch():
    a = shard_order(50, 2, 0, 5, seed=1, epoch=0)
    assert a == shard_order(50, 2, 0, 5, seed=1, epoch=0)
    assert a != shard_order(50, 2, 0, 5, seed=1, epoch=1)
    assert a != shard_order(50, 2, 0, 5, seed=2, epoch=0)
    assert list(EpochShardSampler(50, 2, 0, 5, seed=1, epoch=0, skip_batches=3)) == a[15:]


# face mask ----------------------------------------------------------------------------------------

def test_hull_mask_fills_the_convex_hull_of_the_points():
    square = np.array([[2.0, 2.0], [6.0, 2.0], [6.0, 6.0], [2.0, 6.0], [4.0, 4.0]])
    mask = hull_mask(square, 8)
    expected = torch.zeros(8, 8)
    expected[2:6, 2:6] = 1.0  # pixel centres 2.5 .. 5.5 lie inside [2, 6]
    assert torch.equal(mask, expected)
    grown = hull_mask(square, 8, grow=0.5)  # [1, 7]
    assert int(grown.sum()) == 36


def test_crop_points_apply_the_crop_affine():
    affine = np.array([[2.0, 0.0, 1.0], [0.0, 2.0, -3.0]])
    assert np.allclose(crop_points(np.array([[1.0, 2.0, 9.0]]), affine), [[3.0, 1.0]])


# dataset and exported files -----------------------------------------------------------------------

def test_dataset_samples_round_trip_with_strict_shapes(tmp_path):
    index = DatasetIndex(resolution=8, identity_dim=24, rig_layout="mesh468:au28+jaw3", rig_features=31,
                         msid={"name": "f2d_msid.safetensors", "sha256": "0"})
    image, mask = torch.rand(8, 8, 3), (torch.rand(8, 8) > 0.5).float()
    identity, rig = torch.randn(24), torch.randn(31)
    write_sample(tmp_path / "000000.safetensors", image, mask, identity, rig, source="a.jpg")
    write_sample(tmp_path / "000001.safetensors", image, mask, torch.randn(20), rig, source="b.jpg")
    index.samples = [{"file": "000000.safetensors", "source": "a.jpg", "face_index": 0},
                     {"file": "000001.safetensors", "source": "b.jpg", "face_index": 0}]
    index.write(tmp_path)
    data = FaceTrainingDataset(tmp_path)
    item = data[0]
    assert item["pixels"].shape == (3, 8, 8) and item["mask"].shape == (1, 8, 8)
    assert torch.allclose((item["pixels"].permute(1, 2, 0) + 1) / 2, image, atol=1 / 255)
    assert torch.equal(item["mask"][0], mask) and torch.equal(item["identity"], identity)
    with pytest.raises(ModelFileError, match="identity"):
        data[1]  # a 20-d identity in a 24-d dataset


def test_saved_mapping_and_rig_map_load_like_the_nodes_load_them(tmp_path):
    model = trainable()
    path = save_mapping(tmp_path / "f2d_mapping.safetensors", model.mapping, step=3)
    loaded = load_mapping(path, config=TINY)
    for key, value in model.mapping.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with pytest.raises(ModelFileError):
        load_mapping(path)  # the official shapes: a tiny mapping is refused, not half-loaded
    with torch.no_grad():
        model.rig_map.linear.weight.normal_()
    rig = load_rig_expression_map(save_rig_map(tmp_path / "f2d_rig_expression.safetensors", model.rig_map, step=3))
    assert rig.layout == model.rig_map.layout
    assert torch.equal(rig.linear.weight, model.rig_map.linear.weight)
