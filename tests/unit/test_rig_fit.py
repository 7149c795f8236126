"""FaceFit's embedded backend on real photos: the fitted rig reproduces the landmarks, renders the
face where the photo has it, survives a save/load round trip, and handles placeholder crops."""
import numpy as np
import pytest
import torch

from face_photos import photo
from models.faces.cropping import CropSettings, crop_faces
from models.faces.detector import FaceDetector
from models.faces.finder import find_faces
from models.faces.mediapipe_files import find_mediapipe_models
from models.rig.fit_mesh import fit_mesh468, landmarks_in_crop
from models.rig.geometry import rig_mesh
from models.rig.io import load_rig, save_rig
from models.rig.render import render_rig

PHOTOS = ("skimg_astronaut.png", "lp_src_s2_bw.jpg", "fr_kit_moody.jpg")


@pytest.fixture(scope="module")
def fitted():
    detector = FaceDetector(find_mediapipe_models([]))
    out = {}
    for name in PHOTOS:
        image = photo(name)[None]
        faces, _ = find_faces(detector, image)
        crops, info = crop_faces(image, faces, CropSettings(size=256))
        out[name] = (crops, info, fit_mesh468(crops, info))
    return out


def inter_ocular(points: torch.Tensor) -> float:
    return float((points[[33, 133]].mean(0) - points[[263, 362]].mean(0)).norm())


def test_fit_reproduces_the_landmarks_exactly(fitted):
    for name, (crops, info, rig) in fitted.items():
        screen = rig_mesh(rig).screen[0, :, :2].double()
        world = landmarks_in_crop(info.items[0])
        target = torch.stack([(world[:, 0] + 1) * 128, (1 - world[:, 1]) * 128], -1)
        err = (screen - target).norm(dim=-1).mean() / inter_ocular(target)
        assert err < 1e-3, f"{name}: mean landmark error {err:.2e} of the inter-ocular distance"


def test_fit_covers_the_face_and_rerenders_the_photo(fitted):
    for name, (crops, info, rig) in fitted.items():
        out = render_rig(rig)
        mask = out.buffers.mask[0] > 0
        assert 0.12 < mask.float().mean() < 0.6, name
        mse = ((out.buffers.rendered[0] - crops[0]) ** 2).mean(-1)[mask].mean()
        psnr = float(10 * torch.log10(1 / mse))
        assert psnr > 18.0, f"{name}: re-render PSNR {psnr:.1f} dB"
        assert out.physic_cond.shape == (1, 9, 256, 256) and out.order == ("rendered", "normal", "albedo")
        assert torch.equal(out.physic_cond[:, :3], out.buffers.rendered.permute(0, 3, 1, 2))


def test_fitted_lighting_and_albedo_are_plausible(fitted):
    for name, (_, _, rig) in fitted.items():
        assert (rig.albedo >= 0).all() and (rig.albedo <= 1).all()
        dc = rig.light[0, 0]
        assert torch.allclose(dc, dc.mean().expand(3)), "the constant light band is white"
        assert rig.expression.min() >= 0 and torch.equal(rig.action_units, torch.zeros_like(rig.action_units))


def test_save_and_load_round_trip(fitted, tmp_path):
    crops, info, rig = fitted["skimg_astronaut.png"]
    path = save_rig(rig, tmp_path / "rig.safetensors")
    back = load_rig(path)
    assert back.geometry == rig.geometry and back.crop_size == rig.crop_size and back.face_index == rig.face_index
    for k, v in rig.tensors().items():
        assert torch.equal(back.tensors()[k], v), k
    assert np.allclose(back.crops.items[0].affine, info.items[0].affine)
    assert torch.equal(rig_mesh(back).screen, rig_mesh(rig).screen)


def test_placeholder_crops_fit_a_mean_face_that_renders_empty(fitted):
    crops, info, _ = fitted["skimg_astronaut.png"]
    from models.faces.crops import FaceCropInfo, FaceCrops
    placeholder = FaceCropInfo(0, info.items[0].source_size, 256, info.items[0].affine, None)
    rig = fit_mesh468(torch.cat([crops, crops]), FaceCrops((info.items[0], placeholder)))
    out = render_rig(rig)
    assert out.buffers.mask[0].sum() > 0 and out.buffers.mask[1].sum() == 0


def test_mirroring_the_photo_flips_yaw_and_roll(fitted):
    from models.rig.edit import rig_yaw_pitch_roll

    detector = FaceDetector(find_mediapipe_models([]))
    for name, (_, _, rig) in fitted.items():
        image = photo(name)[None].flip(2)
        faces, _ = find_faces(detector, image)
        crops, info = crop_faces(image, faces, CropSettings(size=256))
        yaw, pitch, roll = rig_yaw_pitch_roll(rig)[0].tolist()
        yaw_m, pitch_m, roll_m = rig_yaw_pitch_roll(fit_mesh468(crops, info))[0].tolist()
        assert abs(yaw + yaw_m) < 3.0 and abs(roll + roll_m) < 3.0 and abs(pitch - pitch_m) < 3.0, \
            f"{name}: yaw {yaw:.1f}/{yaw_m:.1f}, roll {roll:.1f}/{roll_m:.1f}, pitch {pitch:.1f}/{pitch_m:.1f}"
    # the three-quarter photo really is turned, so the check above is not trivially about zeros
    assert abs(rig_yaw_pitch_roll(fitted["fr_kit_moody.jpg"][2])[0, 0]) > 15


def test_profile_faces_are_refused_with_a_clear_message():
    from models.rig.fit_mesh import FitError, MeshFitSettings

    detector = FaceDetector(find_mediapipe_models([]))
    image = photo("if_profile_left.jpeg")[None]
    faces, _ = find_faces(detector, image)
    crops, info = crop_faces(image, faces, CropSettings(size=256))
    with pytest.raises(FitError, match=r"turned \d+ degrees from frontal.*profile"):
        fit_mesh468(crops, info)
    assert len(fit_mesh468(crops, info, MeshFitSettings(max_yaw_degrees=90.0))) == 1
