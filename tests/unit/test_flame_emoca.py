"""EMOCA's expression encoder: layout vs the manifest, conversion of a Lightning-style checkpoint,
refusals (wrong keys, malicious pickles), and FaceFit's FLAME backend taking expression and jaw from it.

The synthetic checkpoints are laid out like EMOCA's `detail/checkpoints/deca-epoch=...ckpt`: a dict
with `state_dict` holding `deca.E_expression.*` next to `deca.E_flame.*` / `deca.E_detail.*` and
Lightning's extras (class-keyed callbacks, optimizer and scheduler states). Full-size tensors are
stored as one broadcast value each, so the files are small. With zero weights (and unit BatchNorm
variances) the encoder's output is exactly its last-layer bias, which the fit tests check.
"""
from __future__ import annotations

import contextlib
import os
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator, Mapping

import pytest
import torch

import convert_flame_deca as converter
from models.flame import (CODE_SPLIT, EMOCA_FILE, EmocaExpressionEncoder, emoca_state_shapes, encoder_state_shapes,
                          load_emoca_encoder, read_emoca_checkpoint)
from models.flame.emoca import EMOCA_PREFIX
from models.loading import ModelFileError, StateDictMismatchError, UnsafePickleError, parse_manifest
from models.rig.flame_backend import FlameAssets, fit_flame, load_flame_assets
from test_flame_deca_encoder import manifest
from test_rig_flame import assets, folders, photo_crops  # noqa: F401  (module fixtures reused)
from pickle_payloads import CallsOnLoad

pytestmark = pytest.mark.usefixtures("one_thread")

KNOWN = torch.linspace(-0.8, 0.9, 53)  # EMOCA's code for every face: 50 expression + 3 jaw


@contextlib.contextmanager
def fake_lightning() -> Iterator[type]:
    """An importable `pytorch_lightning...ModelCheckpoint`, so the pickle names a Lightning class."""
    name = "pytorch_lightning.callbacks.model_checkpoint"
    saved = {n: sys.modules.get(n) for n in ("pytorch_lightning", name)}
    module = types.ModuleType(name)

    class ModelCheckpoint:
        pass

    ModelCheckpoint.__module__, ModelCheckpoint.__qualname__ = name, "ModelCheckpoint"
    module.ModelCheckpoint = ModelCheckpoint
    sys.modules.update({"pytorch_lightning": types.ModuleType("pytorch_lightning"), name: module})
    try:
        yield ModelCheckpoint
    finally:
        for n, old in saved.items():
            if old is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = old


def zero_state(shapes: Mapping[str, tuple[int, ...]], bias: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Broadcast full-size tensors: zeros, unit BatchNorm variances, the last layer's bias given."""
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
        else:
            state[key] = torch.full((), 1.0 if key.endswith("running_var") else 0.0).expand(shape)
    if bias is not None:
        state["layers.2.bias"] = bias.clone()
    return state


def emoca_checkpoint(expression: Mapping[str, torch.Tensor], checkpoint_cls: type, **extra) -> dict:
    """A dict laid out like EMOCA's Lightning checkpoint (DecaModule.deca = ExpDECA)."""
    e_flame = zero_state({k: encoder_state_shapes()[k] for k in ("layers.2.weight", "layers.2.bias")})
    state = OrderedDict([*((f"deca.E_flame.{k}", v) for k, v in e_flame.items()),
                         *((f"{EMOCA_PREFIX}{k}", v) for k, v in expression.items()),
                         ("deca.E_detail.layers.2.weight", torch.zeros(()).expand(128, 1024)),
                         ("deca.D_detail.l1.0.weight", torch.zeros(()).expand(8192, 181))])
    return {"epoch": 3, "global_step": 12_345, "pytorch-lightning_version": "1.4.9", "state_dict": state,
            "callbacks": {checkpoint_cls: {"best_model_score": torch.tensor(0.5), "dirpath": "detail/checkpoints"}},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 5e-5, "params": [0, 1]}]}],
            "lr_schedulers": [], **extra}


def save_checkpoint(path, expression: Mapping[str, torch.Tensor], **extra):
    with fake_lightning() as checkpoint_cls:
        torch.save(emoca_checkpoint(expression, checkpoint_cls, **extra), path)
    return path


@pytest.fixture(scope="module")
def emoca_file(tmp_path_factory):
    """deca-epoch=03.ckpt converted to emoca_expression.safetensors; the encoder returns KNOWN."""
    work = tmp_path_factory.mktemp("emoca")
    source = save_checkpoint(work / "deca-epoch=03-val_loss=0.1.ckpt", zero_state(emoca_state_shapes(), KNOWN))
    written = converter.convert_emoca(source, work / "out")
    source.unlink()
    return written


# ----------------------------------------------------------------------------------------------
# layout and decomposition

def test_layout_equals_the_emoca_manifest_in_order():
    expected = parse_manifest(manifest("emoca_expression_keys.txt"))
    assert list(emoca_state_shapes().items()) == list(expected.items())
    header = manifest("emoca_expression_keys.txt").read_text().splitlines()[:3]
    assert any(f'"{EMOCA_PREFIX}"' in line for line in header)  # the prefix the reader strips


def test_decompose_is_expression_then_jaw():
    code = torch.arange(2 * 53, dtype=torch.float32).reshape(2, 53)
    with torch.device("meta"):
        wide, narrow = EmocaExpressionEncoder(), EmocaExpressionEncoder(50)
    parts = wide.decompose(code)
    assert parts["exp"].shape == (2, 50) and parts["jaw"][1].tolist() == [103.0, 104.0, 105.0]
    assert set(narrow.decompose(code[:, :50])) == {"exp"} and not narrow.predicts_jaw
    with pytest.raises(ValueError, match="53"):
        wide.decompose(code[:, :50])
    with pytest.raises(ValueError, match="outputs"):
        EmocaExpressionEncoder(56)


# ----------------------------------------------------------------------------------------------
# conversion

def test_lightning_checkpoint_converts_and_loads_strictly(emoca_file):
    assert emoca_file.name == EMOCA_FILE
    encoder = load_emoca_encoder(emoca_file)
    assert not encoder.training and encoder.predicts_jaw
    assert torch.equal(encoder.layers[2].bias, KNOWN)
    with torch.no_grad():
        parts = encoder.encode(torch.rand(1, 3, 224, 224))
    assert torch.equal(parts["exp"][0], KNOWN[:50]) and torch.equal(parts["jaw"][0], KNOWN[50:])


def test_only_the_expression_encoder_is_kept_with_provenance(tmp_path):
    source = save_checkpoint(tmp_path / "emoca.ckpt", zero_state(emoca_state_shapes(50)))
    tensors, info = read_emoca_checkpoint(source)
    assert set(tensors) == set(emoca_state_shapes(50))
    assert info["outputs"] == 50 and not info["jaw"] and info["global_step"] == 12_345
    assert not load_emoca_encoder(converter.convert_emoca(source, tmp_path)).predicts_jaw


def test_wrong_and_missing_keys_are_listed(tmp_path):
    state = zero_state(emoca_state_shapes())
    del state["encoder.layer4.2.bn3.running_var"]
    state["layers.9.weight"] = state.pop("layers.0.weight")
    state["layers.2.bias"] = torch.zeros(52)
    with pytest.raises(StateDictMismatchError) as caught:
        read_emoca_checkpoint(save_checkpoint(tmp_path / "bad.ckpt", state))
    message = str(caught.value)
    assert "bad.ckpt" in message and "EMOCA expression encoder" in message
    assert "encoder.layer4.2.bn3.running_var (2048,)" in message and "layers.0.weight (1024, 2048)" in message
    assert "layers.9.weight" in message and "layers.2.bias: expected (53,), found (52,)" in message


def test_a_checkpoint_without_the_expression_encoder_says_so(tmp_path):
    path = save_checkpoint(tmp_path / "deca_only.ckpt", {})
    with pytest.raises(ModelFileError, match=r"deca\.E_expression\..*deca\.E_flame"):
        read_emoca_checkpoint(path)
    torch.save({"E_flame": {}}, tmp_path / "deca_model.tar")
    with pytest.raises(ModelFileError, match="no 'state_dict'"):
        read_emoca_checkpoint(tmp_path / "deca_model.tar")


def test_a_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = save_checkpoint(tmp_path / "evil.ckpt", zero_state(emoca_state_shapes()),
                           hyper_parameters=CallsOnLoad(os.system, f"touch {marker}"))
    with pytest.raises(UnsafePickleError) as caught:
        converter.convert_emoca(path, tmp_path / "out")
    assert caught.value.global_name == "posix.system" and not marker.exists()
    assert not (tmp_path / "out" / EMOCA_FILE).exists()


def test_command_line_flag(tmp_path, emoca_file, capsys):
    source = save_checkpoint(tmp_path / "deca-epoch=01.ckpt", zero_state(emoca_state_shapes()))
    assert converter.main(["--emoca", str(source), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / EMOCA_FILE).is_file() and "deca-epoch=01.ckpt" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------
# FaceFit

def test_fit_takes_expression_and_jaw_from_emoca(photo_crops, assets, folders, emoca_file, tmp_path):  # noqa: F811
    for name in os.listdir(folders["full"]):
        os.link(folders["full"] / name, tmp_path / name)
    os.link(emoca_file, tmp_path / EMOCA_FILE)
    loaded = load_flame_assets(tmp_path)
    assert loaded.emoca is not None and assets.emoca is None
    crops, info = photo_crops
    with_emoca = fit_flame(crops, info, FlameAssets(assets.model, assets.encoder, assets.texture, emoca=loaded.emoca))
    deca = fit_flame(crops, info, assets)
    assert torch.equal(with_emoca.expression[0], KNOWN[:50]) and torch.equal(with_emoca.jaw[0], KNOWN[50:])
    assert not torch.equal(deca.expression[0], KNOWN[:50])
    for name in ("identity", "pose", "camera", "light", "albedo"):  # everything else is still DECA's
        assert torch.equal(getattr(with_emoca, name), getattr(deca, name)), name
    assert not with_emoca.expression[1].any() and not with_emoca.jaw[1].any()  # the placeholder frame


def test_fit_with_a_jawless_emoca_keeps_decas_jaw(photo_crops, assets):  # noqa: F811
    encoder = EmocaExpressionEncoder(50)
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.zero_()
        encoder.layers[2].bias.copy_(KNOWN[:50])
    crops, info = photo_crops
    rig = fit_flame(crops, info, FlameAssets(assets.model, assets.encoder, assets.texture, emoca=encoder.eval()))
    deca = fit_flame(crops, info, assets)
    assert torch.equal(rig.expression[0], KNOWN[:50]) and torch.equal(rig.jaw, deca.jaw)
    assert dict(CODE_SPLIT)["exp"] == 50
