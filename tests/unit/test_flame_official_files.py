"""Official-format FLAME / DECA files: safe strict readers, and the converter's safetensors round trip."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models.flame import (DECA_E_FLAME_FILE, FLAME_FILE, LANDMARKS_FILE, TEXTURE_FILE, FlameLandmarks, FlameModel,
                          FlameTexture, encoder_state_shapes, load_deca_encoder, load_flame_landmarks,
                          load_flame_model, load_flame_texture, read_deca_e_flame, read_flame_pickle,
                          read_landmark_embedding, read_texture_space)
from models.flame.landmarks import LANDMARK_SHAPES
from models.loading import ModelFileError, StateDictMismatchError, sha256_file
from test_flame_synthetic import flame_tensors, write_generic_model_pkl

ROOT = Path(__file__).resolve().parents[2]
SIDE = 16  # texture side for the tests; the official files are 512 x 512


def random_e_flame(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.randint(0, 1000, s, generator=generator) if k.endswith("num_batches_tracked")
            else torch.randn(s, generator=generator) for k, s in encoder_state_shapes().items()}


def write_deca_tar(path: Path, e_flame: dict[str, torch.Tensor], legacy: bool = False) -> None:
    # E_detail / D_detail are carried with a few of their real keys; the readers ignore them
    torch.save({"E_flame": e_flame, "E_detail": {"layers.2.weight": torch.zeros(128, 1024)},
                "D_detail": {"l1.0.weight": torch.zeros(8192, 181)}}, path, _use_new_zipfile_serialization=not legacy)


def flame_texture_npz(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    content = {"mean": rng.uniform(0, 255, (SIDE, SIDE, 3)), "tex_dir": rng.normal(0, 20, (SIDE, SIDE, 3, 200))}
    np.savez(path, **content)
    return content


def bfm_albedo_npz(path: Path, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    content = {"MU": rng.uniform(0, 1, (1, SIDE * SIDE * 3)), "PC": rng.normal(0, 0.05, (SIDE * SIDE * 3, 199)),
               "specMU": np.zeros(3)}
    np.savez_compressed(path, **content)
    return content


def landmark_content(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    bary = lambda *s: (lambda b: b / b.sum(-1, keepdims=True))(rng.random((*s, 3)))  # noqa: E731
    return {"static_lmk_faces_idx": rng.integers(0, 9976, 51).astype(np.uint32),
            "static_lmk_bary_coords": bary(51),
            "dynamic_lmk_faces_idx": torch.from_numpy(rng.integers(0, 9976, (79, 17))),  # torch, as in DECA's file
            "dynamic_lmk_bary_coords": torch.from_numpy(bary(79, 17)).float(),
            "full_lmk_faces_idx": rng.integers(0, 9976, (1, 68)),
            "full_lmk_bary_coords": bary(1, 68)}


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    folder = tmp_path_factory.mktemp("official")
    files = {"flame": folder / "generic_model.pkl", "deca": folder / "deca_model.tar",
             "texture": folder / "FLAME_texture.npz", "landmarks": folder / "landmark_embedding.npy"}
    write_generic_model_pkl(files["flame"], folder / "fake_site")
    e_flame = random_e_flame()
    write_deca_tar(files["deca"], e_flame)
    texture = flame_texture_npz(files["texture"])
    landmarks = landmark_content()
    np.save(files["landmarks"], landmarks, allow_pickle=True)
    return {"files": files, "e_flame": e_flame, "texture": texture, "landmarks": landmarks}


# ----------------------------------------------------------------------------------------------
# generic_model.pkl

def test_chumpy_pickle_loads_without_chumpy_into_exact_tensors(official):
    assert importlib.util.find_spec("chumpy") is None
    tensors = read_flame_pickle(official["files"]["flame"])
    assert "chumpy" not in sys.modules
    expected = flame_tensors()
    assert tensors.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(tensors[key], value), key
    assert tensors["parents"].tolist() == [-1, 0, 1, 1, 1]


def test_model_built_from_the_pickle_returns_the_template_at_rest(official):
    tensors = read_flame_pickle(official["files"]["flame"])
    vertices = FlameModel(tensors)(torch.zeros(1, 100), torch.zeros(1, 50), torch.zeros(1, 6))
    assert torch.equal(vertices[0], tensors["v_template"])


def test_flame_pickle_with_wrong_content_is_named_in_the_error(tmp_path):
    path = tmp_path / "generic_model.pkl"

    def break_it(arrays):
        arrays["posedirs"] = arrays["posedirs"][..., :27]
        del arrays["weights"]

    write_generic_model_pkl(path, tmp_path / "fake", mutate=break_it)
    with pytest.raises(StateDictMismatchError) as caught:
        read_flame_pickle(path)
    message = str(caught.value)
    assert str(path) in message and "FLAME 2020 generic_model.pkl" in message
    assert "weights (5023, 5)" in message and "posedirs: expected (5023, 3, 36), found (5023, 3, 27)" in message

    def rewire(arrays):
        arrays["kintree_table"][0, 3] = 2
    write_generic_model_pkl(path, tmp_path / "fake", mutate=rewire)
    with pytest.raises(ModelFileError, match="kinematic tree"):
        read_flame_pickle(path)


# ----------------------------------------------------------------------------------------------
# deca_model.tar

@pytest.mark.parametrize("legacy", [False, True])
def test_deca_checkpoint_e_flame_is_read_strictly(official, tmp_path, legacy):
    e_flame = official["e_flame"]
    path = tmp_path / "deca_model.tar"
    write_deca_tar(path, e_flame, legacy)
    state, entries = read_deca_e_flame(path)
    assert entries == ["D_detail", "E_detail", "E_flame"]
    assert list(state) == list(encoder_state_shapes())
    assert all(torch.equal(state[k], e_flame[k].to(state[k].dtype)) for k in state)


def test_deca_checkpoint_without_batch_counters_is_accepted(official, tmp_path):
    e_flame = {k: v for k, v in official["e_flame"].items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "deca_model.tar"
    write_deca_tar(path, e_flame)
    state, _ = read_deca_e_flame(path)
    assert state["encoder.bn1.num_batches_tracked"].item() == 0


def test_deca_checkpoint_with_wrong_layout_is_named_in_the_error(official, tmp_path):
    path = tmp_path / "deca_model.tar"
    e_flame = dict(official["e_flame"])
    e_flame["layers.2.weight"] = torch.zeros(53, 1024)  # an EMOCA expression head, not E_flame
    e_flame.pop("encoder.conv1.weight")
    write_deca_tar(path, e_flame)
    with pytest.raises(StateDictMismatchError) as caught:
        read_deca_e_flame(path)
    message = str(caught.value)
    assert "deca_model.tar" in message and "E_flame" in message
    assert "encoder.conv1.weight (64, 3, 7, 7)" in message
    assert "layers.2.weight: expected (236, 1024), found (53, 1024)" in message
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ModelFileError, match=r"expected a dict with the state dicts \('E_flame'"):
        read_deca_e_flame(path)


# ----------------------------------------------------------------------------------------------
# texture spaces

def deca_style_albedo(mean: np.ndarray, basis: np.ndarray, n_pc: int, scale: float, code: np.ndarray) -> np.ndarray:
    """DECA's FLAMETex arithmetic on the raw arrays: flat mean + basis @ code, HWC -> CHW, BGR -> RGB."""
    flat = mean.reshape(1, -1) * scale + code @ (basis.reshape(-1, n_pc)[:, :code.shape[1]] * scale).T
    return flat.reshape(len(code), SIDE, SIDE, 3).transpose(0, 3, 1, 2)[:, ::-1]


def test_flame_texture_space_matches_deca_arithmetic(official):
    tensors, info = read_texture_space(official["files"]["texture"])
    assert info == {"texture_type": "FLAME", "components_in_file": 200, "components_kept": 50, "resolution": SIDE,
                    "channels": "RGB", "scale": "0..1"}
    code = np.random.default_rng(5).normal(size=(2, 50))
    expected = deca_style_albedo(official["texture"]["mean"], official["texture"]["tex_dir"], 200, 1 / 255, code)
    albedo = FlameTexture(tensors).albedo_uv(torch.from_numpy(code).float())
    np.testing.assert_allclose(albedo.numpy(), expected, atol=2e-5)


def test_bfm_albedo_space_matches_deca_arithmetic(tmp_path):
    path = tmp_path / "FLAME_albedo_from_BFM.npz"
    content = bfm_albedo_npz(path)
    tensors, info = read_texture_space(path, n_tex=20)
    assert info["texture_type"] == "BFM" and info["components_kept"] == 20
    code = np.random.default_rng(6).normal(size=(1, 20))
    expected = deca_style_albedo(content["MU"], content["PC"], 199, 1.0, code)
    np.testing.assert_allclose(FlameTexture(tensors).albedo_uv(torch.from_numpy(code).float()).numpy(), expected,
                               atol=2e-6)


def test_texture_files_with_wrong_layout_are_explained(tmp_path):
    path = tmp_path / "tex.npz"
    np.savez(path, mean=np.zeros((SIDE, SIDE, 3)), tex_dir=np.zeros((SIDE, SIDE, 3, 100)))
    with pytest.raises(ModelFileError, match=r"'tex_dir' has shape \(16, 16, 3, 100\); expected 768 x 200"):
        read_texture_space(path)
    np.savez(path, mean=np.zeros((10, 16, 3)), tex_dir=np.zeros((10, 16, 3, 200)))
    with pytest.raises(ModelFileError, match="square"):
        read_texture_space(path)
    np.savez(path, albedo=np.zeros(3))
    with pytest.raises(ModelFileError, match=r"mean \+ tex_dir .* MU \+ PC"):
        read_texture_space(path)
    np.savez(path, mean=np.zeros((SIDE, SIDE, 3)), tex_dir=np.zeros((SIDE, SIDE, 3, 200)))
    with pytest.raises(ModelFileError, match="cannot keep 300"):
        read_texture_space(path, n_tex=300)
    np.save(tmp_path / "tex.npy", np.zeros(3))
    with pytest.raises(ModelFileError, match=r"tex\.npy: expected an \.npz archive"):
        read_texture_space(tmp_path / "tex.npy")
    np.savez(path, mean=np.array([{"x": 1}], dtype=object), tex_dir=np.zeros(3))
    with pytest.raises(ModelFileError, match="not a readable .npz"):
        read_texture_space(path)


# ----------------------------------------------------------------------------------------------
# landmark_embedding.npy

def test_landmark_embedding_with_torch_entries_is_read_safely(official):
    tensors = read_landmark_embedding(official["files"]["landmarks"])
    content = official["landmarks"]
    assert {k: tuple(v.shape) for k, v in tensors.items()} == LANDMARK_SHAPES
    assert torch.equal(tensors["dynamic_lmk_faces_idx"], content["dynamic_lmk_faces_idx"])
    assert torch.equal(tensors["full_lmk_faces_idx"], torch.from_numpy(content["full_lmk_faces_idx"][0]))
    assert tensors["static_lmk_faces_idx"].dtype == torch.long
    FlameLandmarks(tensors)


def test_landmark_embedding_with_bad_indices_or_missing_entries(tmp_path):
    path = tmp_path / "landmark_embedding.npy"
    content = landmark_content()
    content["static_lmk_faces_idx"][3] = 9976
    np.save(path, content, allow_pickle=True)
    with pytest.raises(ModelFileError, match=r"static_lmk_faces_idx indexes triangles outside \[0, 9976\)"):
        read_landmark_embedding(path)
    content = landmark_content()
    del content["dynamic_lmk_bary_coords"]
    np.save(path, content, allow_pickle=True)
    with pytest.raises(StateDictMismatchError, match=r"dynamic_lmk_bary_coords \(79, 17, 3\)"):
        read_landmark_embedding(path)
    np.save(path, np.zeros(3))
    with pytest.raises(ModelFileError, match="expected a pickled dict"):
        read_landmark_embedding(path)


# ----------------------------------------------------------------------------------------------
# converter

def run_converter(argv: list[str]) -> int:
    import convert_flame_deca  # scripts/ is on sys.path (tests/conftest.py)

    return convert_flame_deca.main(argv)


def test_converter_round_trip_equals_the_direct_load(official, tmp_path, capsys):
    files = official["files"]
    out = tmp_path / "likeness" / "flame"
    code = run_converter(["--flame", str(files["flame"]), "--deca", str(files["deca"]), "--texture",
                          str(files["texture"]), "--landmarks", str(files["landmarks"]), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert {p.name for p in out.iterdir()} == {FLAME_FILE, DECA_E_FLAME_FILE, TEXTURE_FILE, LANDMARKS_FILE}

    direct_flame = FlameModel(read_flame_pickle(files["flame"]))
    converted_flame = load_flame_model(out / FLAME_FILE)
    for name, buffer in direct_flame.named_buffers():
        assert torch.equal(buffer, dict(converted_flame.named_buffers())[name]), name
    generator = torch.Generator().manual_seed(3)
    params = (torch.randn(2, 100, generator=generator), torch.randn(2, 50, generator=generator),
              0.3 * torch.randn(2, 6, generator=generator))
    assert torch.equal(direct_flame(*params), converted_flame(*params))

    encoder = load_deca_encoder(out / DECA_E_FLAME_FILE)
    direct_state, _ = read_deca_e_flame(files["deca"])
    assert all(torch.equal(v, direct_state[k]) for k, v in encoder.state_dict().items())
    assert not encoder.training

    texture_tensors, _ = read_texture_space(files["texture"])
    texture = load_flame_texture(out / TEXTURE_FILE)
    assert torch.equal(texture.mean, texture_tensors["mean"]) and torch.equal(texture.basis, texture_tensors["basis"])

    landmarks = load_flame_landmarks(out / LANDMARKS_FILE)
    for key, value in read_landmark_embedding(files["landmarks"]).items():
        assert torch.equal(getattr(landmarks, key), value), key

    from safetensors import safe_open
    with safe_open(str(out / FLAME_FILE), "pt") as handle:
        meta = json.loads(handle.metadata()["likeness"])
    assert meta["kind"] == "flame2020_generic" and meta["vertices"] == 5023 and meta["faces"] == 9976
    assert meta["source"] == {"name": "generic_model.pkl", "bytes": files["flame"].stat().st_size,
                              "sha256": sha256_file(files["flame"])}


def test_converted_files_are_not_interchangeable(official, tmp_path):
    out = tmp_path / "flame"
    assert run_converter(["--landmarks", str(official["files"]["landmarks"]), "--out", str(out)]) == 0
    (out / LANDMARKS_FILE).rename(out / FLAME_FILE)
    with pytest.raises(ModelFileError, match="metadata kind is 'flame_landmarks', expected 'flame2020_generic'"):
        load_flame_model(out / FLAME_FILE)


def test_converter_cli_reports_a_bad_input_by_name(tmp_path):
    bad = tmp_path / "landmark_embedding.npy"
    np.save(bad, {"static_lmk_faces_idx": np.zeros(51, dtype=np.int64)}, allow_pickle=True)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "convert_flame_deca.py"), "--landmarks", str(bad),
                             "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert f"error: {bad}: not a valid FLAME landmark embedding" in result.stderr
    assert "static_lmk_bary_coords (51, 3)" in result.stderr
    assert not out.exists() or not any(out.iterdir())
