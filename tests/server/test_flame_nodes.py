"""FaceFit's FLAME backend in a real ComfyUI, on synthetic FLAME 2020 / DECA files in the official formats
converted by scripts/convert_flame_deca.py: a clear message while the files are missing, then fit, edit,
render, preview and a save/load round trip once they are in models/likeness/flame, then again with FLAME's
texture space and UV layout (DECA's texture code rendered through it)."""
import os
import sys
import uuid

import numpy as np
import pytest
from PIL import Image

from comfy_runner import REPO, ComfyError

sys.path.insert(0, str(REPO / "tests" / "unit"))  # the synthetic-file builders live with the unit tests

pytestmark = pytest.mark.server
PORTRAIT = REPO / "assets" / "likeness_portrait.png"


def write_flame_files(folder):
    import convert_flame_deca as converter
    from test_flame_official_files import write_deca_tar
    from test_flame_synthetic import write_generic_model_pkl
    from test_rig_flame import e_flame_state, face_model, landmark_embedding

    work = folder.parent / f"official_{uuid.uuid4().hex[:6]}"
    work.mkdir()
    arrays = write_generic_model_pkl(work / "generic_model.pkl", work / "fake_site", mutate=face_model)
    write_deca_tar(work / "deca_model.tar", e_flame_state())
    np.save(work / "landmark_embedding.npy", landmark_embedding(arrays["f"].astype(np.int64)), allow_pickle=True)
    converter.convert_flame(work / "generic_model.pkl", folder)
    converter.convert_deca(work / "deca_model.tar", folder)
    converter.convert_landmarks(work / "landmark_embedding.npy", folder)


def add_texture_and_uv(folder):
    """FLAME's texture space and a UV layout for the synthetic FLAME (test_flame_uv's), converted into `folder`."""
    import convert_flame_deca as converter
    from test_flame_official_files import flame_texture_npz
    from test_flame_uv import template_uv, write_obj

    from models.flame import FLAME_FILE, load_flame_model

    model = load_flame_model(folder / FLAME_FILE)
    work = folder.parent / f"official_{uuid.uuid4().hex[:6]}"
    work.mkdir()
    flame_texture_npz(work / "FLAME_texture.npz")
    write_obj(work / "head_template.obj", model.v_template.numpy(), model.faces.long(),
              template_uv(model.v_template.double()), model.faces.long())
    converter.convert_texture(work / "FLAME_texture.npz", folder, 50)
    converter.convert_uv(work / "head_template.obj", folder)


def graph(comfy, backend):
    from models.rig.action_units import ACTION_UNITS

    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": comfy.copy_input(PORTRAIT)}},
        "2": {"class_type": "LikenessFaceAlignCrop", "inputs": {
            "image": ["1", 0], "size": 256, "padding": 0.0, "selection": "largest", "face_index": 0,
            "on_no_face": "error", "min_score": 0.5, "max_detect_side": 1024}},
        "3": {"class_type": "LikenessFaceFit", "inputs": {"crops": ["2", 0], "face_crop": ["2", 1], "backend": backend,
                                                          "max_yaw": 45.0, "refine_steps": 20}},
        "4": {"class_type": "LikenessRigEdit", "inputs": {"face_rig": ["3", 0], "yaw": 0.0, "pitch": 0.0, "roll": 0.0,
                                                          "jaw_open": 0.0, **{u.key: 0.0 for u in ACTION_UNITS},
                                                          "au45_blink": 1.0}},
        "5": {"class_type": "LikenessRenderBuffers", "inputs": {"face_rig": ["4", 0], "channel_order": "diffusionrig"}},
        "6": {"class_type": "MaskToImage", "inputs": {"mask": ["5", 6]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": f"f_{uuid.uuid4().hex[:8]}"}},
        "8": {"class_type": "LikenessRigPreviewEdit", "inputs": {"image": ["1", 0], "crops": ["2", 0],
                                                                 "fitted_rig": ["3", 0], "edited_rig": ["4", 0],
                                                                 "feather": 0.08}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": f"f_{uuid.uuid4().hex[:8]}"}},
        "10": {"class_type": "LikenessSaveFaceRig", "inputs": {"face_rig": ["4", 0], "filename_prefix": "flame_rig"}},
    }


def test_flame_backend_end_to_end(comfy):
    folder = comfy.base / "models" / "likeness" / "flame"
    backend = "FLAME 2020 (DECA)"
    with pytest.raises(ComfyError, match="flame2020_generic.safetensors .* not found .*convert_flame_deca.py"):
        comfy.run(graph(comfy, backend))
    folder.mkdir(parents=True, exist_ok=True)
    write_flame_files(folder)
    entry = comfy.run(graph(comfy, backend), timeout=600)
    mask = np.asarray(Image.open(comfy.outputs_by_node(entry)["7"][0]).convert("L"))
    assert 0.05 < (mask > 127).mean() < 0.8, "the FLAME face should cover part of the crop"
    edited = np.asarray(Image.open(comfy.outputs_by_node(entry)["9"][0]).convert("RGB")).astype(int)
    original = np.asarray(Image.open(PORTRAIT).convert("RGB")).astype(int)
    assert edited.shape == original.shape and np.abs(edited - original).max() > 20  # the blink edit shows
    saved = entry["outputs"]["10"]["text"][0]
    assert os.path.isfile(saved)
    from models.rig.io import load_rig

    rig = load_rig(saved)
    assert rig.geometry == "flame" and rig.identity.shape == (1, 100) and rig.albedo.shape == (1, 5023, 3)
    assert rig.action_units.abs().sum() > 0

    add_texture_and_uv(folder)  # now fits keep DECA's texture code and render it through the UV layout
    textured = graph(comfy, backend)
    textured["3"]["inputs"]["max_yaw"] = 44.0  # a new input, so ComfyUI does not reuse the cached fit
    entry = comfy.run(textured, timeout=600)
    mask = np.asarray(Image.open(comfy.outputs_by_node(entry)["7"][0]).convert("L"))
    assert 0.05 < (mask > 127).mean() < 0.8
    rig = load_rig(entry["outputs"]["10"]["text"][0])
    assert rig.geometry == "flame" and rig.albedo.shape == (1, 50)
