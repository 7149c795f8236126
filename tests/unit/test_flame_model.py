"""FLAME forward pass: exactness at rest, locality of joints, rigid rotation, agreement with textbook LBS."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.flame import FlameConfig, FlameLandmarks, FlameModel, axis_angle_to_matrix, barycentric_landmarks, yaw_bins
from models.flame.landmarks import LANDMARK_SHAPES
from models.flame.rotation import skew, yaw_degrees
from models.loading import StateDictMismatchError
from test_flame_synthetic import GROUPS, flame_tensors


@pytest.fixture(scope="module")
def tensors():
    return flame_tensors()


@pytest.fixture(scope="module")
def flame(tensors):
    return FlameModel(tensors)


def zeros(batch=2):
    return torch.zeros(batch, 100), torch.zeros(batch, 50), torch.zeros(batch, 6)


def group_mask(*names):
    mask = torch.zeros(5023, dtype=torch.bool)
    for name in names:
        rows = GROUPS[name][0]
        mask[rows.start:rows.stop] = True
    return mask


def test_zero_parameters_return_the_template_exactly(flame, tensors):
    vertices = flame(*zeros())
    assert vertices.shape == (2, 5023, 3)
    assert torch.equal(vertices[0], tensors["v_template"]) and torch.equal(vertices[1], tensors["v_template"])


def test_buffers_follow_deca_component_selection(flame, tensors):
    assert flame.shapedirs.shape == (5023, 3, 150)
    assert torch.equal(flame.shapedirs[..., :100], tensors["shapedirs"][..., :100])
    assert torch.equal(flame.shapedirs[..., 100:], tensors["exprdirs"][..., :50])
    assert flame.parents == (-1, 0, 1, 1, 1)
    assert FlameModel(tensors, FlameConfig(n_shape=300, n_exp=100)).shapedirs.shape == (5023, 3, 400)


def test_shape_and_expression_coefficients_add_their_blendshapes(flame, tensors):
    shape, expression, pose = zeros(1)
    shape[0, 7], expression[0, 3] = 2.0, -1.5
    offset = flame(shape, expression, pose)[0] - tensors["v_template"]
    expected = 2.0 * tensors["shapedirs"][..., 7] - 1.5 * tensors["exprdirs"][..., 3]
    torch.testing.assert_close(offset, expected, atol=1e-6, rtol=0)


def test_jaw_rotation_moves_only_jaw_weighted_vertices(flame, tensors):
    shape, expression, pose = zeros(1)
    shape[0, :5] = torch.tensor([1.0, -0.5, 0.3, 0.2, 0.1])
    rest = flame(shape, expression, pose)[0]
    pose[0, 3] = 0.3  # open the jaw: rotation about x
    opened = flame(shape, expression, pose)[0]
    jaw = group_mask("jaw")
    assert torch.equal(opened[~jaw], rest[~jaw])
    assert (opened[jaw] - rest[jaw]).norm(dim=1).min() > 0


def test_eye_rotation_moves_only_that_eyeball(flame):
    shape, expression, pose = zeros(1)
    eye_pose = torch.zeros(1, 6)
    eye_pose[0, 1] = 0.4
    rest = flame(shape, expression, pose)[0]
    moved = flame(shape, expression, pose, eye_pose=eye_pose)[0]
    eye = group_mask("eye0")
    assert torch.equal(moved[~eye], rest[~eye])
    assert (moved[eye] - rest[eye]).norm(dim=1).min() > 0


def test_global_rotation_rotates_the_whole_mesh_about_the_root_joint(flame, tensors):
    shape, expression, pose = zeros(1)
    pose[0, 1] = math.pi / 2  # 90 degrees about y
    vertices = flame(shape, expression, pose)[0]
    template = tensors["v_template"]
    root = tensors["J_regressor"][0] @ template
    rotation = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    torch.testing.assert_close(vertices, (template - root) @ rotation.T + root, atol=1e-6, rtol=0)


def textbook_lbs(tensors, coefficients, full_pose):
    """SMPL's skinning with 4x4 homogeneous transforms, composed along the chain (float64)."""
    t = {k: v.double() for k, v in tensors.items() if v.is_floating_point()}
    dirs = torch.cat([t["shapedirs"][..., :100], t["exprdirs"][..., :50]], -1)
    shaped = t["v_template"] + torch.einsum("vck,k->vc", dirs, coefficients)
    joints = t["J_regressor"] @ shaped
    rotations = [axis_angle_to_matrix(full_pose[3 * i:3 * i + 3]) for i in range(5)]
    features = torch.cat([(r - torch.eye(3, dtype=torch.float64)).reshape(-1) for r in rotations[1:]])
    posed = shaped + torch.einsum("vck,k->vc", t["posedirs"], features)
    parents = tensors["parents"].tolist()
    world = []
    for i, rotation in enumerate(rotations):
        local = torch.eye(4, dtype=torch.float64)
        local[:3, :3] = rotation
        local[:3, 3] = joints[i] - (joints[parents[i]] if i else 0)
        world.append(local if i == 0 else world[parents[i]] @ local)
    skinning = []
    for i, transform in enumerate(world):
        rest = torch.eye(4, dtype=torch.float64)
        rest[:3, 3] = -joints[i]
        skinning.append(transform @ rest)
    blended = torch.einsum("vj,jab->vab", t["lbs_weights"], torch.stack(skinning))
    homogeneous = torch.cat([posed, torch.ones(len(posed), 1, dtype=torch.float64)], 1)
    return (blended @ homogeneous.unsqueeze(-1))[:, :3, 0]


def test_matches_textbook_homogeneous_lbs_for_random_parameters(tensors):
    flame = FlameModel(tensors).double()
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        shape = torch.randn(1, 100, generator=generator, dtype=torch.float64)
        expression = torch.randn(1, 50, generator=generator, dtype=torch.float64)
        pose = 0.5 * torch.randn(1, 6, generator=generator, dtype=torch.float64)
        neck = 0.3 * torch.randn(1, 3, generator=generator, dtype=torch.float64)
        eyes = 0.3 * torch.randn(1, 6, generator=generator, dtype=torch.float64)
        ours = flame(shape, expression, pose, neck, eyes)[0]
        full = flame.full_pose(pose, neck, eyes)[0]
        reference = textbook_lbs(tensors, torch.cat([shape, expression], 1)[0], full)
        torch.testing.assert_close(ours, reference, atol=1e-10, rtol=0)


def test_full_pose_layout_matches_deca(flame):
    pose = torch.arange(6.0).reshape(1, 6)
    neck = torch.tensor([[10.0, 11, 12]])
    full = flame.full_pose(pose, neck)
    assert full.tolist() == [[0, 1, 2, 10, 11, 12, 3, 4, 5, 0, 0, 0, 0, 0, 0]]


def test_inputs_and_files_with_wrong_shapes_are_rejected(flame, tensors):
    with pytest.raises(ValueError, match=r"shape must have shape \(1, 100\)"):
        flame(torch.zeros(1, 99), torch.zeros(1, 50), torch.zeros(1, 6))
    with pytest.raises(ValueError, match="pose"):
        flame(torch.zeros(2, 100), torch.zeros(2, 50), torch.zeros(2, 3))
    broken = dict(tensors, posedirs=tensors["posedirs"][..., :27])
    with pytest.raises(StateDictMismatchError, match=r"posedirs: expected \(5023, 3, 36\), found \(5023, 3, 27\)"):
        FlameModel(broken, source="flame2020_generic.safetensors")


def test_gradients_flow_through_zero_pose(flame):
    shape, expression, pose = zeros(1)
    pose.requires_grad_(True)
    flame(shape, expression, pose).square().sum().backward()
    assert torch.isfinite(pose.grad).all() and pose.grad.abs().sum() > 0


# ----------------------------------------------------------------------------------------------
# rotations

def test_rodrigues_matches_the_matrix_exponential():
    vectors = torch.cat([torch.randn(64, 3, dtype=torch.float64), 1e-7 * torch.randn(8, 3, dtype=torch.float64),
                         torch.tensor([[math.pi, 0, 0], [0, 0, 0]], dtype=torch.float64)])
    torch.testing.assert_close(axis_angle_to_matrix(vectors), torch.linalg.matrix_exp(skew(vectors)),
                               atol=1e-12, rtol=0)
    assert torch.equal(axis_angle_to_matrix(torch.zeros(3)), torch.eye(3))


def test_yaw_degrees_and_bins_follow_deca():
    for degrees in (-60.0, -20.0, 0.0, 35.0, 80.0):
        rotation = axis_angle_to_matrix(torch.tensor([0.0, math.radians(degrees), 0.0], dtype=torch.float64))
        assert yaw_degrees(rotation).item() == pytest.approx(degrees, abs=1e-9)
    yaw = torch.tensor([0.0, -0.4, 0.6, 20.2, 39.4, 45.0, -1.0, -20.0, -39.0, -39.6, -80.0])
    assert yaw_bins(yaw).tolist() == [0, 0, 1, 20, 39, 39, 40, 59, 78, 78, 78]


# ----------------------------------------------------------------------------------------------
# landmarks

def landmark_tensors(seed=0):
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in LANDMARK_SHAPES.items():
        if key.endswith("faces_idx"):
            out[key] = torch.randint(0, 9976, shape, generator=generator)
        else:
            bary = torch.rand(shape, generator=generator)
            out[key] = bary / bary.sum(-1, keepdim=True)
    return out


def test_barycentric_landmarks_interpolate_triangle_corners(flame):
    vertices = torch.randn(2, 5023, 3)
    faces_idx = torch.tensor([0, 17, 9975])
    bary = torch.tensor([[1.0, 0, 0], [0.2, 0.3, 0.5], [0, 0, 1]])
    points = flame.landmarks(vertices, faces_idx, bary)
    corners = vertices[:, flame.faces[faces_idx]]  # (B, L, 3 corners, 3)
    torch.testing.assert_close(points, (bary[None, :, :, None] * corners).sum(2))
    torch.testing.assert_close(points[:, 0], vertices[:, flame.faces[0, 0]])


def test_deca68_uses_the_contour_bin_of_the_head_yaw(flame):
    embedding = landmark_tensors()
    landmarks = FlameLandmarks(embedding)
    vertices = torch.randn(2, 5023, 3)
    pose = torch.zeros(2, 6)
    pose[0, 1], pose[1, 1] = math.radians(20), math.radians(-20)
    points = landmarks.deca68(vertices, flame.faces, pose)
    assert points.shape == (2, 68, 3)
    assert landmarks.contour_bins(pose).tolist() == [20, 59]
    expected = barycentric_landmarks(vertices[:1], flame.faces, embedding["dynamic_lmk_faces_idx"][20],
                                     embedding["dynamic_lmk_bary_coords"][20])
    torch.testing.assert_close(points[:1, :17], expected)
    torch.testing.assert_close(points[:, 17:], landmarks.static(vertices, flame.faces))
    # the neck turns the head too: global 10 degrees after neck 15 degrees gives bin 25
    neck = torch.zeros(2, 3)
    neck[:, 1] = math.radians(15)
    pose[:, 1] = math.radians(10)
    assert landmarks.contour_bins(pose, neck).tolist() == [25, 25]
    assert landmarks.full68(vertices, flame.faces).shape == (2, 68, 3)


def test_landmark_embedding_without_full_points_is_accepted_but_full68_says_so(flame):
    embedding = {k: v for k, v in landmark_tensors().items() if not k.startswith("full")}
    landmarks = FlameLandmarks(embedding)
    with pytest.raises(ValueError, match="full_lmk"):
        landmarks.full68(torch.zeros(1, 5023, 3), flame.faces)
    with pytest.raises(StateDictMismatchError, match="static_lmk_bary_coords"):
        FlameLandmarks({k: v for k, v in embedding.items() if k != "static_lmk_bary_coords"})


def test_texture_model_is_mean_plus_components():
    from models.flame import FlameTexture
    mean, basis = torch.rand(3, 8, 8), torch.randn(5, 3, 8, 8)
    texture = FlameTexture({"mean": mean, "basis": basis})
    code = torch.randn(2, 5)
    albedo = texture.albedo_uv(code)
    torch.testing.assert_close(albedo, mean + torch.einsum("bk,kchw->bchw", code, basis))
    assert texture.albedo_uv(code, size=4).shape == (2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"\(B, 5\)"):
        texture.albedo_uv(torch.zeros(2, 50))
    np.testing.assert_array_equal(texture(code).numpy(), albedo.numpy())
