"""Deep3DFaceRecon's input crop: the weak-perspective fit, the exact crop geometry of the reference
preprocessing (resize the photo by 102 / s to integer size, cut 224 x 224 at integer offsets, y-up
landmarks), and the pixels against that procedure done with PIL on a real photo."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from face_photos import photo, points5
from models.identity.deep3d_align import STANDARD_LANDMARKS_3D, deep3d_crop_affine, deep3d_crops, pos_fit

PHOTO = "fr_alex_smile.png"


def reference_parameters(points_xy_down: np.ndarray, w0: int, h0: int, size: int = 224, rescale: float = 102.0):
    """The reference procedure's numbers: the 2n x 8 least-squares system on y-up pixel-index points,
    scale 102 / s, integer resized size and integer crop offsets (numpy int32 casts)."""
    lm = np.asarray(points_xy_down, np.float64) - 0.5
    lm[:, 1] = h0 - 1 - lm[:, 1]
    n = len(lm)
    system = np.zeros((2 * n, 8))
    system[0::2, 0:3], system[0::2, 3] = STANDARD_LANDMARKS_3D, 1
    system[1::2, 4:7], system[1::2, 7] = STANDARD_LANDMARKS_3D, 1
    k = np.linalg.lstsq(system, lm.reshape(-1), rcond=None)[0]
    s = rescale / ((np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2)
    t = np.array([k[3], k[7]])
    w, h = np.array(w0 * s).astype(np.int32), np.array(h0 * s).astype(np.int32)
    left = np.array(w / 2 - size / 2 + (t[0] - w0 / 2) * s).astype(np.int32)
    up = np.array(h / 2 - size / 2 + (h0 / 2 - t[1]) * s).astype(np.int32)
    return int(w), int(h), int(left), int(up)


def reference_crop(image: torch.Tensor, points: np.ndarray, size: int = 224) -> torch.Tensor:
    h0, w0 = image.shape[:2]
    w, h, left, up = reference_parameters(points, w0, h0, size)
    pil = Image.fromarray((image.numpy() * 255).round().astype(np.uint8))
    pil = pil.resize((w, h), resample=Image.BICUBIC).crop((left, up, left + size, up + size))
    return torch.from_numpy(np.asarray(pil, np.float32) / 255.0)


def test_pos_fit_recovers_scale_and_translation_of_a_weak_perspective_projection():
    angle = 0.3
    rotation = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    projected = 250.0 * (STANDARD_LANDMARKS_3D @ rotation.T)[:, :2] + np.array([310.0, 205.0])
    t, s = pos_fit(projected)
    assert s == pytest.approx(250.0, rel=1e-9)
    np.testing.assert_allclose(t, [310.0, 205.0], atol=1e-9)


@pytest.mark.parametrize("shift", [(0.0, 0.0), (-300.0, -260.0), (137.3, -41.7)])
def test_affine_is_the_reference_resize_and_integer_crop(shift):
    image = photo(PHOTO)
    h0, w0 = image.shape[:2]
    points = points5(PHOTO) + np.array(shift)  # shifted faces give negative offsets (truncated towards 0)
    w, h, left, up = reference_parameters(points, w0, h0)
    affine = deep3d_crop_affine(points, (h0, w0))
    np.testing.assert_array_equal(affine, [[w / w0, 0.0, -left], [0.0, h / h0, -up]])


@pytest.mark.parametrize("name", [PHOTO, "lp_src_s2_bw.jpg", "skimg_astronaut.png"])  # shrunk 0.93, 0.64; grown 1.5
def test_crop_matches_the_reference_pixels_to_the_pixel(name):
    image = photo(name)
    points = points5(name)
    ours = deep3d_crops(image[None], [points])[0]
    theirs = reference_crop(image, points)
    assert ours.shape == theirs.shape == (224, 224, 3)
    error = float((ours - theirs).abs().mean())
    assert error < 0.008  # bilinear with prefilter vs PIL bicubic: small differences, no geometric ones
    # one pixel off in any direction is several times worse, so the geometry is exact
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        shifted = torch.roll(theirs, shifts=(dy, dx), dims=(0, 1))[2:-2, 2:-2]
        assert float((ours[2:-2, 2:-2] - shifted).abs().mean()) > 4 * error


def test_several_faces_of_one_image_and_batch_checks():
    image = photo(PHOTO)[None]
    points = points5(PHOTO)
    crops = deep3d_crops(image, [points, points + 5.0])
    assert crops.shape == (2, 224, 224, 3)
    assert not torch.equal(crops[0], crops[1])
    with pytest.raises(ValueError, match="2 images for 3 faces"):
        deep3d_crops(image.expand(2, -1, -1, -1), [points] * 3)
