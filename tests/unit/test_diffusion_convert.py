"""Converting the official Diff-AE / DiffusionRig checkpoints, and loading the converted files.

Synthetic checkpoints are built in the official formats: a Lightning-style dict saved with
torch.save (`state_dict` with `model.` and `ema_model.` prefixes and `x_T`, plus Lightning's
class-keyed `callbacks` and an `AttributeDict` of hyper-parameters) and a plain DiffusionRig state
dict. Full-size ones take their keys and shapes from the manifests and cost almost nothing: every
tensor is a single stored value broadcast to its shape. Malicious payloads would create a marker
file if they ran; each such test checks the refusal and that the marker does not exist.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import subprocess
import sys
import types
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import torch

from models.diffusion import (DIFFAE_KIND, DIFFUSIONRIG_KIND, DiffAEAutoencoder, DiffusionRig, load_diffae,
                              load_diffusionrig)
from models.loading.lightning import InertObject, read_lightning_checkpoint
from models.diffusion.official import read_diffae_checkpoint, read_diffusionrig_checkpoint
from models.loading import (ModelFileError, StateDictMismatchError, UnsafePickleError, load_torch_checkpoint,
                            parse_manifest, read_checked_safetensors, sha256_file)
from test_diffusion_models import TINY_DIFFAE, TINY_RIG, manifest, randomize_zero_convs
from pickle_payloads import CallsOnLoad

pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.fixture(scope="module")
def converter():
    import convert_diffae_diffusionrig  # scripts/ is on sys.path (tests/conftest.py)

    return convert_diffae_diffusionrig


# ----------------------------------------------------------------------------------------------
# synthetic official files

@contextlib.contextmanager
def fake_lightning() -> Iterator[types.SimpleNamespace]:
    """Importable stand-ins for the Lightning names a checkpoint pickles (pytorch_lightning is not installed)."""
    names = ["pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint",
             "pytorch_lightning.utilities", "pytorch_lightning.utilities.parsing"]
    saved = {name: sys.modules.get(name) for name in names}
    modules = {name: types.ModuleType(name) for name in names}

    class ModelCheckpoint:
        pass

    class AttributeDict(dict):
        pass

    def touch(path: str) -> None:  # a Lightning-named function that would leave a trace if called
        Path(path).touch()

    for cls, module in ((ModelCheckpoint, "pytorch_lightning.callbacks.model_checkpoint"),
                        (AttributeDict, "pytorch_lightning.utilities.parsing"),
                        (touch, "pytorch_lightning.utilities.parsing")):
        cls.__module__, cls.__qualname__ = module, cls.__name__
        setattr(modules[module], cls.__name__, cls)
    sys.modules.update(modules)
    try:
        yield types.SimpleNamespace(ModelCheckpoint=ModelCheckpoint, AttributeDict=AttributeDict, touch=touch)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def broadcast_state(shapes: Mapping[str, tuple[int, ...]], value: float) -> dict[str, torch.Tensor]:
    """Full-size tensors stored as one element each (torch.save keeps the 1-element storage)."""
    return {k: torch.full((), value, dtype=torch.long if k.endswith("num_batches_tracked") else torch.float32)
            .expand(shape) for k, shape in shapes.items()}


def lightning_checkpoint(model: Mapping[str, torch.Tensor], ema: Mapping[str, torch.Tensor], x_T: torch.Tensor,
                         lightning: types.SimpleNamespace, **extra) -> dict:
    """A dict laid out like Diff-AE's last.ckpt (PyTorch Lightning 1.4)."""
    state = OrderedDict([*((f"model.{k}", v) for k, v in model.items()),
                         *((f"ema_model.{k}", v) for k, v in ema.items()), ("x_T", x_T)])
    return {"epoch": 41, "global_step": 90_000, "pytorch-lightning_version": "1.4.5", "state_dict": state,
            "callbacks": {lightning.ModelCheckpoint: {"best_model_score": torch.tensor(0.25),
                                                      "dirpath": "checkpoints/ffhq256_autoenc"}},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]}],
            "lr_schedulers": [{"base_lrs": [1e-4], "last_epoch": 5, "lr_lambdas": [{"warmup": 0}]}],
            "native_amp_scaling_state": {"scale": 65536.0, "growth_factor": 2.0},
            "hparams_name": "conf",
            "hyper_parameters": lightning.AttributeDict(name="ffhq256_autoenc", img_size=256, T=1000),
            **extra}


@pytest.fixture(scope="module")
def diffae_manifest_shapes() -> dict[str, tuple[int, ...]]:
    return parse_manifest(manifest("diffae_ffhq256_autoenc_model_keys.txt"))


@pytest.fixture(scope="module")
def full_diffae_ckpt(tmp_path_factory, diffae_manifest_shapes) -> Path:
    path = tmp_path_factory.mktemp("diffae") / "last.ckpt"
    with fake_lightning() as lightning:
        ckpt = lightning_checkpoint(broadcast_state(diffae_manifest_shapes, 0.0),
                                    broadcast_state(diffae_manifest_shapes, 1.0),
                                    torch.zeros(()).expand(32, 3, 256, 256), lightning)
        torch.save(ckpt, path)
    return path


# ----------------------------------------------------------------------------------------------
# Diff-AE: full-size layout, EMA, safety

def test_weights_only_refuses_the_lightning_file_so_the_stand_in_reader_takes_over(full_diffae_ckpt):
    with pytest.raises(UnsafePickleError) as refused:
        load_torch_checkpoint(full_diffae_ckpt)
    assert refused.value.global_name == "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"
    ckpt = read_lightning_checkpoint(full_diffae_ckpt)
    (callback, state), = ckpt["callbacks"].items()
    assert issubclass(callback, InertObject) and callback.legacy_name.endswith("ModelCheckpoint")
    assert state["best_model_score"] == 0.25 and ckpt["global_step"] == 90_000
    assert isinstance(ckpt["hyper_parameters"], InertObject)
    assert ckpt["state_dict"]["x_T"].shape == (32, 3, 256, 256)


def test_full_size_checkpoint_gives_the_ema_weights_key_for_key(full_diffae_ckpt, diffae_manifest_shapes):
    tensors, info = read_diffae_checkpoint(full_diffae_ckpt)
    assert {k: tuple(v.shape) for k, v in tensors.items()} == diffae_manifest_shapes
    assert all(bool((v == 1.0).all()) for v in tensors.values())  # ema_model.*, never model.*
    assert info["weights"] == "ema_model" and info["global_step"] == 90_000


def test_a_mismatched_checkpoint_is_refused_with_a_readable_diff(tmp_path, diffae_manifest_shapes):
    shapes = dict(diffae_manifest_shapes)
    del shapes["middle_block.1.qkv.bias"]
    shapes["out.2.weight"] = (6, 128, 3, 3)
    shapes["latent_net.layers.0.weight"] = (2048, 512)
    path = tmp_path / "last.ckpt"
    with fake_lightning() as lightning:
        torch.save(lightning_checkpoint({}, broadcast_state(shapes, 1.0), torch.zeros(1), lightning), path)
    with pytest.raises(StateDictMismatchError) as caught:
        read_diffae_checkpoint(path)
    message = str(caught.value)
    assert str(path) in message and "EMA model" in message
    assert "missing 1 key(s):\n    middle_block.1.qkv.bias (1536,)" in message
    assert "unexpected 1 key(s):\n    latent_net.layers.0.weight (2048, 512)" in message
    assert "out.2.weight: expected (3, 128, 3, 3), found (6, 128, 3, 3)" in message


def test_a_checkpoint_without_ema_weights_is_refused(tmp_path, diffae_manifest_shapes):
    path = tmp_path / "last.ckpt"
    with fake_lightning() as lightning:
        torch.save(lightning_checkpoint(broadcast_state(diffae_manifest_shapes, 0.0), {}, torch.zeros(1), lightning),
                   path)
    with pytest.raises(ModelFileError, match="no Diff-AE EMA weights.*ema_model"):
        read_diffae_checkpoint(path)


def payloads(marker: Path) -> dict[str, CallsOnLoad]:
    return {
        "posix.system": CallsOnLoad(os.system, f"touch {marker}"),
        "builtins.eval": CallsOnLoad(eval, f"open({str(marker)!r}, 'w').close()"),
        "builtins.exec": CallsOnLoad(exec, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.Popen": CallsOnLoad(subprocess.Popen, ["touch", str(marker)]),
    }


@pytest.mark.parametrize("name", ["posix.system", "builtins.eval", "builtins.exec", "subprocess.Popen"])
def test_a_checkpoint_calling_outside_the_allow_list_is_refused_and_never_runs(tmp_path, name):
    marker = tmp_path / "pwned"
    path = tmp_path / "last.ckpt"
    weights = {"out.2.bias": torch.zeros(3)}
    with fake_lightning() as lightning:  # hidden among legitimate Lightning entries, as a real attack would be
        ckpt = lightning_checkpoint(weights, weights, torch.zeros(1), lightning)
        ckpt["callbacks"][lightning.ModelCheckpoint]["monitor"] = payloads(marker)[name]
        torch.save(ckpt, path)
    with pytest.raises(UnsafePickleError) as caught:
        read_diffae_checkpoint(path)
    assert caught.value.global_name == name and str(path) in str(caught.value)
    assert not marker.exists()


def test_lightning_named_callables_are_recorded_not_called(tmp_path):
    marker = tmp_path / "called"
    path = tmp_path / "last.ckpt"
    with fake_lightning() as lightning:
        torch.save({"state_dict": {"ema_model.w": torch.ones(2)},
                    "callbacks": {"hook": CallsOnLoad(lightning.touch, str(marker))}}, path)
        ckpt = read_lightning_checkpoint(path)  # even with the module importable, nothing is imported or called
    assert isinstance(ckpt["callbacks"]["hook"], InertObject) and not marker.exists()
    with pytest.raises(AttributeError):
        ckpt["callbacks"]["hook"].anything = 1
    with pytest.raises(AttributeError):
        type(ckpt["callbacks"]["hook"]).__setstate__ = print


def test_a_stand_in_where_weights_belong_is_refused(tmp_path):
    path = tmp_path / "last.ckpt"
    with fake_lightning() as lightning:
        torch.save({"state_dict": {"ema_model.out.2.bias": lightning.AttributeDict(a=1)}}, path)
    with pytest.raises(ModelFileError, match="not tensors.*out.2.bias"):
        read_diffae_checkpoint(path)


# ----------------------------------------------------------------------------------------------
# DiffusionRig: full-size layout

@pytest.mark.parametrize("zip_format", [True, False])
def test_full_size_diffusionrig_state_dict_loads_strictly(tmp_path, zip_format):
    shapes = parse_manifest(manifest("diffusionrig_model_keys.txt"))
    state = OrderedDict(broadcast_state(shapes, 0.5))
    dropped = [k for k in state if k.endswith("num_batches_tracked")]
    for key in dropped:  # some re-saved checkpoints leave BatchNorm's step counter out
        del state[key]
    path = tmp_path / "model050000.pt"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    tensors, info = read_diffusionrig_checkpoint(path)
    assert {k: tuple(v.shape) for k, v in tensors.items()} == shapes
    assert info == {"step": "050000", "restored_counters": len(dropped)} and len(dropped) == 20
    assert all(tensors[k].item() == 0 for k in dropped)


def test_a_diffusionrig_file_with_a_pickled_object_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model000100.pt"
    torch.save({"encoder.fc.bias": torch.zeros(64), "x": CallsOnLoad(os.system, f"touch {marker}")}, path)
    with pytest.raises(UnsafePickleError, match="posix.system"):
        read_diffusionrig_checkpoint(path)
    assert not marker.exists()


def test_the_cli_reports_a_mismatch_and_writes_nothing(tmp_path, converter, capsys):
    shapes = parse_manifest(manifest("diffusionrig_model_keys.txt"))
    shapes["denoisingUNet.input_blocks.0.0.weight"] = (128, 3, 3, 3)  # an unconditional ADM UNet's stem
    path = tmp_path / "model000100.pt"
    torch.save(broadcast_state(shapes, 0.0), path)
    assert converter.main(["--diffusionrig", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "denoisingUNet.input_blocks.0.0.weight: expected (128, 12, 3, 3), found (128, 3, 3, 3)" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ----------------------------------------------------------------------------------------------
# tiny round trips: convert, then load strictly

def _perturbed(state: Mapping[str, torch.Tensor], offset: float) -> dict[str, torch.Tensor]:
    return {k: v + offset if v.is_floating_point() else v.clone() for k, v in state.items()}


def test_tiny_diffae_round_trip_keeps_the_ema_weights(tmp_path, converter):
    torch.manual_seed(0)
    trained = randomize_zero_convs(DiffAEAutoencoder(TINY_DIFFAE)).state_dict()
    ema = _perturbed(trained, 0.01)
    source = tmp_path / "last.ckpt"
    with fake_lightning() as lightning:
        torch.save(lightning_checkpoint(trained, ema, torch.randn(2, 3, 16, 16), lightning), source)
    written = converter.convert_diffae(source, tmp_path / "out", TINY_DIFFAE)
    assert written.name == "diffae_ffhq256_autoenc.safetensors"

    model = load_diffae(written, TINY_DIFFAE)
    assert not model.training
    assert all(t.device.type == "cpu" for t in [*model.parameters(), *model.buffers()])
    assert all(torch.equal(v, ema[k]) for k, v in model.state_dict().items())
    reference = DiffAEAutoencoder(TINY_DIFFAE).eval()
    reference.load_state_dict(ema)
    x_t, z_sem = torch.randn(1, 3, 16, 16), torch.randn(1, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x_t, 250, z_sem), reference(x_t, 250, z_sem), rtol=1e-4, atol=1e-5)

    _, meta = read_checked_safetensors(written, {k: tuple(v.shape) for k, v in ema.items()}, what="t",
                                       kind=DIFFAE_KIND, converter="c")
    assert meta["config"] == "tiny_autoenc" and meta["weights"] == "ema_model" and meta["global_step"] == 90_000
    assert meta["source"] == {"name": "last.ckpt", "bytes": source.stat().st_size, "sha256": sha256_file(source)}
    assert not [p for p in written.parent.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_tiny_diffusionrig_round_trip(tmp_path, converter):
    torch.manual_seed(1)
    state = randomize_zero_convs(DiffusionRig(TINY_RIG)).state_dict()
    source = tmp_path / "model000123.pt"
    torch.save(state, source)
    written = converter.convert_diffusionrig(source, tmp_path, TINY_RIG)
    assert written.name == "diffusionrig_000123.safetensors"
    model = load_diffusionrig(written, TINY_RIG)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    _, meta = read_checked_safetensors(written, {k: tuple(v.shape) for k, v in state.items()}, what="t",
                                       kind=DIFFUSIONRIG_KIND, converter="c")
    assert meta["step"] == "000123" and meta["config"] == "tiny_rig"


def test_loaders_refuse_the_wrong_kind_config_or_a_missing_file(tmp_path, converter):
    torch.manual_seed(2)
    source = tmp_path / "model000001.pt"
    torch.save(DiffusionRig(TINY_RIG).state_dict(), source)
    written = converter.convert_diffusionrig(source, tmp_path, TINY_RIG)
    with pytest.raises(ModelFileError, match="kind"):
        load_diffae(written, TINY_DIFFAE)
    with pytest.raises(ModelFileError, match="converted for config 'tiny_rig'"):
        load_diffusionrig(written, dataclasses.replace(TINY_RIG, name="other_rig"))
    with pytest.raises(StateDictMismatchError):
        load_diffusionrig(written, dataclasses.replace(TINY_RIG, latent_dim=8))
    with pytest.raises(ModelFileError, match="convert_diffae_diffusionrig.py"):
        load_diffae(tmp_path / "absent.safetensors", TINY_DIFFAE)


def test_stand_in_reader_refuses_non_checkpoint_zips(tmp_path):
    path = tmp_path / "last.ckpt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a/other.pkl", pickle.dumps({"x": 1}))
    with pytest.raises(ModelFileError):
        read_lightning_checkpoint(path)
