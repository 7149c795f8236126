"""The rig nodes in a real ComfyUI: a saved rig is listed and loads back, edits reach the preview, a
profile face stops with a readable message, and an animation yields one frame per keyframe step."""
import uuid

import numpy as np
import pytest
from PIL import Image

from comfy_runner import REPO, ComfyError

pytestmark = pytest.mark.server
PORTRAIT = REPO / "assets" / "likeness_portrait.png"
FIXTURES = REPO / "tests" / "fixtures" / "faces"


def tag() -> str:
    return f"t_{uuid.uuid4().hex[:8]}"


def fit_graph(comfy, path):
    return {"1": {"class_type": "LoadImage", "inputs": {"image": comfy.copy_input(path)}},
            "2": {"class_type": "LikenessFaceAlignCrop", "inputs": {
                "image": ["1", 0], "size": 256, "padding": 0.0, "selection": "largest", "face_index": 0,
                "on_no_face": "error", "min_score": 0.5, "max_detect_side": 1024}},
            "3": {"class_type": "LikenessFaceFit", "inputs": {"crops": ["2", 0], "face_crop": ["2", 1],
                                                              "backend": "embedded mesh (468 points)", "max_yaw": 45.0,
                                                              "refine_steps": 60}}}


def test_saved_rig_is_listed_and_loads_back(comfy):
    name = tag()
    prompt = fit_graph(comfy, PORTRAIT)
    prompt["4"] = {"class_type": "LikenessSaveFaceRig", "inputs": {"face_rig": ["3", 0], "filename_prefix": name}}
    entry = comfy.run(prompt)
    written = entry["outputs"]["4"]["text"][0]
    assert written.endswith(f"{name}_00001.safetensors")
    spec = comfy.request("/object_info/LikenessLoadFaceRig")["LikenessLoadFaceRig"]["input"]["required"]["rig_file"]
    options = spec[1]["options"] if spec[0] == "COMBO" else spec[0]  # V3 combos list their options in the dict
    assert f"{name}_00001.safetensors" in options
    load = {"1": {"class_type": "LikenessLoadFaceRig", "inputs": {"rig_file": f"{name}_00001.safetensors"}},
            "2": {"class_type": "LikenessRenderBuffers", "inputs": {"face_rig": ["1", 0], "channel_order": "caphuman"}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 2], "filename_prefix": tag()}},
            "4": {"class_type": "MaskToImage", "inputs": {"mask": ["2", 6]}},
            "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": tag()}}}
    entry = comfy.run(load)
    normal = np.asarray(Image.open(comfy.outputs_by_node(entry)["3"][0]).convert("RGB"))
    mask = np.asarray(Image.open(comfy.outputs_by_node(entry)["5"][0]).convert("L"))
    assert normal.shape == (256, 256, 3) and 0.12 < (mask > 127).mean() < 0.6
    # a frontal face's normals point at the camera: blue dominates where the face is
    assert normal[mask > 127][:, 2].mean() > 180


def test_profile_face_stops_with_a_clear_message(comfy):
    prompt = fit_graph(comfy, FIXTURES / "if_profile_left.jpeg")
    prompt["4"] = {"class_type": "PreviewImage", "inputs": {"images": ["3", 1]}}
    with pytest.raises(ComfyError, match="turned .* degrees from frontal"):
        comfy.run(prompt)


def test_edits_change_the_photo_only_where_the_face_is(comfy):
    from models.rig.action_units import ACTION_UNITS

    prompt = fit_graph(comfy, PORTRAIT)
    edit = {"face_rig": ["3", 0], "yaw": 0.0, "pitch": 0.0, "roll": 0.0, "jaw_open": 12.0,
            **{u.key: 0.0 for u in ACTION_UNITS}}
    prompt["4"] = {"class_type": "LikenessRigEdit", "inputs": edit}
    prompt["5"] = {"class_type": "LikenessRigPreviewEdit", "inputs": {
        "image": ["1", 0], "crops": ["2", 0], "fitted_rig": ["3", 0], "edited_rig": ["4", 0], "feather": 0.08}}
    prompt["6"] = {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": tag()}}
    prompt["7"] = {"class_type": "LikenessRigAnimate", "inputs": {"start": ["3", 0], "end": ["4", 0], "frames": 4,
                                                                  "easing": "linear"}}
    prompt["8"] = {"class_type": "LikenessRigPreviewEdit", "inputs": {
        "image": ["1", 0], "crops": ["2", 0], "fitted_rig": ["3", 0], "edited_rig": ["7", 0], "feather": 0.08}}
    prompt["9"] = {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": tag()}}
    entry = comfy.run(prompt)
    original = np.asarray(Image.open(PORTRAIT).convert("RGB")).astype(int)
    edited = np.asarray(Image.open(comfy.outputs_by_node(entry)["6"][0]).convert("RGB")).astype(int)
    changed = np.abs(edited - original).max(-1) > 12
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 300, "opening the jaw should visibly move the mouth"
    assert 150 < ys.mean() < 300 and 150 < xs.mean() < 330  # around the mouth, not elsewhere
    assert changed[:100].sum() == 0 and changed[:, :80].sum() == 0  # hair top and left border untouched
    frames = [np.asarray(Image.open(p).convert("RGB")).astype(int) for p in comfy.outputs_by_node(entry)["9"]]
    assert len(frames) == 4 and np.array_equal(frames[0], original)
    amount = [np.abs(f - original).sum() for f in frames]
    assert amount[0] < amount[1] < amount[2] < amount[3]
