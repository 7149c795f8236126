"""Deep3DFaceRecon's regressor: the released checkpoint's layout (taken from torchvision's ResNet-50, which
the released network is, not from the module under test), the forward pass against torchvision's, which
coefficients are the expression, and the safe, strict conversion of epoch_20.pth-format files."""
from __future__ import annotations

import json
import os

import pytest
import torch
import torchvision
from safetensors import safe_open

from convert_deep3d import main as convert_main  # scripts/ is on sys.path (conftest)
from identity_weights import official_deep3d_state, write_official_deep3d
from models.identity import (DEEP3D, DEEP3D_FILE, Deep3DRecon, deep3d_state_shapes, load_deep3d_recon,
                             read_deep3d_checkpoint)
from models.loading import ModelFileError, StateDictMismatchError, UnsafePickleError, sha256_file
from models.loading.safetensors_file import META_KEY
from pickle_payloads import CallsOnLoad


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deep3d")
    path = write_official_deep3d(folder / "epoch_20.pth", seed=3)
    out = folder / "converted"
    assert convert_main(["--checkpoint", str(path), "--out", str(out)]) == 0
    return {"path": path, "out": out, "state": torch.load(path, weights_only=True)["net_recon"]}


def test_module_layout_is_the_released_net_recon():
    official_shapes = {k: tuple(v.shape) for k, v in official_deep3d_state().items()}
    assert list(deep3d_state_shapes()) == list(official_shapes)  # same keys in the same order
    assert deep3d_state_shapes() == official_shapes
    assert DEEP3D.coefficient_count == 257 and DEEP3D.span("expression") == slice(80, 144)


def test_backbone_matches_torchvision_resnet50():
    torch.manual_seed(0)
    reference = torchvision.models.resnet50().eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so a swapped buffer would show
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    model = Deep3DRecon().eval()
    state = {f"backbone.{k}": v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("final_layers.") for k in missing)
    reference.fc = torch.nn.Identity()
    pixels = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        ours = model.backbone(pixels).flatten(1)
        theirs = reference(pixels)
    assert ours.shape == (2, 2048)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_output_concatenates_the_groups_and_expression_is_80_to_143():
    model = Deep3DRecon().eval()
    with torch.no_grad():
        for index, layer in enumerate(model.final_layers):
            layer.weight.zero_()
            layer.bias.fill_(float(index))  # each group's value is its index
    coefficients = model(torch.rand(1, 3, 224, 224))
    assert coefficients.shape == (1, 257)
    expected = torch.cat([torch.full((n,), float(i)) for i, (_, n) in enumerate(DEEP3D.groups)])
    assert torch.equal(coefficients[0], expected)
    assert torch.equal(model.expression(coefficients), torch.ones(1, 64))


def test_forward_rejects_wrong_input_size():
    with pytest.raises(ValueError, match=r"\(B, 3, 224, 224\)"):
        Deep3DRecon()(torch.rand(1, 3, 112, 112))


def test_conversion_keeps_every_tensor_and_records_provenance(official):
    converted = official["out"] / DEEP3D_FILE
    model = load_deep3d_recon(converted)
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, official["state"][key].to(value.dtype)), key
    with safe_open(str(converted), framework="pt") as handle:
        meta = json.loads(handle.metadata()[META_KEY])
    assert meta["kind"] == "deep3d_recon" and meta["converter"] == "scripts/convert_deep3d.py"
    assert meta["source"]["sha256"] == sha256_file(official["path"])
    assert meta["dropped_entries"] == ["opt_00", "sched_00"]
    assert meta["tensors"] == len(official["state"])
    assert [p.name for p in official["out"].iterdir()] == [DEEP3D_FILE]  # no temporary file left


def test_converted_model_computes_what_the_official_state_computes(official):
    reference = Deep3DRecon().eval()
    reference.load_state_dict(official["state"], strict=True)
    pixels = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(load_deep3d_recon(official["out"] / DEEP3D_FILE)(pixels), reference(pixels))


def test_bare_state_dict_and_absent_step_counters_are_accepted(tmp_path):
    state = {k: v for k, v in official_deep3d_state(1).items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "net_recon.pth")
    tensors, filled, dropped = read_deep3d_checkpoint(tmp_path / "net_recon.pth")
    assert filled and all(k.endswith("num_batches_tracked") for k in filled)
    assert dropped == [] and set(tensors) == set(deep3d_state_shapes())


def test_wrong_keys_are_listed(tmp_path):
    state = official_deep3d_state(2)
    del state["final_layers.1.bias"]
    state["backbone.fc.weight"] = torch.zeros(257, 2048)
    state["final_layers.6.weight"] = torch.zeros(2, 2048, 1, 1)
    path = tmp_path / "epoch_20.pth"
    torch.save({"net_recon": state}, path)
    with pytest.raises(StateDictMismatchError) as caught:
        read_deep3d_checkpoint(path)
    assert caught.value.missing == ["final_layers.1.bias"]
    assert caught.value.unexpected == ["backbone.fc.weight"]
    assert caught.value.mismatched == [("final_layers.6.weight", (1, 2048, 1, 1), (2, 2048, 1, 1))]
    assert "final_layers.1.bias" in str(caught.value) and "backbone.fc.weight" in str(caught.value)


def test_a_checkpoint_of_something_else_is_named(tmp_path):
    torch.save({"model": {"encoder.weight": torch.zeros(2)}}, tmp_path / "other.pth")
    with pytest.raises(ModelFileError, match="'net_recon'"):
        read_deep3d_checkpoint(tmp_path / "other.pth")


def test_malicious_checkpoint_is_refused_and_its_payload_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = write_official_deep3d(tmp_path / "epoch_20.pth",
                                 extra={"epoch": CallsOnLoad(os.system, f"touch {marker}")})
    with pytest.raises(UnsafePickleError, match=r"posix\.system"):
        read_deep3d_checkpoint(path)
    assert convert_main(["--checkpoint", str(path), "--out", str(tmp_path / "out")]) == 1
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_runtime_loader_checks_kind_and_presence(official, tmp_path):
    with pytest.raises(ModelFileError, match="convert_deep3d"):
        load_deep3d_recon(tmp_path / DEEP3D_FILE)
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"), metadata={META_KEY: '{"kind": "f2d_msid"}'})
    with pytest.raises(ModelFileError, match="'f2d_msid', expected 'deep3d_recon'"):
        load_deep3d_recon(tmp_path / "other.safetensors")
