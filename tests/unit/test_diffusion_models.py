"""Diff-AE and DiffusionRig backbones: official state-dict layout, shapes, and how conditions enter.

Full-size models are built on the meta device (no memory, no init) only to compare their state
dicts with the published manifests; everything that runs uses narrow 16-32 px variants of the
same code.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from diffusion_weights import TINY_DIFFAE, TINY_RIG  # tests/fixtures, on sys.path (tests/conftest.py)
from models.diffusion import (DIFFUSIONRIG_256, FFHQ256_AUTOENC, DiffAEAutoencoder, DiffusionRig,
                              diffae_state_shapes, diffusionrig_state_shapes)
from models.diffusion.attention import AttentionBlock
from models.diffusion.resblock import PlainResBlock
from models.diffusion.resblock_diffae import TwoCondResBlock
from models.diffusion.resblock_rig import LatentResBlock
from models.diffusion.timestep import timestep_embedding
from models.loading import check_state_dict, parse_manifest

pytestmark = pytest.mark.usefixtures("one_thread")

MANIFESTS = Path(os.environ.get(
    "LIKENESS_MANIFESTS", Path(__file__).resolve().parents[3] / "shared" / "manifests"))


def manifest(name: str) -> Path:
    path = MANIFESTS / name
    if not path.is_file():
        pytest.skip(f"state-dict manifest {path} not available (set LIKENESS_MANIFESTS)")
    return path


def randomize_zero_convs(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give the zero-initialised output convs random weights, so conditions reach the output."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d)) and not module.weight.any():
                std = 1 / math.sqrt(module.weight[0].numel())
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
    return model


def tiny_diffae(seed: int = 0) -> DiffAEAutoencoder:
    torch.manual_seed(seed)
    return randomize_zero_convs(DiffAEAutoencoder(TINY_DIFFAE), seed).eval()


def tiny_rig(seed: int = 0) -> DiffusionRig:
    torch.manual_seed(seed)
    return randomize_zero_convs(DiffusionRig(TINY_RIG), seed).eval()


# ----------------------------------------------------------------------------------------------
# official layout

def test_diffae_state_dict_equals_the_manifest_key_for_key_in_order():
    path = manifest("diffae_ffhq256_autoenc_model_keys.txt")
    shapes = diffae_state_shapes(FFHQ256_AUTOENC)
    check_state_dict(shapes, path, "Diff-AE ffhq256_autoenc", "model definition")
    assert list(shapes.items()) == list(parse_manifest(path).items())


def test_diffusionrig_state_dict_equals_the_manifest_key_for_key_in_order():
    path = manifest("diffusionrig_model_keys.txt")
    shapes = diffusionrig_state_shapes(DIFFUSIONRIG_256)
    check_state_dict(shapes, path, "DiffusionRig", "model definition")
    assert list(shapes.items()) == list(parse_manifest(path).items())


def test_parameter_counts_and_landmarks_without_the_manifests():
    with torch.device("meta"):
        diffae, rig = DiffAEAutoencoder(), DiffusionRig()
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert (count(diffae), count(diffae.encoder)) == (168_492_291, 30_150_400)
    assert (count(rig), count(rig.denoisingUNet), count(rig.encoder)) == (144_610_179, 133_400_835, 11_209_344)
    shapes, rig_shapes = diffae_state_shapes(), diffusionrig_state_shapes()
    assert (len(shapes), len(rig_shapes)) == (706, 712)
    assert shapes["input_blocks.13.1.qkv.weight"] == (1536, 512, 1)          # attention at 16x16
    assert shapes["output_blocks.2.0.cond_emb_layers.1.weight"] == (512, 512)  # z_sem: scale only (C)
    assert shapes["encoder.out.3.weight"] == (512, 512, 1, 1)
    assert rig_shapes["denoisingUNet.input_blocks.0.0.weight"] == (128, 12, 3, 3)  # x_t ++ 9 buffer channels
    assert rig_shapes["denoisingUNet.output_blocks.5.0.cond_emb_layers.1.weight"] == (1024, 64)  # scale + shift
    assert rig_shapes["encoder.fc.weight"] == (64, 512)


# ----------------------------------------------------------------------------------------------
# shapes

def test_tiny_diffae_encodes_and_predicts_noise_of_the_input_shape():
    model = tiny_diffae()
    x_0 = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        z_sem = model.encode(x_0)
        eps = model(torch.randn(2, 3, 16, 16), torch.tensor([10, 900]), z_sem)
        shared_t = model(torch.randn(2, 3, 16, 16), 500, z_sem)
    assert z_sem.shape == (2, 32) and eps.shape == shared_t.shape == (2, 3, 16, 16)
    assert torch.isfinite(eps).all()


def test_tiny_diffusionrig_encodes_and_predicts_noise_of_the_input_shape():
    model = tiny_rig()
    with torch.no_grad():
        latent = model.encode(torch.rand(2, 3, 32, 32) * 2 - 1)
        eps = model(torch.randn(2, 3, 16, 16), torch.tensor([3, 700]), torch.rand(2, 9, 16, 16), latent)
    assert latent.shape == (2, 16) and eps.shape == (2, 3, 16, 16)


def test_semantic_encoder_has_no_condition_and_ends_in_a_pooled_code():
    model = tiny_diffae()
    blocks = [m for m in model.encoder.modules() if isinstance(m, PlainResBlock)]
    assert blocks and not any(isinstance(m, TwoCondResBlock) for m in model.encoder.modules())
    assert all(not hasattr(b, "emb_layers") and not hasattr(b, "out_layers") for b in blocks)
    with torch.no_grad():
        assert model.encode(torch.rand(1, 3, 16, 16) * 2 - 1).shape == (1, 32)


def test_unet_output_starts_at_zero_as_in_the_official_init():
    model = DiffAEAutoencoder(TINY_DIFFAE).eval()
    with torch.no_grad():
        eps = model(torch.randn(1, 3, 16, 16), 100, torch.randn(1, 32))
    assert not eps.any()


# ----------------------------------------------------------------------------------------------
# conditioning

def _block_inputs(block: nn.Module, channels: int, emb_dim: int, cond_dim: int):
    torch.manual_seed(1)
    randomize_zero_convs(block)
    return torch.randn(2, channels, 8, 8), torch.randn(2, emb_dim), torch.randn(2, cond_dim)


def test_two_cond_resblock_order_time_scale_shift_then_z_sem_scale():
    block = TwoCondResBlock(32, 64, embed_channels=24, z_sem_channels=16, dropout=0.0).eval()
    x, emb, z_sem = _block_inputs(block, 32, 24, 16)
    h = block.in_layers(x)
    s_t, b_t = block.emb_layers(emb)[..., None, None].chunk(2, dim=1)
    s_z = block.cond_emb_layers(z_sem)[..., None, None]
    norm, _, _, conv = block.out_layers
    expected = block.skip_connection(x) + conv(F.silu((norm(h) * (1 + s_t) + b_t) * (1 + s_z)))
    torch.testing.assert_close(block(x, emb, z_sem), expected)


def test_latent_resblock_order_time_then_latent_both_scale_and_shift():
    block = LatentResBlock(32, 32, "down", embed_channels=24, latent_dim=16, dropout=0.0).eval()
    x, emb, latent = _block_inputs(block, 32, 24, 16)
    h = block.in_layers[2](F.avg_pool2d(block.in_layers[:2](x), 2))
    s_t, b_t = block.emb_layers(emb)[..., None, None].chunk(2, dim=1)
    s_l, b_l = block.cond_emb_layers(latent)[..., None, None].chunk(2, dim=1)
    norm, _, _, conv = block.out_layers
    expected = F.avg_pool2d(x, 2) + conv(F.silu((norm(h) * (1 + s_t) + b_t) * (1 + s_l) + b_l))
    torch.testing.assert_close(block(x, emb, latent), expected)


def test_z_sem_only_scales_where_the_rig_latent_also_shifts():
    """With the normalised features forced to zero, a scale has nothing to act on; a shift still does."""
    two_cond = TwoCondResBlock(32, 32, embed_channels=24, z_sem_channels=16, dropout=0.0).eval()
    latent_block = LatentResBlock(32, 32, embed_channels=24, latent_dim=16, dropout=0.0).eval()
    for block in (two_cond, latent_block):
        x, emb, cond = _block_inputs(block, 32, 24, 16)
        with torch.no_grad():
            block.out_layers[0].weight.zero_()
            block.out_layers[0].bias.zero_()
            block.emb_layers[1].bias.zero_()
            block.emb_layers[1].weight.zero_()  # no time shift either
            changed = not torch.allclose(block(x, emb, cond), block(x, emb, torch.zeros_like(cond)))
        assert changed == (block is latent_block)
    # with real features, z_sem does change the output
    x, emb, z_sem = _block_inputs(two_cond, 32, 24, 16)
    two_cond.out_layers[0].reset_parameters()
    assert not torch.allclose(two_cond(x, emb, z_sem), two_cond(x, emb, torch.zeros_like(z_sem)))


def test_every_decoder_resblock_receives_z_sem_and_it_changes_the_noise_prediction():
    model = tiny_diffae()
    seen: list[torch.Tensor] = []
    resblocks = [m for m in model.modules() if isinstance(m, TwoCondResBlock)]
    hooks = [b.cond_emb_layers.register_forward_hook(lambda _m, args, _out: seen.append(args[0])) for b in resblocks]
    x_t, t = torch.randn(2, 3, 16, 16), torch.tensor([400, 400])
    z_sem = torch.randn(2, 32)
    with torch.no_grad():
        eps = model(x_t, t, z_sem)
        for hook in hooks:
            hook.remove()
        eps_zero = model(x_t, t, torch.zeros_like(z_sem))
        eps_other = model(x_t, t, torch.randn(2, 32))
    # input (2 + 1 down), middle (2) and output (4 + 1 up) ResBlocks: every one is conditioned
    assert len(resblocks) == len(seen) == (2 + 1) + 2 + (4 + 1)
    assert all(torch.equal(s, z_sem) for s in seen)
    assert not torch.allclose(eps, eps_zero) and not torch.allclose(eps, eps_other)


def test_diffusionrig_uses_the_buffers_and_the_global_latent():
    model = tiny_rig()
    x_t, t = torch.randn(1, 3, 16, 16), torch.tensor([300])
    buffers, latent = torch.rand(1, 9, 16, 16), torch.randn(1, 16)
    with torch.no_grad():
        eps = model(x_t, t, buffers, latent)
        assert not torch.allclose(eps, model(x_t, t, torch.zeros_like(buffers), latent))
        assert not torch.allclose(eps, model(x_t, t, buffers, torch.zeros_like(latent)))
        assert torch.equal(eps, model(x_t, t, buffers, latent))  # eval: no dropout


def test_diffusionrig_takes_x_t_and_buffers_already_stacked_as_a_sampler_concatenates_them():
    unet = tiny_rig().denoisingUNet
    x_t, t = torch.randn(2, 3, 16, 16), torch.tensor([300, 40])
    buffers, latent = torch.rand(2, 9, 16, 16), torch.randn(2, 16)
    with torch.no_grad():
        torch.testing.assert_close(unet.forward_stacked(torch.cat([x_t, buffers], 1), t, latent),
                                   unet(x_t, t, buffers, latent), rtol=0, atol=0)


def test_attention_splits_qkv_per_head_first_legacy_order():
    torch.manual_seed(0)
    block = AttentionBlock(64, num_heads=2).eval()
    nn.init.normal_(block.proj_out.weight, std=0.1)
    x = torch.randn(2, 64, 4, 4)
    qkv = block.qkv(block.norm(x.reshape(2, 64, 16)))
    heads = qkv.reshape(2 * 2, 3 * 32, 16)            # legacy: [q|k|v] of head 0, then of head 1
    q, k, v = heads[:, :32], heads[:, 32:64], heads[:, 64:]
    weights = torch.softmax(torch.einsum("bct,bcs->bts", q, k) / math.sqrt(32), dim=-1)
    attended = torch.einsum("bts,bcs->bct", weights, v).reshape(2, 64, 16)
    expected = x + block.proj_out(attended).reshape(2, 64, 4, 4)
    torch.testing.assert_close(block(x), expected, atol=1e-5, rtol=1e-5)
    # the newer order ([q of all heads | k | v]) gives a different result for two heads
    q2, k2, v2 = (part.reshape(4, 32, 16) for part in qkv.chunk(3, dim=1))
    other = torch.einsum("bts,bcs->bct", torch.softmax(torch.einsum("bct,bcs->bts", q2, k2) / math.sqrt(32), -1), v2)
    assert not torch.allclose(other.reshape(2, 64, 16), attended)


def test_timestep_embedding_is_cos_then_sin_with_geometric_frequencies():
    emb = timestep_embedding(torch.tensor([0, 7]), 8)
    assert emb.shape == (2, 8)
    torch.testing.assert_close(emb[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    freqs = torch.exp(-math.log(10000) * torch.arange(4) / 4)
    torch.testing.assert_close(emb[1], torch.cat([torch.cos(7 * freqs), torch.sin(7 * freqs)]))
