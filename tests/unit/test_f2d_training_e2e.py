"""scripts/train_face2diffusion.py end to end on CPU: real photos -> dataset -> two-process training
(torchrun, gloo) against a tiny diffusers SD 1.x folder -> files the nodes load -> exact resumption.

Slow (several process launches); marked `slow` and still part of the default suite.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models.identity import MSIDConfig, load_mapping
from models.identity.mapping import MappingConfig
from models.identity.rig_expression import load_rig_expression_map
from models.identity.training import DatasetIndex
from models.loading import write_safetensors_atomic

pytest.importorskip("diffusers")
pytest.importorskip("accelerate")

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "train_face2diffusion.py"
FACES = REPO.parent / "shared" / "faces"
PHOTOS = ("fr_alex_smile.png", "lp_drv_d19_openmouth.jpg", "dlib_tomcruise_smile.jpg")
NO_FACE = "skimg_page_text.png"
HIDDEN = 32
RESOLUTION = 64  # the tiny VAE halves it: 32 x 32 latents


def run(*args: str, processes: int = 1, timeout: int = 300) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    if processes == 1:
        command = [sys.executable, str(SCRIPT), *args]
    else:  # PyTorch's own launcher; accelerate picks the gloo backend from its environment
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   str(SCRIPT), *args]
    out = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(args[:1])} failed:\n{out.stdout[-3000:]}\n{out.stderr[-6000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from tiny_sd_diffusers import write_tiny_sd

    missing = [name for name in (*PHOTOS, NO_FACE) if not (FACES / name).is_file()]
    if missing:
        pytest.skip(f"test photos not found in {FACES}: {missing}")
    root = tmp_path_factory.mktemp("f2d_train")
    photos = root / "photos"
    photos.mkdir()
    for name in (*PHOTOS, NO_FACE):
        (photos / name).symlink_to(FACES / name)
    write_tiny_sd(root / "sd")
    # a random MSID at full size in the converter's format (kind tag, strict key set)
    from models.identity.msid import MSIDEncoder

    torch.manual_seed(0)
    write_safetensors_atomic(root / "f2d_msid.safetensors", MSIDEncoder(MSIDConfig()).state_dict(),
                             {"kind": "f2d_msid"})
    return root


@pytest.fixture(scope="module")
def dataset(workspace):
    printed = run("prepare", "--photos", str(workspace / "photos"), "--out", str(workspace / "data"),
                  "--msid", str(workspace / "f2d_msid.safetensors"), "--resolution", str(RESOLUTION))
    assert "3 faces written" in printed
    return workspace / "data"


def train(workspace: Path, output: str, *extra: str) -> str:
    return run("train", "--data", str(workspace / "data"), "--base-model", str(workspace / "sd"),
               "--output", str(workspace / output), "--mapping-hidden-dim", str(HIDDEN), "--batch-size", "1",
               "--checkpoint-every", "2", "--num-workers", "0", "--log-every", "1", "--lr", "1e-3", *extra,
               processes=2)


def reports(folder: Path) -> list[dict]:
    return [json.loads((folder / "logs" / f"rank{r}.json").read_text()) for r in range(2)]


def test_prepare_writes_one_sample_per_face_and_skips_the_rest(dataset):
    index = DatasetIndex.read(dataset)
    assert sorted(s["source"] for s in index.samples) == sorted(PHOTOS)
    assert [s["source"] for s in index.skipped] == [NO_FACE]
    assert index.identity_dim == 1536 and index.resolution == RESOLUTION
    assert index.rig_layout == "mesh468:au28+jaw3" and index.rig_features == 31
    from models.identity.training import FaceTrainingDataset

    data = FaceTrainingDataset(dataset)
    for item in (data[i] for i in range(len(data))):
        face = float(item["mask"].mean())
        assert 0.1 < face < 0.6, face  # the face, not the whole crop
        centre = item["mask"][0, RESOLUTION // 2 - 4:RESOLUTION // 2 + 4, RESOLUTION // 2 - 4:RESOLUTION // 2 + 4]
        assert bool(centre.all())  # an aligned crop has the face in the middle
        assert float(item["mask"][0, 0, 0]) == 0.0
    identities = torch.stack([data[i]["identity"] for i in range(len(data))])
    assert torch.isfinite(identities).all() and not torch.allclose(identities[0], identities[1])


def test_two_processes_train_in_sync_write_loadable_files_and_resume_exactly(dataset, workspace):
    # 3 faces on 2 processes are 2 batches per epoch: stopping after 3 steps resumes mid-epoch
    first = train(workspace, "resumed", "--max-steps", "3")
    assert "step 2: checkpoint" in first and "step 3: checkpoint" in first
    after_three = reports(workspace / "resumed")
    assert [r["world_size"] for r in after_three] == [2, 2]
    assert after_three[0]["digest"] == after_three[1]["digest"]  # gradients were all-reduced
    assert after_three[0]["samples"][0] != after_three[1]["samples"][0]  # and the data was sharded
    assert all(math.isfinite(x) for r in after_three for x in r["losses"])
    step_three = load_mapping(workspace / "resumed" / "f2d_mapping.safetensors",
                              config=MappingConfig(hidden_dim=HIDDEN, token_dim=32))

    resumed = train(workspace, "resumed", "--max-steps", "4", "--resume", "latest")
    assert "resumed from" in resumed and "at step 3" in resumed
    straight = train(workspace, "straight", "--max-steps", "4")
    assert "step 4: checkpoint" in straight

    out = workspace / "resumed"
    assert [r["start_step"] for r in reports(out)] == [3, 3] and [r["end_step"] for r in reports(out)] == [4, 4]
    assert sorted(p.name for p in (out / "state").iterdir()) == ["step-0000003", "step-0000004"]
    assert json.loads((out / "state" / "step-0000004" / "trainer_state.json").read_text())["step"] == 4
    logged = [json.loads(line) for line in (out / "logs" / "train.jsonl").read_text().splitlines()]
    assert [e["step"] for e in logged] == [1, 2, 3, 4] and all(math.isfinite(e["loss"]) for e in logged)
    config = MappingConfig(hidden_dim=HIDDEN, token_dim=32)
    mapping = load_mapping(out / "f2d_mapping.safetensors", config=config)
    again = load_mapping(workspace / "straight" / "f2d_mapping.safetensors", config=config)
    rig = load_rig_expression_map(out / "f2d_rig_expression.safetensors")
    rig_again = load_rig_expression_map(workspace / "straight" / "f2d_rig_expression.safetensors")
    assert rig.layout == "mesh468:au28+jaw3"
    assert rig.linear.weight.abs().sum() > 0  # started at zero, so it was trained
    for key, value in mapping.state_dict().items():
        assert not torch.equal(value, step_three.state_dict()[key]) or key == "null_exp", key
        assert torch.equal(value, again.state_dict()[key]), f"{key}: 3 + 1 resumed steps differ from 4 steps"
    assert torch.equal(rig.linear.weight, rig_again.linear.weight)
    assert reports(out)[0]["digest"] == reports(workspace / "straight")[0]["digest"]


def test_frozen_mapping_trains_and_exports_only_the_rig_map(dataset, workspace, tmp_path):
    import train_face2diffusion as script  # scripts/ is on sys.path (tests/conftest.py)

    from models.identity.mapping import Img2TextMapping
    from models.identity.training import FaceTrainingDataset, save_mapping

    official = save_mapping(tmp_path / "official.safetensors",
                            Img2TextMapping(MappingConfig(hidden_dim=HIDDEN, token_dim=32)))
    args = script.parse_args(["train", "--data", str(dataset), "--base-model", str(workspace / "sd"), "--output",
                              str(tmp_path / "out"), "--mapping-hidden-dim", str(HIDDEN), "--freeze-mapping",
                              "--init-mapping", str(official)])
    data = FaceTrainingDataset(dataset)
    model = script.build_trainable(args, data, token_dim=32)
    assert [g["name"] for g in script.parameter_groups(model, args)] == ["rig_map"]
    assert model.config.null_expression_probability == 0.0
    written = script.export_weights(model, tmp_path / "out", 0, args, data)
    assert [p.name for p in written] == ["f2d_rig_expression.safetensors"]
    with pytest.raises(SystemExit):
        script.parse_args(["train", "--data", "d", "--base-model", "b", "--output", "o", "--freeze-mapping"])
