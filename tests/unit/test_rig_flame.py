"""FaceFit's FLAME backend on synthetic official-format files: asset loading, DECA's crop and camera
rewritten exactly for the aligned crop, the fit on a real photo, and action-unit edits on FLAME.

The synthetic FLAME is test_flame_synthetic's model with a face in it: vertices 0..467 are the
canonical 468-point mesh placed by a known similarity, the eyeball groups sit at the eyes, the rest
lies far behind, the first 28 expression directions are the action units' fields (so a unit has an
exact FLAME counterpart) and the 68-point static embedding marks the anchors flame_units expects.
DECA's E_flame is a freshly initialised network whose last layer returns a chosen code.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

import convert_flame_deca as converter
from face_photos import photo
from models.faces.align import invert_affine
from models.faces.cropping import CropSettings, crop_faces
from models.faces.detector import FaceDetector
from models.faces.finder import find_faces
from models.faces.mediapipe_files import find_mediapipe_models
from models.flame import CODE_SPLIT, DECA_E_FLAME_FILE, FLAME_FILE, TEXTURE_FILE, DecaFlameEncoder
from models.loading import ModelFileError
from models.render.buffers import render_buffers
from models.rig.action_units import ACTION_UNITS, action_unit_basis
from models.rig.flame_backend import (FlameAssets, fit_flame, flame_mirror, flame_world_vertices,
                                      load_flame_assets)
from models.rig.flame_camera import DECA_SIZE, deca_box_indices, deca_camera_to_rig, deca_crop_affine
from models.rig.flame_units import (IBUG_TO_MEDIAPIPE, MEDIAPIPE_EMBEDDING_FILE, flame_correspondence,
                                    unit_expression_map)
from models.rig.geometry import rig_mesh, to_screen
from models.rig.rig import FaceRig
from models.rig.rotation import axis_angle_to_matrix, matrix_to_axis_angle
from models.rig.topology import load_mesh468
from test_flame_official_files import flame_texture_npz, write_deca_tar
from test_flame_synthetic import GROUPS, N_SHAPE_BASIS, V, write_generic_model_pkl

N_AU = len(ACTION_UNITS)
PLACE_SCALE = 1.05
PLACE_ROTATION = axis_angle_to_matrix(torch.tensor([0.05, -0.08, 0.02], dtype=torch.float64))
PLACE_SHIFT = torch.tensor([0.002, 0.03, -0.06], dtype=torch.float64)
SPARE = 468  # first vertex not on the face: the brow anchors' small triangles start here
DECA_CAM_SCALE = 10.0
CODE = dict(CODE_SPLIT)
OFFSETS = {name: sum(width for _, width in CODE_SPLIT[:i]) for i, (name, width) in enumerate(CODE_SPLIT)}


def place(points: torch.Tensor) -> torch.Tensor:
    """Canonical-mesh metres -> the synthetic FLAME's frame."""
    return PLACE_SCALE * points.double() @ PLACE_ROTATION.T + PLACE_SHIFT


def face_centre() -> torch.Tensor:
    return place(load_mesh468().canonical).mean(0)


def face_model(arrays: dict) -> None:
    """Turn the random synthetic FLAME into one with a face (see the module docstring)."""
    mesh = load_mesh468()
    rng = np.random.default_rng(7)
    template = rng.normal(0, 0.05, (V, 3)) + [0.0, 0.0, -0.4]  # far behind the face
    template[:468] = place(mesh.canonical).numpy()
    for group, eye in (("eye0", "right_eye"), ("eye1", "left_eye")):
        rows = GROUPS[group][0]
        centre = place(mesh.canonical[list(mesh.groups[eye])].mean(0)).numpy() - [0.0, 0.0, 0.012]
        template[rows.start:rows.stop] = centre + rng.normal(0, 0.004, (len(rows), 3))
    triangles = mesh.triangles.numpy()
    faces = np.resize(triangles, arrays["f"].shape)  # the face, repeated
    for k, ibug in enumerate(i for i, group in IBUG_TO_MEDIAPIPE.items() if len(group) == 2):
        spot = place(mesh.canonical[list(IBUG_TO_MEDIAPIPE[ibug])].mean(0)).numpy()
        first = SPARE + 3 * k
        template[first:first + 3] = spot + [[0, 0, 0], [1e-4, 0, 0], [0, 1e-4, 0]]
        faces[len(triangles) + k] = [first, first + 1, first + 2]
    fields = place(action_unit_basis(mesh)) - PLACE_SHIFT  # rotated and scaled displacements
    dirs = rng.normal(0, 1e-3, arrays["shapedirs"].shape)
    dirs[:, :, N_SHAPE_BASIS:N_SHAPE_BASIS + N_AU] = 0.0
    dirs[:468, :, N_SHAPE_BASIS:N_SHAPE_BASIS + N_AU] = fields.permute(1, 2, 0).numpy()
    arrays.update(v_template=template, f=faces.astype(np.uint32), shapedirs=dirs)


def anchor_triangle(faces: np.ndarray, vertex: int) -> tuple[int, list[float]]:
    row = int(np.flatnonzero((faces == vertex).any(1))[0])
    return row, [float(faces[row, c] == vertex) for c in range(3)]


def landmark_embedding(faces: np.ndarray) -> dict:
    """DECA's landmark_embedding.npy content with the static points on the anchors."""
    rng = np.random.default_rng(3)
    static_idx, static_bary = np.zeros(51, np.int64), np.tile([1.0, 0.0, 0.0], (51, 1))
    pair = 0
    for ibug, group in IBUG_TO_MEDIAPIPE.items():
        if len(group) == 1:
            static_idx[ibug - 17], static_bary[ibug - 17] = anchor_triangle(faces, group[0])
        else:
            static_idx[ibug - 17] = len(load_mesh468().triangles) + pair
            pair += 1
    bary = rng.random((79, 17, 3))
    return {"static_lmk_faces_idx": static_idx.astype(np.uint32), "static_lmk_bary_coords": static_bary,
            "dynamic_lmk_faces_idx": torch.from_numpy(rng.integers(0, 852, (79, 17))),
            "dynamic_lmk_bary_coords": torch.from_numpy(bary / bary.sum(-1, keepdims=True)).float()}


def deca_code() -> torch.Tensor:
    code = torch.zeros(sum(CODE.values()))
    cam = OFFSETS["cam"]
    centre = face_centre()
    code[cam:cam + 3] = torch.tensor([DECA_CAM_SCALE, -float(centre[0]), -float(centre[1])])
    light = OFFSETS["light"]
    code[light:light + 3] = 3.0  # DC band, white
    code[light + 6:light + 9] = 0.5  # some light from above (band y)
    code[OFFSETS["tex"]:OFFSETS["tex"] + CODE["tex"]] = torch.linspace(-1, 1, CODE["tex"])
    return code


def e_flame_state() -> dict[str, torch.Tensor]:
    """A freshly initialised E_flame whose output is deca_code() plus small noise (none on the camera)."""
    with torch.random.fork_rng(), torch.no_grad():  # the module's initialisation draws from the global generator
        torch.manual_seed(0)
        encoder = DecaFlameEncoder()
        weight = encoder.layers[2].weight
        weight.normal_(0, 1e-5)
        weight[OFFSETS["cam"]:OFFSETS["cam"] + 3] = 0.0
        encoder.layers[2].bias.copy_(deca_code())
    return encoder.state_dict()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Converted assets: `full` (FLAME, DECA, texture, landmarks) and `bare` (FLAME, DECA)."""
    work = tmp_path_factory.mktemp("flame_official")
    arrays = write_generic_model_pkl(work / "generic_model.pkl", work / "fake_site", mutate=face_model)
    write_deca_tar(work / "deca_model.tar", e_flame_state())
    flame_texture_npz(work / "FLAME_texture.npz")
    np.save(work / "landmark_embedding.npy", landmark_embedding(arrays["f"].astype(np.int64)), allow_pickle=True)
    full, bare = work / "full", work / "bare"
    converter.convert_flame(work / "generic_model.pkl", full)
    converter.convert_deca(work / "deca_model.tar", full)
    converter.convert_texture(work / "FLAME_texture.npz", full, 50)
    converter.convert_landmarks(work / "landmark_embedding.npy", full)
    (work / "deca_model.tar").unlink()
    bare.mkdir()
    for name in (FLAME_FILE, DECA_E_FLAME_FILE):
        os.link(full / name, bare / name)
    return {"work": work, "full": full, "bare": bare}


@pytest.fixture(scope="module")
def assets(folders):
    return load_flame_assets(folders["full"])


@pytest.fixture(scope="module")
def bare(folders, assets):
    """Without texture and landmarks; the model and encoder are shared with `assets` to save memory."""
    loaded = load_flame_assets(folders["bare"])
    assert loaded.texture is None and loaded.landmarks is None and loaded.mediapipe is None and loaded.uv is None
    return FlameAssets(assets.model, assets.encoder)


@pytest.fixture(scope="module")
def photo_crops():
    """A real photo and a faceless frame, cropped at 256 px (the second is a placeholder)."""
    image = photo("skimg_astronaut.png")
    images = torch.stack([image, torch.full_like(image, 0.5)])
    faces, reasons = find_faces(FaceDetector(find_mediapipe_models([])), images)
    return crop_faces(images, faces, CropSettings(size=256, on_no_face="passthrough"), reasons)


def flame_rig(n: int = 2, crop_size: int = 256, **changes) -> FaceRig:
    generator = torch.Generator().manual_seed(5)
    centre = face_centre()
    rig = FaceRig(
        geometry="flame", identity=0.5 * torch.randn(n, 100, generator=generator),
        expression=0.5 * torch.randn(n, 50, generator=generator), action_units=torch.zeros(n, N_AU),
        pose=0.1 * torch.randn(n, 3, generator=generator), jaw=torch.tensor([[0.1, 0.0, 0.0]]).repeat(n, 1),
        eyes=torch.zeros(n, 6), camera=torch.tensor([[8.0, -float(centre[0]), -float(centre[1])]]).repeat(n, 1),
        light=torch.zeros(n, 9, 3), albedo=torch.full((n, V, 3), 0.5), crop_size=crop_size)
    return rig.replace(**changes)


# ----------------------------------------------------------------------------------------------
# loading

def test_missing_files_name_the_folder_the_file_and_the_converter(folders, tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_flame_assets(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and FLAME_FILE in message
    assert "scripts/convert_flame_deca.py" in message and "generic_model.pkl" in message
    os.link(folders["full"] / FLAME_FILE, tmp_path / FLAME_FILE)
    with pytest.raises(FileNotFoundError, match=DECA_E_FLAME_FILE) as err:
        load_flame_assets(tmp_path)
    assert "deca_model.tar" in str(err.value) and str(tmp_path) in str(err.value)


def test_optional_files_are_loaded_when_present(assets):
    assert assets.texture is not None and assets.texture.n_components == 50
    assert assets.landmarks is not None and assets.mediapipe is None
    assert not assets.encoder.training


def test_texture_space_must_match_decas_texture_code(folders, tmp_path):
    for name in (FLAME_FILE, DECA_E_FLAME_FILE):
        os.link(folders["full"] / name, tmp_path / name)
    converter.convert_texture(folders["work"] / "FLAME_texture.npz", tmp_path, 40)
    with pytest.raises(ModelFileError, match="--n-tex 50") as err:
        load_flame_assets(tmp_path)
    assert TEXTURE_FILE in str(err.value)


def test_mediapipe_embedding_keys_are_checked_and_reported(folders, tmp_path):
    for name in (FLAME_FILE, DECA_E_FLAME_FILE):
        os.link(folders["full"] / name, tmp_path / name)
    np.savez(tmp_path / MEDIAPIPE_EMBEDDING_FILE, lmk_faces_idx=np.zeros(3), lmk_b_coords=np.zeros((3, 3)))
    with pytest.raises(ModelFileError) as err:
        load_flame_assets(tmp_path)
    message = str(err.value)
    assert "lmk_face_idx" in message and "landmark_indices" in message and "lmk_faces_idx" in message


# ----------------------------------------------------------------------------------------------
# DECA's crop and camera

def deca_index_affine(centre: np.ndarray, size: float) -> np.ndarray:
    """DECA TestData's similarity (pixel indices): three corners of the box onto [0, 223]."""
    src = np.array([[centre[0] - size / 2, centre[1] - size / 2], [centre[0] - size / 2, centre[1] + size / 2],
                    [centre[0] + size / 2, centre[1] - size / 2]])
    dst = np.array([[0, 0], [0, DECA_SIZE - 1], [DECA_SIZE - 1, 0]], dtype=np.float64)
    # similarity [a -b; b a] + t, solved exactly from the three pairs
    rows = [[x, -y, 1, 0] for x, y in src] + [[y, x, 0, 1] for x, y in src]
    a, b, tx, ty = np.linalg.lstsq(np.array(rows, dtype=np.float64), np.concatenate([dst[:, 0], dst[:, 1]]),
                                   rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])


def test_deca_crop_is_decas_box_in_continuous_pixels():
    rng = np.random.default_rng(0)
    points = rng.uniform(60, 200, (40, 2))  # continuous aligned-crop pixels
    index = points - 0.5  # DECA's landmarks are pixel indices
    lo, hi = index.min(0), index.max(0)
    size = (hi - lo).sum() / 2 * 1.1 * 1.25
    expected = deca_index_affine((lo + hi) / 2, size)
    got = deca_crop_affine(points)
    probe = rng.uniform(0, 256, (10, 2))
    via_indices = (probe - 0.5) @ expected[:, :2].T + expected[:, 2] + 0.5
    assert np.abs(probe @ got[:, :2].T + got[:, 2] - via_indices).max() < 1e-9


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-8), (torch.float32, 1e-3)])
def test_camera_conversion_lands_decas_projection_on_the_same_aligned_pixels(dtype, tolerance):
    rng = np.random.default_rng(1)
    crop_size = 512
    affines = np.stack([deca_crop_affine(rng.uniform(100, 400, (30, 2))) for _ in range(3)])
    cam = torch.tensor([[9.0, 0.01, -0.02], [7.5, -0.03, 0.05], [11.0, 0.0, 0.0]], dtype=torch.float64)
    world = torch.from_numpy(rng.normal(0, 0.08, (3, 50, 3)))
    # DECA: batch_orth_proj, y flipped for images, then kpt = (ndc + 1) * 224 / 2 in pixel indices
    ndc = cam[:, None, :1] * (world[..., :2] + cam[:, None, 1:])
    index = torch.stack([(ndc[..., 0] + 1) * DECA_SIZE / 2, (-ndc[..., 1] + 1) * DECA_SIZE / 2], -1)
    aligned = torch.stack([torch.from_numpy((index[b].numpy() + 0.5) @ invert_affine(affines[b])[:, :2].T
                                            + invert_affine(affines[b])[:, 2]) for b in range(3)])
    rig_camera = deca_camera_to_rig(cam.to(dtype), affines, crop_size)
    assert rig_camera.dtype == dtype
    screen = to_screen(world.to(dtype), rig_camera, crop_size)[..., :2]
    assert (screen.double() - aligned).abs().max() < tolerance


def test_box_covers_jawline_and_brows():
    mesh = load_mesh468()
    box = set(deca_box_indices())
    assert {152, 234, 454, 58, 288} <= box  # chin, jaw sides
    assert set(mesh.groups["left_eyebrow"]) | set(mesh.groups["right_eyebrow"]) <= box
    assert 10 not in box  # the forehead top is above FAN's box


# ----------------------------------------------------------------------------------------------
# fitting

def test_fit_flame_on_a_photo(photo_crops, assets):
    crops, info = photo_crops
    assert [item.valid for item in info.items] == [True, False]
    calls = []
    rig = fit_flame(crops, info, assets, check_interrupt=lambda: calls.append(1))
    assert len(calls) == 2 and rig.geometry == "flame" and rig.crops is info and rig.crop_size == 256
    shapes = {"identity": (2, 100), "expression": (2, 50), "pose": (2, 3), "jaw": (2, 3), "eyes": (2, 6),
              "camera": (2, 3), "light": (2, 9, 3), "albedo": (2, 50), "action_units": (2, N_AU)}
    for name, shape in shapes.items():
        value = getattr(rig, name)
        assert tuple(value.shape) == shape and value.dtype == torch.float32, name
        assert torch.isfinite(value).all(), name
    assert not rig.eyes.any() and not rig.action_units.any()
    code = deca_code()
    assert torch.allclose(rig.light[0], code[OFFSETS["light"]:].reshape(9, 3), atol=1e-2)  # DECA's light
    assert torch.allclose(rig.albedo[0], code[OFFSETS["tex"]:OFFSETS["tex"] + 50], atol=1e-2)  # DECA's tex code

    # The camera is DECA's, moved into the aligned crop: DECA's crop centre lands on the box centre.
    item = info.items[0]
    lm = np.asarray(item.detection.landmarks)[:, :2] @ item.affine[:, :2].T + item.affine[:, 2]
    affine = deca_crop_affine(lm[list(deca_box_indices())])
    expected = deca_camera_to_rig(code[OFFSETS["cam"]:OFFSETS["cam"] + 3][None].double(), affine[None], 256)
    assert torch.allclose(rig.camera[:1].double(), expected, rtol=1e-6)
    centre = face_centre()[None, None].float() * torch.tensor([1.0, 1.0, 0.0])
    box_centre = (invert_affine(affine)[:, :2] @ [112.5, 112.5] + invert_affine(affine)[:, 2])
    assert np.abs(to_screen(centre, rig.camera[:1], 256)[0, 0, :2].numpy() - box_centre).max() < 1e-3

    # The placeholder: FLAME's mean face, eyes framed like the embedded backend's placeholder.
    assert not rig.identity[1].any() and not rig.expression[1].any() and not rig.pose[1].any()
    _, joints = assets.model.posed(torch.zeros(1, 100), torch.zeros(1, 50), torch.zeros(1, 6))
    eyes_ndc = rig.camera[1, 0] * (joints[0, 3:5, :2].mean(0) + rig.camera[1, 1:])
    assert torch.allclose(eyes_ndc, torch.tensor([0.0, 0.12]), atol=1e-5)

    # The fitted mesh covers the face in the photo.
    mesh = rig_mesh(rig, flame=assets)
    face = to_screen(place(load_mesh468().canonical)[None].float(), rig.camera[:1], 256)[0, :, :2]
    assert torch.allclose(mesh.screen[0, :468, :2], face, atol=2.0)  # jaw pose and shape move it a little
    assert (lm[:, 0].min() - 40 < face[:, 0].min()) and (face[:, 0].max() < lm[:, 0].max() + 40)


def test_fit_flame_without_texture_samples_albedo_and_light_from_the_photo(photo_crops, bare):
    crops, info = photo_crops
    rig = fit_flame(crops, info, bare)
    assert rig.albedo.shape == (2, V, 3) and (rig.albedo >= 0).all() and (rig.albedo <= 1).all()
    code_light = deca_code()[OFFSETS["light"]:].reshape(9, 3)
    assert not torch.allclose(rig.light[0], code_light, atol=1e-2)  # fit_appearance's light, not DECA's
    mesh = rig_mesh(rig, flame=bare)
    buffers = render_buffers(mesh.screen, mesh.faces, mesh.normals, rig.light, 256, 256, albedo_vertex=rig.albedo)
    covered = buffers.mask[0] > 0
    assert 0.05 < covered.float().mean() < 0.7
    error = (buffers.rendered[0] - crops[0]).abs().mean(-1)[covered].mean()
    assert error < 0.12, f"re-render error {error:.3f}"  # per-vertex colours reproduce the photo


def test_fit_flame_empty_batch_and_crop_mismatch(assets):
    from models.faces.crops import FaceCrops
    rig = fit_flame(torch.zeros(0, 64, 64, 3), FaceCrops(()), assets)
    assert len(rig) == 0 and rig.identity.shape == (0, 100) and rig.albedo.shape == (0, 50)
    with pytest.raises(ValueError, match="crops but the FACE_CROP"):
        fit_flame(torch.zeros(1, 64, 64, 3), FaceCrops(()), assets)


class TemplateOnly:
    """flame_mirror reads only the template."""

    def __init__(self, template: torch.Tensor):
        self.v_template = template


def test_mirror_maps_a_symmetric_template_onto_itself():
    mesh = load_mesh468()
    mirror = flame_mirror(TemplateOnly(mesh.canonical))
    assert torch.equal(mirror, mesh.mirror)


# ----------------------------------------------------------------------------------------------
# geometry and action units

def test_rig_mesh_needs_the_assets_and_builds_flames_mesh(bare):
    rig = flame_rig()
    with pytest.raises(ValueError, match="FLAME assets"):
        rig_mesh(rig)
    mesh = rig_mesh(rig, flame=bare)
    direct = bare.model(rig.identity, rig.expression, torch.cat([rig.pose, rig.jaw], 1), eye_pose=rig.eyes)
    assert torch.equal(mesh.world, direct) and torch.equal(mesh.faces, bare.model.faces)
    assert torch.equal(mesh.screen, to_screen(direct, rig.camera, 256))
    assert mesh.normals.shape == (2, V, 3)


def test_zero_action_units_leave_the_vertices_bit_for_bit(assets, bare):
    rig = flame_rig()
    direct = bare.model(rig.identity, rig.expression, torch.cat([rig.pose, rig.jaw], 1), eye_pose=rig.eyes)
    assert torch.equal(flame_world_vertices(rig, bare), direct)  # no landmarks needed
    units = torch.zeros(2, N_AU)
    units[0, 5] = 0.7
    units[0, [u.key for u in ACTION_UNITS].index("au26_jaw_drop")] = 1.0
    edited = flame_world_vertices(rig.replace(action_units=units), assets)
    assert torch.equal(edited[1], direct[1]) and not torch.equal(edited[0], direct[0])
    assert not unit_expression_map(assets)[[u.key for u in ACTION_UNITS].index("au26_jaw_drop")].any()
    with pytest.raises(ValueError, match="landmark embedding"):
        flame_world_vertices(rig.replace(action_units=units), bare)


def test_correspondence_finds_the_placed_mesh(assets):
    corr = flame_correspondence(assets)
    assert corr.valid.all()
    assert torch.equal(corr.vertices[:, 0], torch.arange(468))
    assert abs(corr.scale - PLACE_SCALE) < 1e-6
    assert torch.allclose(corr.rotation, PLACE_ROTATION, atol=1e-6)
    assert torch.allclose(corr.translation, PLACE_SHIFT, atol=1e-6)


def test_action_units_move_flame_like_the_mesh(assets):
    rig = flame_rig(n=N_AU, pose=torch.zeros(N_AU, 3), jaw=torch.zeros(N_AU, 3))
    units = torch.eye(N_AU)
    moved = flame_world_vertices(rig.replace(action_units=units), assets).double()
    rest = flame_world_vertices(rig, assets).double()
    expected = place(action_unit_basis(load_mesh468())) - PLACE_SHIFT  # the fields in FLAME's frame
    jaw = [u.key for u in ACTION_UNITS].index("au26_jaw_drop")
    others = [k for k in range(N_AU) if k != jaw]
    error = (moved - rest)[others, :468] - expected[others]
    assert error.abs().max() < 2e-6, f"{error.abs().max():.2e} m"  # exact up to float32 skinning

    blink = [u.key for u in ACTION_UNITS].index("au45_blink")
    lid = action_unit_basis(load_mesh468())[blink, :, 1] < -1e-3  # upper-lid points close downward
    local = (moved - rest)[blink, :468] @ PLACE_ROTATION  # back to the face's own axes
    assert lid.sum() >= 8 and (local[lid, 1] < -1e-3).all()


def test_jaw_drop_unit_turns_flames_jaw(assets):
    rig = flame_rig(n=1)
    units = torch.zeros(1, N_AU)
    units[0, [u.key for u in ACTION_UNITS].index("au26_jaw_drop")] = 0.5
    edited = flame_world_vertices(rig.replace(action_units=units), assets)
    swing = axis_angle_to_matrix(torch.tensor([[math.radians(4.0), 0.0, 0.0]]))
    jaw = matrix_to_axis_angle(axis_angle_to_matrix(rig.jaw) @ swing)
    assert torch.allclose(edited, flame_world_vertices(rig.replace(jaw=jaw), assets), atol=1e-6)


def test_mediapipe_embedding_gives_exact_points(folders, assets, tmp_path):
    faces = assets.model.faces.numpy()
    indices = np.array([33, 133, 362, 263, 1, 2, 61, 291, 0, 17, 13, 14, 105, 334, 159, 386, 470])
    rows = [anchor_triangle(faces, int(i)) if i < 468 else (0, [1.0, 0.0, 0.0]) for i in indices]
    for name in (FLAME_FILE, DECA_E_FLAME_FILE):
        os.link(folders["full"] / name, tmp_path / name)
    np.savez(tmp_path / MEDIAPIPE_EMBEDDING_FILE, lmk_face_idx=np.array([r for r, _ in rows])[None],
             lmk_b_coords=np.array([b for _, b in rows])[None], landmark_indices=indices)
    loaded = load_flame_assets(tmp_path)
    assert loaded.mediapipe is not None and len(loaded.mediapipe.indices) == len(indices) - 1  # iris point dropped
    with_embedding = FlameAssets(assets.model, assets.encoder, mediapipe=loaded.mediapipe)
    corr = flame_correspondence(with_embedding)
    assert corr.valid.all() and abs(corr.scale - PLACE_SCALE) < 1e-6
    picked = (corr.vertices * (corr.weights > 0)).sum(1)
    assert torch.equal(picked, torch.arange(468))
    assert torch.allclose(unit_expression_map(with_embedding), unit_expression_map(assets), atol=1e-6)
