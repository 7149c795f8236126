"""Face2Diffusion's MSID encoder and mapping network: exact checkpoint layout (vs the shared manifests),
safe strict conversion of official-format files, and the behaviour of the modules."""
from __future__ import annotations

import json
import os
import re
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from timm.models.vision_transformer import VisionTransformer

from convert_face2diffusion import main as convert_main  # scripts/ is on sys.path (conftest)
from face_photos import photo, points5
from models.faces.align import ARCFACE_TEMPLATE_112
from models.identity import (F2D_MSID, MAPPING_FILE, MSID_FILE, Img2TextMapping, MSIDEncoder, arcface_crops,
                             load_mapping, load_msid_encoder, mapping_state_shapes, msid_state_shapes,
                             read_f2d_mapping, read_f2d_msid)
from models.loading import (ModelFileError, StateDictMismatchError, UnsafePickleError, check_state_dict,
                            parse_manifest, sha256_file)
from models.loading.safetensors_file import META_KEY
from pickle_payloads import CallsOnLoad

MANIFESTS = Path(os.environ.get("LIKENESS_MANIFESTS", Path(__file__).resolve().parents[2].parent / "shared"
                                / "manifests"))


def manifest(name: str) -> Path:
    path = MANIFESTS / name
    if not path.is_file():
        pytest.skip(f"state-dict manifest {path} not available (set LIKENESS_MANIFESTS)")
    return path


def manifest_total_params(path: Path) -> int:
    return int(re.search(r"total params (\d+)", path.read_text()).group(1))


def random_state(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    """An official-format state dict with plausible values (positive variances, small weights)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1234)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.05
    return state


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """Synthetic msid.pt / mapping.pt made from the manifests' keys (not from the modules under test)."""
    folder = tmp_path_factory.mktemp("f2d")
    msid = random_state(parse_manifest(manifest("f2d_msid_keys.txt")), seed=0)
    mapping = random_state(parse_manifest(manifest("f2d_mapping_keys.txt")), seed=1)
    torch.save(msid, folder / "msid.pt")
    torch.save(mapping, folder / "mapping.pt")
    out = folder / "converted"
    assert convert_main(["--msid", str(folder / "msid.pt"), "--mapping", str(folder / "mapping.pt"),
                         "--out", str(out)]) == 0
    return {"folder": folder, "msid": msid, "mapping": mapping, "out": out}


@pytest.fixture(scope="module")
def encoder(official) -> MSIDEncoder:
    return load_msid_encoder(official["out"] / MSID_FILE)


@pytest.fixture(scope="module")
def mapping(official) -> Img2TextMapping:
    return load_mapping(official["out"] / MAPPING_FILE)


# ----------------------------------------------------------------------------------------------
# layout

def test_msid_state_dict_equals_the_manifest_key_for_key_and_in_order():
    path = manifest("f2d_msid_keys.txt")
    shapes = msid_state_shapes()
    check_state_dict(shapes, path, "MSID encoder", "test")
    assert list(shapes.items()) == list(parse_manifest(path).items())
    params = sum(int(np.prod(s)) for k, s in shapes.items()
                 if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert params == manifest_total_params(path) == 21_450_624


def test_mapping_state_dict_equals_the_manifest_key_for_key_and_in_order():
    path = manifest("f2d_mapping_keys.txt")
    shapes = mapping_state_shapes()
    check_state_dict(shapes, path, "mapping network", "test")
    assert list(shapes.items()) == list(parse_manifest(path).items())
    assert sum(int(np.prod(s)) for s in shapes.values()) == manifest_total_params(path) == 12_000_832


# ----------------------------------------------------------------------------------------------
# conversion

def test_converted_files_carry_every_tensor_and_their_provenance(official):
    for name, source, kind in ((MSID_FILE, "msid.pt", "f2d_msid"), (MAPPING_FILE, "mapping.pt", "f2d_mapping")):
        with safe_open(str(official["out"] / name), framework="pt") as handle:
            meta = json.loads(handle.metadata()[META_KEY])
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
        expected = official["msid" if kind == "f2d_msid" else "mapping"]
        assert meta["kind"] == kind and meta["filled_in"] == []
        assert meta["source"]["sha256"] == sha256_file(official["folder"] / source)
        assert meta["source"]["name"] == source and meta["tensors"] == len(expected)
        assert tensors.keys() == expected.keys()
        assert all(torch.equal(tensors[k], expected[k]) for k in expected)


def test_loaded_modules_compute_what_the_official_file_loaded_strictly_computes(official, encoder, mapping):
    with torch.device("meta"):
        direct_msid, direct_map = MSIDEncoder(), Img2TextMapping()
    direct_msid.load_state_dict(torch.load(official["folder"] / "msid.pt", weights_only=True), strict=True,
                                assign=True)
    direct_map.load_state_dict(torch.load(official["folder"] / "mapping.pt", weights_only=True), strict=True,
                               assign=True)
    pixels = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        feature = encoder(pixels)
        assert torch.equal(feature, direct_msid.eval()(pixels))
        for a, b in zip(mapping(feature), direct_map.eval()(feature)):
            assert torch.equal(a, b)
    assert not encoder.training and not mapping.training


def test_absent_num_batches_tracked_is_allowed_and_written_as_zero(official, tmp_path):
    state = {k: v for k, v in official["msid"].items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "msid.pt")
    assert convert_main(["--msid", str(tmp_path / "msid.pt"), "--out", str(tmp_path)]) == 0
    loaded = load_msid_encoder(tmp_path / MSID_FILE).state_dict()
    for block in F2D_MSID.feature_blocks:
        assert loaded[f"norms.layer_{block}.0.num_batches_tracked"].item() == 0


def test_wrong_checkpoint_is_refused_with_a_readable_diff(official, tmp_path, capsys):
    state = dict(official["mapping"])
    state["i2t_first.fc_out.weight"] = torch.zeros(768, 1024)  # a different width
    del state["null_exp"]
    state["module.extra"] = torch.zeros(3)
    path = tmp_path / "mapping.pt"
    torch.save(state, path)
    with pytest.raises(StateDictMismatchError) as caught:
        read_f2d_mapping(path)
    message = str(caught.value)
    assert str(path) in message and "mapping.pt" in message
    assert "missing 1 key(s):\n    null_exp (64,)" in message
    assert "unexpected 1 key(s):\n    module.extra (3,)" in message
    assert "i2t_first.fc_out.weight: expected (768, 1536), found (768, 1024)" in message
    assert convert_main(["--mapping", str(path), "--out", str(tmp_path / "out")]) == 1
    assert "null_exp" in capsys.readouterr().err
    assert not (tmp_path / "out" / MAPPING_FILE).exists()


def test_malicious_checkpoint_is_refused_and_its_payload_never_runs(official, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "msid.pt"
    torch.save({**official["mapping"], "null_exp": CallsOnLoad(os.system, f"touch {marker}")}, path)
    with pytest.raises(UnsafePickleError, match=r"posix\.system"):
        read_f2d_msid(path)
    assert convert_main(["--msid", str(path), "--out", str(tmp_path / "out")]) == 1
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_runtime_loaders_check_kind_and_presence(official, tmp_path):
    with pytest.raises(ModelFileError, match="f2d_mapping"):
        load_msid_encoder(official["out"] / MAPPING_FILE)
    with pytest.raises(ModelFileError, match="convert_face2diffusion"):
        load_mapping(tmp_path / MAPPING_FILE)


# ----------------------------------------------------------------------------------------------
# mapping network

def test_mapping_without_expression_uses_null_exp_and_strength_blends(mapping):
    generator = torch.Generator().manual_seed(5)
    identity = torch.randn(3, 1536, generator=generator)
    expression = torch.randn(3, 64, generator=generator)
    null = mapping.null_exp.detach().expand(3, -1)
    with torch.no_grad():
        default = mapping(identity)
        assert default[0].shape == default[1].shape == (3, 768)
        for a, b in zip(default, mapping(identity, null)):
            assert torch.equal(a, b)
        for a, b in zip(default, mapping(identity, expression, expression_strength=0.0)):
            assert torch.equal(a, b)
        full = mapping(identity, expression)
        assert not torch.allclose(full[0], default[0])
        per_face = mapping(identity, expression, expression_strength=torch.tensor([0.0, 1.0, 0.5]))
        half = mapping(identity, 0.5 * (null + expression))
    for k in range(2):
        assert torch.equal(per_face[k][0], default[k][0]) and torch.allclose(per_face[k][1], full[k][1])
        torch.testing.assert_close(per_face[k][2], half[k][2])


def test_mapping_matches_the_official_formula(mapping, official):
    """IMG2TEXTwithEXP written out with functional ops from the official tensors."""
    s = official["mapping"]
    identity = torch.randn(2, 1536, generator=torch.Generator().manual_seed(6))
    x = torch.cat([identity, s["null_exp"].expand(2, -1)], 1)

    def mlp(prefix: str) -> torch.Tensor:
        h = x
        for i in range(2):
            h = F.leaky_relu(F.linear(h, s[f"{prefix}.layers.{i}.0.weight"], s[f"{prefix}.layers.{i}.0.bias"]), 0.2)
        return F.linear(h, s[f"{prefix}.fc_out.weight"], s[f"{prefix}.fc_out.bias"])

    with torch.no_grad():
        first, last = mapping(identity)
    torch.testing.assert_close(first, mlp("i2t_first"))
    torch.testing.assert_close(last, mlp("i2t_last"))


# ----------------------------------------------------------------------------------------------
# MSID encoder

def test_msid_features_equal_timm_intermediate_class_tokens_through_the_norms(encoder, official):
    """The feature from timm's own forward: class tokens after blocks 2, 5, 8, 11, then BN and LN."""
    s = official["msid"]
    with torch.device("meta"):
        vit = VisionTransformer(img_size=112, patch_size=8, embed_dim=384, depth=12, num_heads=12, mlp_ratio=4,
                                qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_classes=0)
    vit.load_state_dict({k: v for k, v in s.items() if not k.startswith("norms.")}, strict=True, assign=True)
    pixels = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(7)) * 2 - 1
    with torch.no_grad():
        _, inter = vit.eval().forward_intermediates(pixels, indices=[2, 5, 8, 11], norm=False,
                                                    return_prefix_tokens=True, output_fmt="NLC")
        parts = []
        for block, (_, prefix) in zip((2, 5, 8, 11), inter):
            n = f"norms.layer_{block}"
            y = F.batch_norm(prefix[:, 0], s[f"{n}.0.running_mean"], s[f"{n}.0.running_var"], s[f"{n}.0.weight"],
                             s[f"{n}.0.bias"], training=False, eps=1e-5)
            parts.append(F.layer_norm(y, (384,), s[f"{n}.1.weight"], s[f"{n}.1.bias"], eps=1e-5))
        torch.testing.assert_close(encoder(pixels), torch.cat(parts, 1), rtol=1e-4, atol=1e-5)


def test_encode_faces_shape_batch_consistency_and_normalisation(encoder):
    image = photo("fr_obama_small_lowres.jpg")
    p = points5("fr_obama_small_lowres.jpg")
    faces = [p, p + np.array([6.0, -4.0])]
    batch = encoder.encode_faces(image[None], faces)  # two faces of one image
    assert batch.shape == (2, F2D_MSID.feature_dim) == (2, 1536) and torch.isfinite(batch).all()
    assert not torch.allclose(batch[0], batch[1])
    torch.testing.assert_close(batch[0:1], encoder.encode_faces(image[None], faces[:1]), rtol=1e-4, atol=1e-5)
    crops = arcface_crops(image[None], faces)
    assert crops.shape == (2, 112, 112, 3) and 0.0 <= crops.min() and crops.max() <= 1.0
    with torch.no_grad():  # the official (x / 255 - 0.5) / 0.5 on the crop
        torch.testing.assert_close(batch, encoder(crops.permute(0, 3, 1, 2) * 2 - 1), rtol=1e-4, atol=1e-5)


def test_arcface_crop_puts_the_points_on_the_template():
    """A crop of a crop: the 112 px ArcFace-aligned photo re-aligned from the template points is itself."""
    image = photo("if_tomhanks_112.png")  # InsightFace's sample, already an ArcFace crop
    again = arcface_crops(image[None], [ARCFACE_TEMPLATE_112 + 0.5], antialias=False)[0]
    assert (again - image).abs().max() < 1e-4


def test_encode_faces_rejects_mismatched_batches(encoder):
    with pytest.raises(ValueError, match="2 images for 3 faces"):
        encoder.encode_faces(torch.zeros(2, 64, 64, 3), [np.zeros((5, 2))] * 3)
    with pytest.raises(ValueError, match=r"\(B, 3, 112, 112\)"):
        encoder(torch.zeros(1, 3, 224, 224))
