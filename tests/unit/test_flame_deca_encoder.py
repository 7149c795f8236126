"""DECA's E_flame: exact checkpoint layout (vs the shared manifests) and code decomposition."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from models.flame import CODE_SPLIT, DecaFlameEncoder, decompose_code, encoder_state_shapes
from models.loading import check_state_dict, parse_manifest

MANIFESTS = Path(os.environ.get(
    "LIKENESS_MANIFESTS", Path(__file__).resolve().parents[3] / "shared" / "manifests"))


def manifest(name: str) -> Path:
    path = MANIFESTS / name
    if not path.is_file():
        pytest.skip(f"state-dict manifest {path} not available (set LIKENESS_MANIFESTS)")
    return path


def test_e_flame_keys_and_shapes_equal_the_deca_manifest_in_order():
    expected = parse_manifest(manifest("deca_model_keys.txt"), prefix="E_flame.")
    assert list(encoder_state_shapes().items()) == list(expected.items())
    check_state_dict(DecaFlameEncoder().state_dict(), manifest("deca_model_keys.txt"), "E_flame", "test",
                     prefix="E_flame.")


def test_same_layout_with_53_outputs_is_emoca_expression_encoder():
    assert list(encoder_state_shapes(53).items()) == list(parse_manifest(manifest("emoca_expression_keys.txt")).items())


def test_layout_counts_without_the_manifest():
    # the manifest's E_flame block: 322 entries; ResNet-50 trunk 23,508,032 parameters + MLP 2,340,076
    shapes = encoder_state_shapes()
    assert len(shapes) == 322
    module = DecaFlameEncoder()
    assert sum(p.numel() for p in module.parameters()) == 25_848_108
    assert shapes["encoder.conv1.weight"] == (64, 3, 7, 7)
    assert shapes["encoder.layer4.2.bn3.num_batches_tracked"] == ()
    assert shapes["layers.0.weight"] == (1024, 2048) and shapes["layers.2.weight"] == (236, 1024)
    assert shapes["encoder.layer2.0.conv2.weight"] == (128, 128, 3, 3)
    assert shapes["encoder.layer3.0.downsample.0.weight"] == (1024, 512, 1, 1)


def test_decompose_splits_in_deca_order():
    assert [n for n, _ in CODE_SPLIT] == ["shape", "tex", "exp", "pose", "cam", "light"]
    code = torch.arange(2 * 236, dtype=torch.float32).reshape(2, 236)
    parts = decompose_code(code)
    sizes = {k: v.shape[1:] for k, v in parts.items()}
    assert sizes == {"shape": (100,), "tex": (50,), "exp": (50,), "pose": (6,), "cam": (3,), "light": (9, 3)}
    assert parts["pose"][0].tolist() == list(range(200, 206))
    assert parts["cam"][1].tolist() == [236 + 206, 236 + 207, 236 + 208]
    assert parts["light"][0, 1].tolist() == [212.0, 213.0, 214.0]  # row-major (9, 3): band 1, RGB
    with pytest.raises(ValueError, match="236"):
        decompose_code(torch.zeros(1, 235))


def test_forward_on_a_224_crop():
    torch.manual_seed(0)
    encoder = DecaFlameEncoder().eval()
    with torch.no_grad():
        codes = encoder.encode(torch.rand(1, 3, 224, 224))
    assert codes["shape"].shape == (1, 100) and codes["light"].shape == (1, 9, 3)
    with pytest.raises(ValueError, match="224"):
        encoder(torch.rand(1, 3, 256, 256))
