"""The rig's core maths: rotations, the similarity fit, the camera, and the FaceRig value."""
import math

import pytest
import torch

from models.rig.geometry import from_screen_xy, to_screen
from models.rig.procrustes import similarity_fit
from models.rig.rig import FaceRig, concat_rigs
from models.rig.rotation import axis_angle_to_matrix, matrix_to_axis_angle
from models.rig.topology import load_mesh468


def test_axis_angle_round_trip_including_near_pi():
    torch.manual_seed(0)
    axes = torch.nn.functional.normalize(torch.randn(64, 3, dtype=torch.float64), dim=-1)
    angles = torch.cat([torch.rand(60, dtype=torch.float64) * 3.0,
                        torch.tensor([0.0, 1e-9, math.pi - 1e-7, math.pi], dtype=torch.float64)])
    vec = axes * angles[:, None]
    back = matrix_to_axis_angle(axis_angle_to_matrix(vec))
    assert torch.allclose(axis_angle_to_matrix(back), axis_angle_to_matrix(vec), atol=1e-9)
    small = angles < 3.0
    assert torch.allclose(back[small], vec[small], atol=1e-7)


def test_similarity_fit_recovers_a_known_transform_and_ignores_downweighted_points():
    torch.manual_seed(1)
    src = torch.randn(100, 3, dtype=torch.float64)
    r = axis_angle_to_matrix(torch.tensor([0.3, -0.5, 0.2], dtype=torch.float64))
    dst = 2.5 * src @ r.T + torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    dst_moved = dst.clone()
    dst_moved[:10] += 5.0  # an "expression" on 10 points
    w = torch.ones(100, dtype=torch.float64)
    w[:10] = 1e-9
    s, rot, t = similarity_fit(src, dst_moved[None], w)
    assert abs(s.item() - 2.5) < 1e-6 and torch.allclose(rot[0], r, atol=1e-6)
    assert torch.allclose(t[0], torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64), atol=1e-6)
    assert torch.linalg.det(rot[0]) > 0


def test_camera_maps_world_to_crop_pixels_and_back():
    camera = torch.tensor([[4.0, 0.01, -0.02]])
    world = torch.tensor([[[0.0, 0.0, 0.1], [0.05, 0.1, 0.0]]])
    screen = to_screen(world, camera, 256)
    # x_ndc = 4 * (0 + 0.01) = 0.04 -> (1.04) * 128; y up in world is up in the image (smaller y)
    assert torch.allclose(screen[0, 0, :2], torch.tensor([1.04 * 128, (1 + 0.08) * 128]))
    assert screen[0, 0, 2] < screen[0, 1, 2]  # z toward the camera = nearer = smaller depth
    assert torch.allclose(from_screen_xy(screen[..., :2], camera, 256), world[..., :2], atol=1e-6)


def small_rig(n=2, **over):
    mesh = load_mesh468()
    fields = dict(geometry="mesh468", identity=mesh.canonical.expand(n, -1, -1).clone(),
                  expression=torch.zeros(n, 4), action_units=torch.zeros(n, 4), pose=torch.zeros(n, 3),
                  jaw=torch.zeros(n, 3), eyes=torch.zeros(n, 6), camera=torch.tensor([[6.0, 0.0, 0.0]]).repeat(n, 1),
                  light=torch.zeros(n, 9, 3), albedo=torch.full((n, 468, 3), 0.5), crop_size=256)
    fields.update(over)
    return FaceRig(**fields)


def test_face_rig_validates_shapes_and_selects():
    rig = small_rig(3, pose=torch.arange(9.0).reshape(3, 3))
    assert len(rig) == 3 and rig.face_index == (-1, -1, -1)
    assert torch.equal(rig.select(1).pose, rig.pose[1:2]) and len(rig.select(slice(0, 2))) == 2
    assert torch.equal(concat_rigs([rig.select(2), rig.select(0)]).pose, rig.pose[[2, 0]])
    assert len(rig.select(0).expand_to(4)) == 4
    with pytest.raises(ValueError, match="light must be"):
        small_rig(2, light=torch.zeros(2, 9))
    with pytest.raises(ValueError, match="geometry"):
        small_rig(1, geometry="bfm")
    with pytest.raises(ValueError, match="cannot pair"):
        rig.expand_to(5)


def test_mesh468_assets_are_consistent():
    mesh = load_mesh468()
    assert mesh.canonical.shape == (468, 3) and mesh.triangles.max() < 468
    assert torch.equal(mesh.mirror[mesh.mirror], torch.arange(468))
    mirrored = mesh.canonical[mesh.mirror] * torch.tensor([-1.0, 1.0, 1.0])
    assert (mirrored - mesh.canonical).abs().max() < 1e-5  # the canonical face is exactly symmetric
    # every triangle faces the camera in the canonical (frontal) pose: counter-clockwise with y up
    p = mesh.canonical[mesh.triangles][..., :2]
    cross = (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 1, 1] - p[:, 0, 1]) * (p[:, 2, 0] - p[:, 0, 0])
    assert (cross > 0).all()
    eyes = mesh.canonical[list(mesh.groups["left_eye"])].mean(0) - mesh.canonical[list(mesh.groups["right_eye"])].mean(0)
    assert abs(eyes.norm().item() - 0.063) < 1e-3 and eyes[0] > 0  # the subject's left eye is at +x
