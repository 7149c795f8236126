"""Alignment affines and the affine warp: exact pixel conventions, FFHQ / ArcFace framing, anti-aliasing."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.faces.align import (
    ARCFACE_TEMPLATE_112,
    antialias_sigma,
    arcface_affine,
    compose_affines,
    ffhq_affine,
    invert_affine,
    warp_affine,
)
from models.faces.filters import gaussian_blur

from face_photos import photo, points5, psnr

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
# An upright face: eyes 60 px apart, mouth 70 px below them.
UPRIGHT = np.array([[170.0, 200.0], [230.0, 200.0], [200.0, 235.0], [178.0, 270.0], [222.0, 270.0]])


def rotate(points: np.ndarray, degrees: float, about=(200.0, 230.0)) -> np.ndarray:
    t = np.deg2rad(degrees)
    r = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return (points - about) @ r.T + about


def apply(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ affine[:, :2].T + affine[:, 2]


@pytest.mark.parametrize("border", ["reflect", "replicate", "zeros"])
@pytest.mark.parametrize("hw", [(37, 53), (300, 211), (512, 512)])
def test_identity_warp_reproduces_the_image_bit_for_bit(hw, border):
    images = torch.rand(2, *hw, 3, generator=torch.Generator().manual_seed(0))
    out = warp_affine(images, np.stack([IDENTITY, IDENTITY]), hw, border=border)
    assert torch.equal(out, images)


def test_integer_translation_shifts_by_whole_pixels():
    images = torch.rand(1, 61, 90, 3, generator=torch.Generator().manual_seed(1))
    shift = IDENTITY.copy()
    shift[:, 2] = (5, -3)  # source (x, y) -> (x + 5, y - 3)
    out = warp_affine(images, shift[None], (61, 90), border="zeros")
    assert torch.equal(out[0, :-3, 5:], images[0, 3:, :-5])
    assert torch.equal(out[0, :, :5], torch.zeros_like(out[0, :, :5]))
    assert torch.equal(out[0, -3:], torch.zeros_like(out[0, -3:]))


def reference_warp(image: torch.Tensor, affine: np.ndarray, out_hw, border: str, sigma: float) -> torch.Tensor:
    """The plain definition: blur the whole image, grid_sample it at A^-1 of every output pixel centre."""
    h, w, _ = image.shape
    inv = invert_affine(affine)
    ys, xs = torch.meshgrid(torch.arange(out_hw[0]) + 0.5, torch.arange(out_hw[1]) + 0.5, indexing="ij")
    px = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    py = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    grid = torch.stack([2 * px / w - 1, 2 * py / h - 1], dim=-1)[None].float()
    src = gaussian_blur(image.permute(2, 0, 1)[None], sigma)
    mode = {"reflect": "reflection", "replicate": "border", "zeros": "zeros"}[border]
    return F.grid_sample(src, grid, padding_mode=mode, align_corners=False)[0].permute(1, 2, 0)


@pytest.mark.parametrize("border", ["reflect", "replicate", "zeros"])
@pytest.mark.parametrize("offset", [(0.0, 0.0), (-160.0, -40.0), (150.0, 170.0)])
def test_windowed_warp_matches_the_plain_definition(border, offset):
    """Only a window of the source is blurred and sampled; the result must not depend on that,
    also when the crop reaches past the image edges (offset) and the border rule kicks in."""
    image = photo("skimg_astronaut.png")
    affine = ffhq_affine(points5("skimg_astronaut.png") + np.array(offset), 64, padding=0.2)
    sigma = float(antialias_sigma(affine[None])[0])
    assert sigma > 0.5  # the window has to cover the blur too
    got = warp_affine(image[None], affine[None], (64, 64), border=border)[0]
    want = reference_warp(image, affine, (64, 64), border, sigma)
    assert (got - want).abs().max() < 2e-5


def test_batch_items_keep_their_own_affine_and_blur():
    image = photo("skimg_astronaut.png")
    small = ffhq_affine(points5("skimg_astronaut.png"), 48)  # strong downscale: blurred
    big = ffhq_affine(points5("skimg_astronaut.png"), 256)  # upscale: not blurred
    batch = warp_affine(torch.stack([image, image]), np.stack([small, big]), (48, 48))
    for out, a in zip(batch, (small, big)):
        alone = warp_affine(image[None], a[None], (48, 48))[0]
        assert (out - alone).abs().max() < 1e-5
    assert (batch[0] - batch[1]).abs().max() > 0.1


def test_warp_takes_torch_affines_and_keeps_dtype():
    images = torch.rand(1, 20, 20, 3)
    out = warp_affine(images, torch.tensor(IDENTITY)[None], 20)
    assert out.dtype == torch.float32 and torch.equal(out, images)


def ffhq_quad(p: np.ndarray, padding: float) -> np.ndarray:
    """The FFHQ crop quad, spelled out as in the dataset's recipe: corners TL, BL, BR, TR."""
    eye_avg = (p[0] + p[1]) / 2
    eye_to_eye = p[1] - p[0]
    mouth_avg = (p[3] + p[4]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8) * (1 + 2 * padding)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


@pytest.mark.parametrize("degrees", [0.0, 25.0, -140.0])
@pytest.mark.parametrize("padding", [0.0, 0.3])
def test_ffhq_affine_maps_the_quad_onto_the_crop(degrees, padding):
    p = rotate(UPRIGHT, degrees)
    a = ffhq_affine(p, 256, padding)
    np.testing.assert_allclose(apply(a, ffhq_quad(p, padding)), [[0, 0], [0, 256], [256, 256], [256, 0]], atol=1e-9)


def test_ffhq_affine_centres_the_face_and_is_a_similarity():
    p = rotate(UPRIGHT * 1.7 + 13.0, 37.0)
    a = ffhq_affine(p, 512)
    eye_avg = (p[0] + p[1]) / 2
    centre = eye_avg + 0.1 * ((p[3] + p[4]) / 2 - eye_avg)
    np.testing.assert_allclose(apply(a, centre[None])[0], [256, 256], atol=1e-9)
    (sa, sb), (sc, sd) = a[:, :2]
    assert sa == pytest.approx(sd) and sb == pytest.approx(-sc)  # rotation + uniform scale, no shear
    assert np.linalg.det(a[:, :2]) > 0  # no mirroring


def test_ffhq_crop_does_not_depend_on_head_roll():
    crop_pts = apply(ffhq_affine(UPRIGHT, 256), UPRIGHT)
    for degrees in (-60.0, 15.0, 170.0):
        p = rotate(UPRIGHT, degrees)
        np.testing.assert_allclose(apply(ffhq_affine(p, 256), p), crop_pts, atol=1e-9)
    assert crop_pts[0, 1] == pytest.approx(crop_pts[1, 1])  # eyes level
    assert crop_pts[0, 0] < 128 < crop_pts[1, 0]


def test_padding_widens_the_quad_about_the_same_centre():
    inv0, inv1 = invert_affine(ffhq_affine(UPRIGHT, 256)), invert_affine(ffhq_affine(UPRIGHT, 256, padding=0.25))
    corners = np.array([[0.0, 0.0], [256.0, 0.0], [128.0, 128.0]])
    c0, c1 = apply(inv0, corners), apply(inv1, corners)
    assert np.hypot(*(c1[1] - c1[0])) == pytest.approx(1.5 * np.hypot(*(c0[1] - c0[0])))
    np.testing.assert_allclose(c1[2], c0[2], atol=1e-9)


def test_degenerate_points_raise():
    with pytest.raises(ValueError):
        ffhq_affine(np.zeros((5, 2)), 256)


def test_arcface_template_maps_to_itself():
    # The template is in OpenCV's integer-centre convention; +0.5 brings it to this package's.
    np.testing.assert_allclose(arcface_affine(ARCFACE_TEMPLATE_112 + 0.5), IDENTITY, atol=1e-9)
    np.testing.assert_allclose(arcface_affine(ARCFACE_TEMPLATE_112 + 0.5, 224), 2 * IDENTITY, atol=1e-9)


def test_arcface_affine_undoes_a_similarity():
    move = np.array([[0.0, -2.0, 300.0], [2.0, 0.0, 40.0]])  # x2, turned 90 degrees, shifted
    p = apply(move, ARCFACE_TEMPLATE_112 + 0.5)
    np.testing.assert_allclose(arcface_affine(p), invert_affine(move), atol=1e-9)
    noisy = p + np.random.default_rng(0).normal(0, 1.0, p.shape)
    assert np.abs(apply(arcface_affine(noisy), noisy) - (ARCFACE_TEMPLATE_112 + 0.5)).max() < 1.5


def test_invert_affine_numpy_and_torch_batches():
    a = np.stack([ffhq_affine(rotate(UPRIGHT, d), 256) for d in (0.0, 30.0)])
    np.testing.assert_allclose(compose_affines(invert_affine(a), a), np.stack([IDENTITY] * 2), atol=1e-12)
    t = torch.tensor(a)
    torch.testing.assert_close(invert_affine(t), torch.tensor(invert_affine(a)))


def zone_plate(n: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(n) + 0.5 - n / 2, torch.arange(n) + 0.5 - n / 2, indexing="ij")
    return (0.5 + 0.5 * torch.cos(torch.pi * (xs**2 + ys**2) / (2 * n)))[..., None].expand(n, n, 3)


@pytest.mark.parametrize("factor", [3, 4, 6])
def test_antialias_cuts_aliasing_of_a_downscale(factor):
    """Against an area average of the same pixels, anti-aliasing must win clearly on a zone plate
    (all frequencies) and on a real photo."""
    scale = np.array([[1.0 / factor, 0.0, 0.0], [0.0, 1.0 / factor, 0.0]])[None]
    for name, image in (("zone plate", zone_plate(384)), ("photo", photo("lp_drv_d8_glasses_pout.jpg")[:384, 168:552])):
        reference = F.avg_pool2d(image.permute(2, 0, 1)[None], factor)[0].permute(1, 2, 0)
        n = 384 // factor
        plain = psnr(warp_affine(image[None], scale, n, antialias=False)[0], reference)
        smooth = psnr(warp_affine(image[None], scale, n, antialias=True)[0], reference)
        print(f"1/{factor} {name}: {plain:.1f} dB plain, {smooth:.1f} dB anti-aliased")
        assert smooth > plain + 10.0
