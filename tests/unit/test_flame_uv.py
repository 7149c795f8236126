"""FLAME's UV layout: reading DECA's head_template.obj, converting it to flame_uv.safetensors, loading it
with the FLAME assets, and rendering rigs whose albedo is DECA's texture code through it.

The full-size OBJ is built on test_rig_flame's synthetic FLAME (its `folders` fixture): UVs follow the
template's x (right) and y (up) around the face, stored in reverse order so that UV and vertex indices differ.
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import torch
from safetensors import safe_open

import convert_flame_deca as converter
from models.flame import DECA_E_FLAME_FILE, FLAME_FILE, TEXTURE_FILE, UV_FILE, FlameTexture, FlameTopology
from models.flame.uv_layout import read_head_template_obj
from models.flame.files import load_flame_uv
from models.loading import ModelFileError
from models.rig.flame_backend import load_flame_assets
from models.rig.render import render_rig
from test_rig_flame import face_centre, flame_rig, folders  # noqa: F401  (folders is a fixture)

TINY = """# two triangles sharing an edge
mtllib head.mtl
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0 1.0 0.5 0.5
vt 0.0 0.0
vt 1.0 0.0
vt 1.0 1.0 0.0
vt 0.0 1.0
vt 0.5 0.5
vn 0 0 1
usemtl skin
f 1/1 2/2 3/3
f 1/5/1 3/3/1 4/4/1  # with normals
"""
TINY_TOPOLOGY = FlameTopology(n_vertices=4, n_faces=2)


def write_obj(path, vertices, faces, uv, uv_faces) -> None:
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices.tolist()]
    lines += [f"vt {u:.6f} {v:.6f}" for u, v in uv.tolist()]
    lines += ["f " + " ".join(f"{a + 1}/{b + 1}" for a, b in zip(face, corners))
              for face, corners in zip(faces.tolist(), uv_faces.tolist())]
    path.write_text("\n".join(lines) + "\n")


def template_uv(template: torch.Tensor) -> torch.Tensor:
    """(V, 2) UVs: u grows with x, v with y, centred on the face and kept inside [0.05, 0.95]."""
    centre = face_centre()[:2].to(template)
    return (0.5 + 2.0 * (template[:, :2] - centre)).clamp(0.05, 0.95).float()


@pytest.fixture(scope="module")
def layout(folders):  # noqa: F811
    """(head_template.obj path, the layout it encodes), on the synthetic FLAME's template and faces."""
    from models.flame import load_flame_model

    model = load_flame_model(folders["full"] / FLAME_FILE)
    template, faces = model.v_template.detach().double(), model.faces.long()
    uv = template_uv(template).flip(0)  # UV row V-1-i belongs to vertex i
    uv_faces = template.shape[0] - 1 - faces
    path = folders["work"] / "head_template.obj"
    write_obj(path, template.numpy(), faces, uv, uv_faces)
    return path, {"uv": uv, "uv_faces": uv_faces, "faces": faces}


@pytest.fixture(scope="module")
def textured(folders, layout, tmp_path_factory):  # noqa: F811
    """FlameAssets with texture and UV layout, loaded from a folder the converter wrote."""
    folder = tmp_path_factory.mktemp("flame_uv")
    for name in (FLAME_FILE, DECA_E_FLAME_FILE, TEXTURE_FILE):
        os.link(folders["full"] / name, folder / name)
    converter.convert_uv(layout[0], folder)
    return load_flame_assets(folder)


# ----------------------------------------------------------------------------------------------
# the OBJ

def test_tiny_obj_is_read_with_separate_uv_indices(tmp_path):
    path = tmp_path / "tiny.obj"
    path.write_text(TINY)
    out = read_head_template_obj(path, torch.tensor([[0, 1, 2], [0, 2, 3]]), topology=TINY_TOPOLOGY)
    assert out["uv"].dtype == torch.float32 and out["uv"].shape == (5, 2)
    assert torch.equal(out["uv"][2], torch.tensor([1.0, 1.0])) and torch.equal(out["uv"][4], torch.tensor([0.5, 0.5]))
    assert out["uv_faces"].dtype == torch.int64 and out["uv_faces"].tolist() == [[0, 1, 2], [4, 2, 3]]
    assert out["faces"].dtype == torch.int64 and out["faces"].tolist() == [[0, 1, 2], [0, 2, 3]]


@pytest.mark.parametrize("line, detail", [
    ("vt 0.5 x", "not a number"),
    ("vt 0.5", "expected 2 or 3 numbers"),
    ("vt 0.5 1.5", "outside [0, 1]"),
    ("v 1 2", "expected 3 or 4 or 6 numbers"),
    ("f 1 2 3", "'v/vt'"),
    ("f 1//1 2//1 3//1", "'v/vt'"),
    ("f 1/1 2/2 3/3 4/4", "expected a triangle"),
    ("f 0/1 2/2 3/3", "1-based"),
    ("f -1/1 2/2 3/3", "1-based"),
    ("curv 0 1", "unexpected OBJ statement"),
])
def test_malformed_lines_are_named(tmp_path, line, detail):
    path = tmp_path / "bad.obj"
    path.write_text(TINY + line + "\n")
    with pytest.raises(ModelFileError, match=f"line {TINY.count(chr(10)) + 1}: ") as err:
        read_head_template_obj(path, topology=TINY_TOPOLOGY)
    assert str(path) in str(err.value) and detail in str(err.value)


def test_counts_indices_and_faces_are_checked(tmp_path):
    path = tmp_path / "tiny.obj"
    path.write_text(TINY)
    with pytest.raises(ModelFileError, match="4 vertices and 2 faces; FLAME 2020's .* has 5023 and 9976"):
        read_head_template_obj(path)
    with pytest.raises(ModelFileError, match="differ from the FLAME model's faces"):
        read_head_template_obj(path, torch.tensor([[0, 1, 2], [0, 3, 2]]), topology=TINY_TOPOLOGY)
    path.write_text(TINY.replace("f 1/1 2/2 3/3", "f 1/1 2/2 3/9"))
    with pytest.raises(ModelFileError, match="refers past the 4 vertices or 5 UV"):
        read_head_template_obj(path, topology=TINY_TOPOLOGY)


def test_full_size_obj_matches_the_flame_faces(layout, textured):
    path, expected = layout
    out = read_head_template_obj(path, textured.model.faces)
    assert out["uv"].shape == (5023, 2) and out["uv_faces"].shape == out["faces"].shape == (9976, 3)
    assert torch.allclose(out["uv"], expected["uv"], atol=1e-6)
    assert torch.equal(out["uv_faces"], expected["uv_faces"]) and torch.equal(out["faces"], expected["faces"])


# ----------------------------------------------------------------------------------------------
# converter and loader

def test_converter_round_trip(layout, textured, folders, tmp_path):  # noqa: F811
    path, expected = layout
    assert textured.uv is not None and textured.texture is not None
    assert torch.allclose(textured.uv.uv, expected["uv"], atol=1e-6)
    assert textured.uv.uv_faces.dtype == torch.int64 and torch.equal(textured.uv.uv_faces, expected["uv_faces"])

    assert converter.main(["--uv", str(path), "--out", str(tmp_path)]) == 0  # alone: not checked against FLAME
    with safe_open(str(tmp_path / UV_FILE), framework="pt") as handle:
        meta = json.loads(handle.metadata()["likeness"])
    assert meta["kind"] == "flame_uv" and meta["uv_coords"] == 5023 and meta["faces"] == 9976
    assert meta["checked_against_flame"] is False and len(meta["source"]["sha256"]) == 64
    assert torch.equal(load_flame_uv(tmp_path / UV_FILE).uv_faces, expected["uv_faces"])

    with pytest.raises(ModelFileError, match="kind"):
        load_flame_uv(folders["full"] / FLAME_FILE)


def test_converter_rejects_an_obj_of_other_faces(layout, folders, tmp_path):  # noqa: F811
    _, expected = layout
    obj = tmp_path / "other.obj"
    write_obj(obj, np.zeros((5023, 3)), expected["faces"].roll(1, 1), expected["uv"], expected["uv_faces"])
    os.link(folders["full"] / FLAME_FILE, tmp_path / FLAME_FILE)
    assert converter.main(["--uv", str(obj), "--out", str(tmp_path)]) == 1
    assert not (tmp_path / UV_FILE).exists()


# ----------------------------------------------------------------------------------------------
# rendering texture coefficients

def constant_texture(colour, directions) -> FlameTexture:
    """A 16 px texture space whose images are constant: `colour` + sum_k code_k * directions[k]."""
    mean = torch.tensor(colour, dtype=torch.float32).view(3, 1, 1).expand(3, 16, 16)
    basis = torch.zeros(50, 3, 16, 16)
    for k, direction in enumerate(directions):
        basis[k] = torch.tensor(direction, dtype=torch.float32).view(3, 1, 1)
    return FlameTexture({"mean": mean.contiguous(), "basis": basis})


def test_constant_texture_gives_a_constant_albedo_buffer(textured):
    flame = dataclasses.replace(textured, texture=constant_texture([0.6, 0.4, 0.3], [[0.1, 0.0, 0.0], [0.0, 0.0, 0.2]]))
    code = torch.zeros(2, 50)
    code[0, 0], code[1, 1] = 1.0, -1.0
    out = render_rig(flame_rig(2, albedo=code), flame=flame)
    mask = out.buffers.mask > 0.5
    assert 0.05 < mask.float().mean() < 0.9
    expected = torch.tensor([[0.7, 0.4, 0.3], [0.6, 0.4, 0.1]])
    for b in range(2):
        assert torch.allclose(out.buffers.albedo[b][mask[b]], expected[b].expand(int(mask[b].sum()), 3), atol=1e-5)
    assert out.buffers.albedo[~mask].abs().max() == 0
    assert torch.equal(out.physic_cond[:, 6:], out.buffers.albedo.permute(0, 3, 1, 2))  # diffusionrig order


@pytest.mark.parametrize("axis", ["u", "v"])
def test_split_texture_follows_the_uv_layout(textured, axis):
    """u grows to the image's right; v grows upward (texture row 0 is the top, as in DECA)."""
    image = torch.zeros(3, 16, 16)
    first, second = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    halves = (slice(None), slice(None, 8)), (slice(None), slice(8, None))  # left / right columns
    if axis == "v":
        halves = (slice(None, 8), slice(None)), (slice(8, None), slice(None))  # top / bottom rows (v high / low)
    image[(slice(None), *halves[0])] = first.view(3, 1, 1)
    image[(slice(None), *halves[1])] = second.view(3, 1, 1)
    flame = dataclasses.replace(textured, texture=FlameTexture({"mean": image, "basis": torch.zeros(50, 3, 16, 16)}))
    out = render_rig(flame_rig(1, albedo=torch.zeros(1, 50)), flame=flame)
    albedo, mask = out.buffers.albedo[0], out.buffers.mask[0] > 0.5
    where = {}
    for name, colour in (("first", first), ("second", second)):
        hits = ((albedo - colour).abs().amax(-1) < 1e-4) & mask
        assert hits.sum() > 50, f"the {name} colour should cover part of the face"
        rows, cols = hits.nonzero(as_tuple=True)
        where[name] = (cols if axis == "u" else rows).float().mean()
    assert where["first"] < where["second"]  # red left of blue / red (v up, top rows) above blue


def test_texture_code_needs_texture_and_uv_layout(textured):
    rig = flame_rig(1, albedo=torch.zeros(1, 50))
    with pytest.raises(ValueError, match="texture coefficients") as err:
        render_rig(rig, flame=dataclasses.replace(textured, uv=None))
    message = str(err.value)
    assert UV_FILE in message and "--uv" in message and "head_template.obj" in message and TEXTURE_FILE not in message
    with pytest.raises(ValueError) as err:
        render_rig(rig, flame=dataclasses.replace(textured, texture=None, uv=None))
    assert TEXTURE_FILE in str(err.value) and "--texture" in str(err.value) and UV_FILE in str(err.value)
    with pytest.raises(ValueError, match=UV_FILE):
        render_rig(rig, flame=None)


def test_per_vertex_albedo_still_renders_without_uv(textured):
    out = render_rig(flame_rig(1), flame=dataclasses.replace(textured, texture=None, uv=None))
    mask = out.buffers.mask[0] > 0.5
    assert torch.allclose(out.buffers.albedo[0][mask], torch.tensor(0.5))
