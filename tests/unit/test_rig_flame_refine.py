"""FaceFit's FLAME refinement on the dense landmarks, on test_rig_flame's synthetic FLAME/DECA files:
DECA's fit of a real photo gets tighter, a rig already on its landmarks stays put, a disturbed one
comes back, and placeholders, zero steps and the inputs are left alone."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.faces.crops import FaceCropInfo, FaceCrops
from models.faces.types import FaceDetection
from models.rig.flame_backend import fit_flame
from models.rig.flame_refine import landmark_error, refine_flame_fit
from models.rig.flame_units import flame_correspondence
from models.rig.geometry import to_screen
from models.rig.rig import TENSOR_FIELDS
from test_rig_flame import N_AU, assets, flame_rig, folders, photo_crops  # noqa: F401 (fixtures)

FITTED = ("identity", "expression", "pose", "jaw", "camera")


def faked_crops(rig, assets) -> FaceCrops:
    """Crops whose detections' landmarks are the rig's own projected correspondence points."""
    corr = flame_correspondence(assets)
    verts = assets.model(rig.identity, rig.expression, torch.cat([rig.pose, rig.jaw], 1), eye_pose=rig.eyes)
    points = (verts[:, corr.vertices] * corr.weights.float()[..., None]).sum(2)
    screen = to_screen(points, rig.camera, rig.crop_size)[..., :2].double().numpy()
    items = []
    for b, xy in enumerate(screen):
        landmarks = np.concatenate([xy, np.zeros((468, 1))], 1)
        detection = FaceDetection(box=(0.0, 0.0, 1.0, 1.0), score=1.0, points5=xy[:5], landmarks=landmarks)
        items.append(FaceCropInfo(b, (rig.crop_size,) * 2, rig.crop_size, np.eye(2, 3), detection, 0))
    return FaceCrops(tuple(items))


@pytest.fixture(scope="module")
def deca_fit(photo_crops, assets):  # noqa: F811
    crops, info = photo_crops
    return fit_flame(crops, info, assets), info


def test_refinement_tightens_decas_fit_on_a_photo(deca_fit, assets):  # noqa: F811
    rig, info = deca_fit
    kept = {k: v.clone() for k, v in rig.tensors().items()}
    calls = []
    refined = refine_flame_fit(rig, info, assets, check_interrupt=lambda: calls.append(1))
    assert all(torch.equal(kept[k], v) for k, v in rig.tensors().items())  # inputs untouched
    before, after = landmark_error(rig, info, assets), landmark_error(refined, info, assets)
    print(f"landmark error / inter-ocular: DECA {before[0]:.4f} -> refined {after[0]:.4f}")
    assert after[0] < 0.5 * before[0] and after[0] < 0.05  # measured: 0.206 -> 0.030
    assert torch.isnan(before[1]) and torch.isnan(after[1])  # the placeholder has no landmarks
    assert len(calls) >= 10
    for name in TENSOR_FIELDS:
        value = getattr(refined, name)
        assert value.dtype == torch.float32 and value.device == rig.device, name
        assert torch.equal(value[1], getattr(rig, name)[1]), name  # the placeholder is unchanged
    assert torch.equal(refined.eyes, rig.eyes) and torch.equal(refined.albedo, rig.albedo)
    assert refined.crops is rig.crops and refined.crop_size == rig.crop_size
    # The priors keep the refined face a plausible one near DECA's.
    assert (refined.identity - rig.identity).norm() < 3.0
    assert refined.expression.abs().max() < 4.0
    assert (refined.pose - rig.pose).norm() < 0.5 and refined.jaw.norm() < 0.5


def test_stronger_priors_move_shape_and_expression_less(deca_fit, assets):  # noqa: F811
    rig, info = deca_fit
    loose = refine_flame_fit(rig, info, assets, steps=30)
    tight = refine_flame_fit(rig, info, assets, steps=30, shape_weight=1.0, expression_weight=1.0)
    for name in ("identity", "expression"):
        moved = {k: (getattr(r, name) - getattr(rig, name)).norm() for k, r in (("tight", tight), ("loose", loose))}
        assert moved["tight"] < moved["loose"], name


def test_zero_steps_and_faceless_batches_return_the_rig_unchanged(deca_fit, assets):  # noqa: F811
    rig, info = deca_fit
    same = refine_flame_fit(rig, info, assets, steps=0)
    assert all(torch.equal(getattr(same, k), getattr(rig, k)) for k in TENSOR_FIELDS)
    faceless = rig.select([1])
    kept = refine_flame_fit(faceless, faceless.crops, assets)
    assert all(torch.equal(getattr(kept, k), getattr(faceless, k)) for k in TENSOR_FIELDS)


def test_a_rig_on_its_landmarks_stays_put(assets):  # noqa: F811
    rig = flame_rig()
    info = faked_crops(rig, assets)
    assert landmark_error(rig, info, assets).max() < 1e-5
    refined = refine_flame_fit(rig, info, assets)
    for name in FITTED:
        assert (getattr(refined, name) - getattr(rig, name)).abs().max() < 1e-4, name


def test_a_disturbed_rig_comes_back_to_its_landmarks(assets):  # noqa: F811
    truth = flame_rig()
    info = faked_crops(truth, assets)
    generator = torch.Generator().manual_seed(11)
    # The synthetic FLAME's first N_AU expression directions are the units' fields; the rest (like its
    # shape directions) are millimetre noise that the priors rightly hold still.
    units = (torch.arange(50) < N_AU).float()
    start = truth.replace(pose=truth.pose + 0.05 * torch.randn(2, 3, generator=generator),
                          jaw=truth.jaw + 0.05 * torch.randn(2, 3, generator=generator),
                          expression=truth.expression + 0.3 * torch.randn(2, 50, generator=generator) * units,
                          camera=truth.camera * torch.tensor([1.1, 1.0, 1.0]) + torch.tensor([0.0, 0.005, -0.005]))
    before, after = landmark_error(start, info, assets), landmark_error(refine_flame_fit(start, info, assets), info,
                                                                        assets)
    print(f"disturbed rig: {before.tolist()} -> {after.tolist()}")
    assert (before > 0.3).all() and (after < 0.05 * before).all() and (after < 0.02).all()


def test_interrupt_stops_the_refinement(deca_fit, assets):  # noqa: F811
    rig, info = deca_fit

    def stop():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        refine_flame_fit(rig, info, assets, check_interrupt=stop)


def test_fit_flame_refines_when_asked(photo_crops, assets):  # noqa: F811
    crops, info = photo_crops
    plain = fit_flame(crops, info, assets)
    refined = fit_flame(crops, info, assets, refine_steps=30)
    before, after = landmark_error(plain, info, assets), landmark_error(refined, info, assets)
    valid = ~torch.isnan(before)
    assert (after[valid] < 0.5 * before[valid]).all()
