"""Rig edits and interpolation: exact no-ops, no mutation, reversibility, conventions, transfer rules."""
import copy
import math

import numpy as np
import pytest
import torch

from models.faces.crops import FaceCropInfo, FaceCrops
from models.flame.rotation import axis_angle_to_matrix, yaw_degrees
from models.render.sh import sh_from_direction, sh_shading
from models.rig.action_units import ACTION_UNITS
from models.rig.animate import axis_angle_to_quaternion, interpolate_rigs, quaternion_to_axis_angle
from models.rig.edit import (edit_action_units, edit_eyes, edit_jaw, edit_lighting, edit_pose, light_levels,
                             rig_yaw_pitch_roll, transfer)
from models.rig.rig import TENSOR_FIELDS, FaceRig
from models.rig.rotation import matrix_to_axis_angle
from models.rig.topology import load_mesh468

N_AU = len(ACTION_UNITS)
NOSE = torch.tensor([0.0, 0.0, 1.0])


def crops(n, source=0):
    return FaceCrops(tuple(FaceCropInfo(source + i, (480, 640), 256, np.eye(2, 3), None) for i in range(n)))


def make_rig(b=2, geometry="mesh468", seed=None, with_crops=False):
    """The plain test rig: canonical identity, zeros elsewhere, a directional light, grey albedo."""
    light = sh_from_direction(torch.tensor([0.3, 0.5, 1.0]), 0.8, ambient=0.4).expand(b, 9, 3).clone()
    if geometry == "mesh468":
        identity = load_mesh468().canonical.expand(b, -1, -1).clone()
        expression, albedo = torch.zeros(b, N_AU), torch.full((b, 468, 3), 0.5)
    else:
        identity, expression, albedo = torch.zeros(b, 100), torch.zeros(b, 50), torch.full((b, 50), 0.5)
    rig = FaceRig(geometry, identity, expression, torch.zeros(b, N_AU), torch.zeros(b, 3), torch.zeros(b, 3),
                  torch.zeros(b, 6), torch.zeros(b, 3), light, albedo, 256, crops(b) if with_crops else None)
    if seed is None:
        return rig
    g = torch.Generator().manual_seed(seed)
    return rig.replace(**{k: v + 0.3 * torch.randn(v.shape, generator=g) for k, v in rig.tensors().items()})


def assert_same(a, b, fields=TENSOR_FIELDS):
    for name in fields:
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def rotation(rig):
    return axis_angle_to_matrix(rig.pose.double())


def test_default_and_zero_edits_are_exact_no_ops():
    rig = make_rig(3, seed=1)
    for edited in (
        edit_pose(rig), edit_pose(rig, 0.0, 0.0, 0.0), edit_pose(rig, torch.zeros(3)),
        edit_jaw(rig), edit_jaw(rig, 0.0, 0.0), edit_eyes(rig), edit_eyes(rig, 5.0, 5.0),  # mesh468: no eyes
        edit_action_units(rig, {}), edit_action_units(rig, {"au12_lip_corner_puller": 0.0}),
        edit_lighting(rig), edit_lighting(rig, intensity=1.0, ambient=1.0, rotate_yaw=0.0, scale=1.0),
    ):
        assert edited is not rig
        assert_same(edited, rig)
        assert (edited.crop_size, edited.crops, edited.face_index) == (rig.crop_size, rig.crops, rig.face_index)
    flame = make_rig(2, "flame", seed=2)
    assert_same(edit_eyes(flame), flame)


def test_faces_with_a_zero_edit_keep_their_pose_bit_for_bit():
    rig = make_rig(2, seed=3)
    edited = edit_pose(rig, yaw=torch.tensor([0.0, 15.0]))
    assert torch.equal(edited.pose[0], rig.pose[0]) and not torch.equal(edited.pose[1], rig.pose[1])


def test_edits_never_modify_the_input():
    rig, flame = make_rig(2, seed=4), make_rig(2, "flame", seed=5)
    before, before_flame = copy.deepcopy(rig.tensors()), copy.deepcopy(flame.tensors())
    edit_pose(rig, 20, 10, 5)
    edit_pose(rig, 20, 10, 5, mode="set")
    edit_jaw(rig, 10, 3)
    edit_jaw(rig, 10, 3, mode="set")
    edit_eyes(flame, 10, 5)
    edit_action_units(rig, {"au45_blink": 1.0, "au26_jaw_drop": torch.tensor([0.2, 0.4])})
    edit_action_units(rig, {"au45_blink": 1.0}, mode="set")
    edit_lighting(rig, direction=(1, 0, 0.5), intensity=0.5, colour=(1, 0.8, 0.6), ambient=2, rotate_yaw=30,
                  rotate_pitch=10, scale=1.5)
    edit_lighting(rig, intensity=2.0, ambient=0.5)
    transfer(rig, make_rig(1, seed=6), "all")
    interpolate_rigs(rig, make_rig(2, seed=7), 4)
    for name in TENSOR_FIELDS:
        assert torch.equal(getattr(rig, name), before[name]), name
        assert torch.equal(getattr(flame, name), before_flame[name]), name


def test_pose_add_then_subtract_returns_the_original():
    rig = make_rig(2, seed=8)
    for axis in ("yaw", "pitch", "roll"):
        back = edit_pose(edit_pose(rig, **{axis: 25.0}), **{axis: -25.0})
        assert torch.allclose(rotation(back), rotation(rig), atol=1e-6), axis
    # R = Rz Ry Rx: undone by the negated angles one at a time, roll first
    turned = edit_pose(rig, yaw=20, pitch=-10, roll=5)
    back = edit_pose(edit_pose(edit_pose(turned, roll=-5), yaw=-20), pitch=10)
    assert torch.allclose(rotation(back), rotation(rig), atol=1e-6)
    assert not torch.allclose(rotation(turned), rotation(rig), atol=1e-2)
    radians = edit_pose(rig, yaw=math.radians(25), degrees=False)
    assert torch.allclose(rotation(radians), rotation(edit_pose(rig, yaw=25)), atol=1e-6)


def test_yaw_readout_matches_set_and_the_documented_signs():
    rig = make_rig(2, seed=9)
    for angles in ((25.0, -10.0, 7.0), (-60.0, 30.0, -20.0), (0.0, 0.0, 0.0)):
        readout = rig_yaw_pitch_roll(edit_pose(rig, *angles, mode="set"))
        assert torch.allclose(readout, torch.tensor(angles).expand(2, 3), atol=1e-4)
    front = make_rig(1)
    assert torch.equal(edit_pose(rig, 0, 0, 0, mode="set").pose, torch.zeros(2, 3))
    assert (rotation(edit_pose(front, yaw=30))[0] @ NOSE.double())[0] > 0.4  # toward the image's right
    assert (rotation(edit_pose(front, pitch=30))[0] @ NOSE.double())[1] < -0.4  # nose down
    rolled = rotation(edit_pose(front, roll=30))[0] @ torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    assert rolled[1] > 0.4  # counter-clockwise in the image
    # adding yaw to a roll-free pose adds to the readout; the readout agrees with DECA's yaw
    posed = edit_pose(front, yaw=10, pitch=20, mode="set")
    assert torch.allclose(rig_yaw_pitch_roll(edit_pose(posed, yaw=15)), torch.tensor([[25.0, 20.0, 0.0]]), atol=1e-4)
    assert torch.allclose(yaw_degrees(rotation(posed)).float(), torch.tensor([10.0]), atol=1e-4)


def test_quaternion_round_trip():
    vectors = torch.tensor([[0.0, 0.0, 0.0], [1e-7, 0.0, 0.0], [0.3, -0.2, 0.1], [0.0, math.pi - 1e-3, 0.0],
                            [2.0, 1.0, -1.5]], dtype=torch.float64)
    q = axis_angle_to_quaternion(vectors)
    assert torch.allclose(q.norm(dim=-1), torch.ones(5, dtype=torch.float64))
    assert torch.allclose(quaternion_to_axis_angle(q), vectors, atol=1e-9)
    assert torch.allclose(quaternion_to_axis_angle(-q), vectors, atol=1e-9)  # q and -q: the same rotation
    assert torch.equal(quaternion_to_axis_angle(q[:1]), torch.zeros(1, 3, dtype=torch.float64))


def test_jaw_and_eyes():
    rig = make_rig(2, seed=10)
    opened = edit_jaw(rig, open=10, sideways=-4)
    assert torch.allclose(opened.jaw - rig.jaw, torch.tensor([math.radians(10), math.radians(-4), 0.0]).expand(2, 3))
    assert torch.allclose(edit_jaw(opened, open=-10, sideways=4).jaw, rig.jaw, atol=1e-7)
    closed = edit_jaw(rig, open=0, sideways=0, mode="set")
    assert torch.equal(closed.jaw[:, :2], torch.zeros(2, 2)) and torch.equal(closed.jaw[:, 2], rig.jaw[:, 2])
    flame = make_rig(2, "flame", seed=11)
    looked = edit_eyes(flame, yaw=12, pitch=-6)
    expected = torch.tensor([math.radians(-6), math.radians(12), 0.0] * 2)
    assert torch.allclose(looked.eyes - flame.eyes, expected.expand(2, 6))
    assert torch.allclose(edit_eyes(flame, 12, -6, mode="set").eyes[:, [0, 1, 3, 4]],
                          expected[[0, 1, 3, 4]].expand(2, 4))
    with pytest.raises(ValueError, match="mode"):
        edit_jaw(rig, 5, mode="replace")


def test_action_units():
    rig = make_rig(2, seed=12)
    keys = [u.key for u in ACTION_UNITS]
    i, j = keys.index("au12_lip_corner_puller"), keys.index("au45_blink_left")
    added = edit_action_units(rig, {"au12_lip_corner_puller": 0.5, "au45_blink_left": torch.tensor([1.0, 0.0])})
    delta = added.action_units - rig.action_units
    assert torch.allclose(delta[:, i], torch.tensor([0.5, 0.5]))
    assert torch.allclose(delta[:, j], torch.tensor([1.0, 0.0]))
    assert torch.count_nonzero(delta) == 3
    assert torch.equal(added.expression, rig.expression)
    set_ = edit_action_units(rig, {"au12_lip_corner_puller": 0.25}, mode="set")
    assert torch.equal(set_.action_units[:, i], torch.tensor([0.25, 0.25]))
    assert torch.equal(torch.cat([set_.action_units[:, :i], set_.action_units[:, i + 1:]], 1),
                       torch.cat([rig.action_units[:, :i], rig.action_units[:, i + 1:]], 1))
    with pytest.raises(ValueError, match="valid keys: au1_inner_brow_raiser"):
        edit_action_units(rig, {"smile": 1.0})


@pytest.mark.parametrize("what, copied", [
    ("pose", {"pose"}),
    ("expression", {"expression", "action_units", "jaw"}),
    ("lighting", {"light"}),
    ("all", {"pose", "expression", "action_units", "jaw", "light"}),
])
def test_transfer_copies_exactly_the_documented_fields(what, copied):
    rig, other = make_rig(3, seed=13, with_crops=True), make_rig(3, seed=14)
    out = transfer(rig, other, what)
    assert_same(out, other, copied)  # mesh468 eyes are not copied (the mesh has none)
    assert_same(out, rig, [f for f in TENSOR_FIELDS if f not in copied])
    assert (out.crops, out.face_index, out.crop_size) == (rig.crops, rig.face_index, rig.crop_size)
    single = transfer(rig, other.select(1), what)  # one source face for every face
    for name in copied:
        assert torch.equal(getattr(single, name), getattr(other, name)[1:2].expand_as(getattr(rig, name))), name


def test_transfer_flame_copies_the_eyes_and_checks_its_inputs():
    rig, other = make_rig(2, "flame", seed=15), make_rig(2, "flame", seed=16)
    out = transfer(rig, other, "expression")
    assert_same(out, other, ("expression", "action_units", "jaw", "eyes"))
    assert_same(out, rig, ("identity", "pose", "camera", "light", "albedo"))
    with pytest.raises(ValueError, match="flame"):
        transfer(make_rig(2), other, "pose")
    with pytest.raises(ValueError, match="1 or 2"):
        transfer(rig, make_rig(3, "flame"), "pose")
    with pytest.raises(ValueError, match="what"):
        transfer(rig, other, "identity")


def shade(rig, normals):
    return sh_shading(normals.expand(len(rig), -1, -1), rig.light)


def test_lighting_rotation():
    rig = make_rig(2, seed=17)
    assert torch.allclose(edit_lighting(rig, rotate_yaw=360).light, rig.light, atol=1e-5)
    assert torch.allclose(edit_lighting(rig, rotate_pitch=-360).light, rig.light, atol=1e-5)
    front = make_rig(1).replace(light=sh_from_direction(NOSE, 1.0))
    turned = edit_lighting(front, rotate_yaw=90)
    right, left = torch.tensor([[[1.0, 0, 0]]]), torch.tensor([[[-1.0, 0, 0]]])
    assert shade(turned, right).mean() > shade(turned, left).mean() + 0.5  # moved toward the image's right
    assert shade(edit_lighting(front, rotate_pitch=90), torch.tensor([[[0, -1.0, 0]]])).mean() > 0.9  # down


def test_light_follows_the_head_when_both_turn_alike():
    rig = make_rig(1, seed=18)
    turned = edit_lighting(edit_pose(rig, yaw=35, pitch=-15), rotate_yaw=35, rotate_pitch=-15)
    normals = torch.nn.functional.normalize(torch.randn(1, 50, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    before = sh_shading(normals @ rotation(rig).float().transpose(1, 2), rig.light)
    after = sh_shading(normals @ rotation(turned).float().transpose(1, 2), turned.light)
    assert torch.allclose(before, after, atol=1e-4)


def test_lighting_direction_intensity_colour_scale():
    rig = make_rig(2, seed=19)
    amb, strength = light_levels(rig.light)
    side = edit_lighting(rig, direction=(-1.0, 0.0, 0.2))
    new_amb, new_strength = light_levels(side.light)
    assert torch.allclose(new_amb, amb, atol=1e-5) and torch.allclose(new_strength, strength, atol=1e-5)
    assert (shade(side, torch.tensor([[[-1.0, 0, 0]]])) > shade(side, torch.tensor([[[1.0, 0, 0]]]))).all()
    flat = edit_lighting(rig, intensity=0.0)
    assert torch.equal(flat.light[:, 1:], torch.zeros(2, 8, 3))
    assert torch.allclose(shade(flat, torch.tensor([[[0.0, 0, 1]]]))[:, 0], amb, atol=1e-5)
    brighter = edit_lighting(rig, ambient=2.0)
    assert torch.allclose(light_levels(brighter.light)[0], 2 * amb, atol=1e-5)
    assert torch.equal(brighter.light[:, 1:], rig.light[:, 1:])
    tinted = edit_lighting(rig, colour=(1.0, 0.5, 0.0), scale=2.0)
    assert torch.allclose(tinted.light, rig.light * torch.tensor([2.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="non-zero"):
        edit_lighting(rig, direction=(0, 0, 0))


def test_interpolation_endpoints_order_and_slerp():
    a = make_rig(2, seed=20, with_crops=True)
    b = edit_pose(make_rig(2, seed=21).replace(pose=torch.zeros(2, 3)), yaw=torch.tensor([40.0, -80.0]), mode="set")
    frames = interpolate_rigs(a, b, 5)
    assert len(frames) == 10
    assert_same(frames.select(slice(0, 2)), a)
    assert_same(frames.select(slice(8, 10)), b)
    assert frames.crops.items == a.crops.items * 5 and frames.face_index == a.face_index * 5
    middle = frames.select(slice(4, 6))  # frame 2 of 0..4, frame-major
    assert torch.allclose(middle.camera, 0.5 * (a.camera + b.camera), atol=1e-6)
    assert torch.allclose(middle.light, 0.5 * (a.light + b.light), atol=1e-6)
    half = rotation(middle) @ rotation(a).transpose(1, 2)  # slerp: equal angles from a and to b
    rest = rotation(b) @ rotation(middle).transpose(1, 2)
    assert torch.allclose(matrix_to_axis_angle(half).norm(dim=-1), matrix_to_axis_angle(rest).norm(dim=-1), atol=1e-5)


def test_interpolation_midpoint_angle_easing_and_broadcast():
    a = make_rig(1)
    b = edit_pose(a, yaw=60)
    linear = interpolate_rigs(a, b, 5)
    eased = interpolate_rigs(a, b, 5, easing="ease_in_out")
    yaws = rig_yaw_pitch_roll(linear)[:, 0]
    assert torch.allclose(yaws, torch.tensor([0.0, 15.0, 30.0, 45.0, 60.0]), atol=1e-4)
    assert torch.allclose(rig_yaw_pitch_roll(eased)[2, 0], torch.tensor(30.0), atol=1e-4)
    assert rig_yaw_pitch_roll(eased)[1, 0] < 15.0 - 1.0  # starts slowly
    assert interpolate_rigs(a, b, 1) is a
    many = interpolate_rigs(a, make_rig(3, seed=22), 2)
    assert len(many) == 6 and torch.equal(many.identity[:3], a.identity.expand(3, -1, -1))
    with pytest.raises(ValueError):
        interpolate_rigs(make_rig(2), make_rig(3), 3)
    with pytest.raises(ValueError, match="easing"):
        interpolate_rigs(a, b, 3, easing="bounce")
