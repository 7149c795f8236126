"""Action-unit basis and jaw rig of the 468-point mesh: shape, symmetry, locality and the motions they promise."""
import numpy as np
import pytest
import torch

from models.rig.action_units import ACTION_UNITS, LOWER_LIP, UPPER_LIP, action_unit_basis
from models.rig.jaw import (JAW_PIVOT, LIPS_LOWER_INNER, LIPS_LOWER_OUTER, LIPS_UPPER_INNER, LIPS_UPPER_OUTER,
                            apply_jaw, jaw_weights)
from models.rig.topology import load_mesh468

MESH = load_mesh468()
BASIS = action_unit_basis(MESH)
KEYS = [u.key for u in ACTION_UNITS]
MM = 1e-3
EDGES = {frozenset(e) for t in MESH.triangles.tolist() for e in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0]))}

# Landmarks restated from mediapipe's face mesh, independently of the implementation.
RIGHT_UPPER_LID = (246, 161, 160, 159, 158, 157, 173)
RIGHT_LOWER_LID = (33, 7, 163, 144, 145, 153, 154, 155, 133)  # with the corners
UPPER_INNER_LIP = (191, 80, 81, 82, 13, 312, 311, 310, 415)
LOWER_INNER_LIP = (95, 88, 178, 87, 14, 317, 402, 318, 324)
CHIN = (152, 175, 199)
FOREHEAD = (10, 151, 9, 108, 337, 69, 299)


def unit(key):
    return BASIS[KEYS.index(key)]


def mirrored(d):
    return d[MESH.mirror] * torch.tensor([-1.0, 1.0, 1.0])


def left_side(indices):
    return [int(MESH.mirror[i]) for i in indices]


def lid_gap(verts, upper, lower):
    """For each upper-lid vertex, its height above the lower-lid polyline at its own x (metres)."""
    low = sorted(lower, key=lambda i: float(verts[i, 0]))
    xs, ys = verts[low, 0].numpy(), verts[low, 1].numpy()
    return np.array([float(verts[i, 1]) - np.interp(float(verts[i, 0]), xs, ys) for i in upper])


def test_catalogue_and_shape():
    assert len(set(KEYS)) == len(KEYS)
    assert all(u.label and u.key == u.key.lower() for u in ACTION_UNITS)
    required = {1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 18, 20, 23, 24, 25, 26, 45}
    assert required <= {u.facs for u in ACTION_UNITS}
    assert BASIS.shape == (len(ACTION_UNITS), 468, 3) and BASIS.dtype == torch.float32
    assert torch.isfinite(BASIS).all()


def test_lip_landmarks_match_the_mesh():
    contours = (LIPS_UPPER_OUTER, LIPS_LOWER_OUTER, LIPS_UPPER_INNER, LIPS_LOWER_INNER)
    assert set().union(*contours) == set(MESH.groups["lips"])
    x = MESH.canonical[:, 0]
    for contour in contours:  # subject's right corner first, symmetric about the midline
        assert x[contour[0]] < 0 < x[contour[-1]] and [int(MESH.mirror[i]) for i in contour] == list(contour[::-1])
    for columns, outer, inner in ((UPPER_LIP, LIPS_UPPER_OUTER, LIPS_UPPER_INNER),
                                  (LOWER_LIP, LIPS_LOWER_OUTER, LIPS_LOWER_INNER)):
        assert {c[0] for c in columns} == {i for i in outer[1:] if x[i] <= 0}
        assert {c[-1] for c in columns} == {i for i in inner[1:] if x[i] <= 0}
        for column in columns:  # each runs across the lip along mesh edges
            assert all(frozenset(pair) in EDGES for pair in zip(column, column[1:])), column


@pytest.mark.parametrize("key", KEYS)
def test_each_unit_moves_a_plausible_amount(key):
    peak = unit(key).norm(dim=-1).max()
    assert 1.5 * MM < peak < 15 * MM


@pytest.mark.parametrize("key", KEYS)
def test_no_triangle_folds_over(key):
    tri = MESH.triangles

    def normals(v):
        return torch.linalg.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]])

    before, after = normals(MESH.canonical), normals(MESH.canonical + unit(key))
    assert ((before * after).sum(-1) > 0).all()


def test_symmetric_units_are_exactly_mirror_symmetric():
    for key in KEYS:
        if not key.endswith(("_left", "_right")):
            assert torch.equal(unit(key), mirrored(unit(key))), key


def test_one_sided_units_mirror_each_other_and_sum_to_both():
    sided = [k[: -len("_left")] for k in KEYS if k.endswith("_left")]
    assert {"au45_blink", "au12_lip_corner_puller"} <= set(sided)
    x = MESH.canonical[:, 0]
    for base in sided:
        left, right = unit(base + "_left"), unit(base + "_right")
        assert torch.equal(right, mirrored(left)), base
        assert torch.allclose(left + right, unit(base), atol=1e-8), base
        assert left[x < -0.015].abs().max() == 0, base  # the subject's right side stays still
        assert left.norm(dim=-1).max() > 1.5 * MM


def test_zero_weights_give_no_displacement_and_weights_are_linear():
    w = torch.zeros(2, len(KEYS))
    assert torch.equal(torch.einsum("bk,kvc->bvc", w, BASIS), torch.zeros(2, 468, 3))
    w[1, KEYS.index("au45_blink")] = 0.5
    half = torch.einsum("bk,kvc->bvc", w, BASIS)[1]
    assert torch.allclose(half, 0.5 * unit("au45_blink"))


def test_cached_basis_is_a_copy():
    again = action_unit_basis(MESH)
    assert torch.equal(again, BASIS)
    again.zero_()
    assert torch.equal(action_unit_basis(MESH), BASIS)


def test_blink_closes_both_eyes_without_crossing():
    for upper, lower in ((RIGHT_UPPER_LID, RIGHT_LOWER_LID), (left_side(RIGHT_UPPER_LID), left_side(RIGHT_LOWER_LID))):
        open_gap = lid_gap(MESH.canonical, upper, lower)
        closed_gap = lid_gap(MESH.canonical + unit("au45_blink"), upper, lower)
        assert (open_gap > 0).all()
        assert closed_gap.max() < 0.15 * open_gap.max()
        assert (closed_gap > -0.1 * MM).all()  # the upper lid rests on the lower one, not through it


def test_wink_closes_one_eye_only():
    closed = MESH.canonical + unit("au45_blink_left")
    left = lid_gap(closed, left_side(RIGHT_UPPER_LID), left_side(RIGHT_LOWER_LID))
    right = lid_gap(closed, RIGHT_UPPER_LID, RIGHT_LOWER_LID)
    assert left.max() < 0.15 * lid_gap(MESH.canonical, left_side(RIGHT_UPPER_LID), left_side(RIGHT_LOWER_LID)).max()
    assert np.allclose(right, lid_gap(MESH.canonical, RIGHT_UPPER_LID, RIGHT_LOWER_LID))
    assert MESH.canonical[159, 0] < 0 < MESH.canonical[386, 0]  # "left" is the subject's left, x > 0


def test_lip_corner_puller_raises_and_widens_the_corners():
    d = unit("au12_lip_corner_puller")
    for corner in (61, 291):
        assert d[corner, 1] > 3 * MM
        assert abs(MESH.canonical[corner, 0] + d[corner, 0]) > abs(MESH.canonical[corner, 0]) + 2 * MM
    smile_left = unit("au12_lip_corner_puller_left")
    assert smile_left[291, 1] > 3 * MM and smile_left[61].abs().max() == 0


@pytest.mark.parametrize("key", ["au1_inner_brow_raiser", "au2_outer_brow_raiser"])
def test_brow_raisers_lift_the_brows_and_leave_the_lower_face_and_lids(key):
    d = unit(key)
    brows = MESH.group("left_eyebrow", "right_eyebrow")
    assert d[brows, 1].mean() > 2 * MM and d[brows, 1].min() > -0.1 * MM
    inner, outer = (107, 336), (70, 300)
    lifted, still = (inner, outer) if key.startswith("au1") else (outer, inner)
    assert (d[list(lifted), 1] > 5 * MM).all() and (d[list(still), 1] < 1 * MM).all()
    lower_face = MESH.group("lips").tolist() + list(CHIN)
    assert d[lower_face].norm(dim=-1).max() < 0.1 * MM
    assert d[MESH.group("left_eye", "right_eye")].abs().max() < 1e-9


@pytest.mark.parametrize("key", ["au5_upper_lid_raiser", "au7_lid_tightener", "au45_blink"])
def test_eyelid_units_leave_the_brows(key):
    d = unit(key)
    assert d[MESH.group("left_eyebrow", "right_eyebrow")].abs().max() < 1e-9
    assert d[MESH.group("left_eye", "right_eye")].norm(dim=-1).max() > 1 * MM


@pytest.mark.parametrize("key", [k for k in KEYS if int(k[2:].split("_")[0]) >= 10 and not k.startswith("au45")])
def test_mouth_units_leave_the_eyes_and_brows(key):
    upper_face = MESH.group("left_eye", "right_eye", "left_eyebrow", "right_eyebrow").tolist() + list(FOREHEAD)
    assert unit(key)[upper_face].norm(dim=-1).max() < 0.05 * MM


def test_jaw_drop_lowers_the_chin_and_opens_the_lips():
    d = unit("au26_jaw_drop")
    assert (d[list(CHIN), 1] < -5 * MM).all()
    assert d[list(LOWER_INNER_LIP), 1].mean() < -5 * MM
    assert d[list(UPPER_INNER_LIP)].abs().max() < 1e-9


def test_jaw_weights_split_the_lips():
    w = jaw_weights(MESH)
    assert w.shape == (468,) and w.dtype == torch.float32 and w.min() >= 0 and w.max() <= 1
    assert torch.equal(w, w[MESH.mirror])
    assert torch.allclose(w[list(LOWER_INNER_LIP + CHIN)], torch.ones(12), atol=1e-6)
    assert w[list(UPPER_INNER_LIP + FOREHEAD)].max() < 1e-6
    assert w[MESH.group("left_eye", "right_eye", "nose")].max() == 0
    assert 0.2 < w[61] < 0.8 and 0.2 < w[291] < 0.8  # the corners are shared
    cheek = w[[57, 212, 214]]  # beside the mouth corner, going outward: a ramp, not a step
    assert (cheek > 0.3).all() and (cheek < 1).all()


def test_apply_jaw():
    verts = MESH.canonical.expand(2, -1, -1).clone()
    assert torch.equal(apply_jaw(verts, torch.zeros(2, 3), MESH), verts)

    opened = apply_jaw(verts, torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.0, 0.0]]), MESH)
    assert torch.equal(opened[0], verts[0])
    gap_before = verts[0, 13, 1] - verts[0, 14, 1]
    gap_after = opened[1, 13, 1] - opened[1, 14, 1]
    assert gap_after > gap_before + 10 * MM  # positive pitch opens the mouth
    assert (opened[1, list(CHIN), 1] < verts[1, list(CHIN), 1] - 10 * MM).all()
    still = MESH.group("left_eye", "right_eye", "left_eyebrow", "right_eyebrow").tolist() + list(FOREHEAD)
    assert torch.equal(opened[1, still], verts[1, still])

    # a full-weight vertex turns rigidly about the pivot
    pivot = torch.tensor(JAW_PIVOT)
    assert torch.allclose((opened[1, 152] - pivot).norm(), (verts[1, 152] - pivot).norm(), atol=1e-7)
    sideways = apply_jaw(verts[:1], torch.tensor([[0.0, 0.1, 0.0]]), MESH)
    assert sideways[0, 152, 0] > 5 * MM  # positive yaw moves the chin toward +x
