"""Colour matching in Lab: conversions, mean/std transfer within a mask, low-frequency transfer."""
import pytest
import torch

from models.faces.align import ffhq_affine, warp_affine
from models.faces.color import lab_to_rgb, match_low_frequency, match_mean_std, rgb_to_lab
from models.faces.filters import gaussian_blur

from face_photos import photo, points5


@pytest.fixture(scope="module")
def face() -> torch.Tensor:
    name = "lp_drv_d8_glasses_pout.jpg"
    a = ffhq_affine(points5(name), 128)
    return warp_affine(photo(name)[None], a[None], 128)[0]


def lab_stats(rgb: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lab = rgb_to_lab(rgb)[mask]
    return lab.mean(0), lab.std(0, unbiased=False)


def test_lab_reference_values_and_round_trip():
    rgb = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    lab = rgb_to_lab(rgb)
    torch.testing.assert_close(lab[0], torch.tensor([100.0, 0.0, 0.0]), atol=0.01, rtol=0)
    torch.testing.assert_close(lab[1], torch.tensor([53.24, 80.09, 67.20]), atol=0.02, rtol=0)
    torch.testing.assert_close(lab[2], torch.zeros(3), atol=1e-4, rtol=0)
    assert lab[3, 0].item() == pytest.approx(53.39, abs=0.02)
    noise = torch.rand(64, 64, 3, generator=torch.Generator().manual_seed(0))
    assert (lab_to_rgb(rgb_to_lab(noise)) - noise).abs().max() < 1e-4


def test_mean_std_brings_a_colour_cast_back(face):
    mask = torch.zeros(128, 128, dtype=torch.bool)
    mask[24:104, 24:104] = True
    cast = (face * torch.tensor([1.15, 0.9, 0.7]) + torch.tensor([0.04, 0.02, 0.0])).clamp(0, 1) * 0.8
    ref_mean, ref_std = lab_stats(face, mask)
    cast_mean, cast_std = lab_stats(cast, mask)
    out_mean, out_std = lab_stats(match_mean_std(cast, face, mask.float()), mask)
    assert (cast_mean - ref_mean).abs().max() > 5.0  # the cast is real
    assert (out_mean - ref_mean).abs().max() < 0.5
    assert ((out_std - ref_std).abs() / ref_std).max() < 0.05
    assert ((cast_std - ref_std).abs() / ref_std).max() > 0.1


def test_mean_std_uses_only_the_masked_pixels(face):
    left = torch.zeros(128, 128)
    left[:, :64] = 1.0
    darker = face * (1.0 - 0.4 * left[..., None])  # only the left half is darker
    out = match_mean_std(darker, face, left)
    m = left.bool()
    ref_mean, _ = lab_stats(face, m)
    assert (lab_stats(out, m)[0] - ref_mean).abs().max() < 0.5
    whole = match_mean_std(darker, face)  # whole-image statistics differ from the left half's
    assert (lab_stats(whole, m)[0] - ref_mean).abs().max() > 3.0


def test_mean_std_keeps_grey_grey_and_ignores_an_empty_mask(face):
    grey = face.mean(-1, keepdim=True).expand_as(face)
    out = match_mean_std(grey * 0.7, grey)
    lab = rgb_to_lab(out)
    assert lab[..., 1:].abs().max() < 0.5
    same = match_mean_std(face * 0.7, face, torch.zeros(128, 128))
    assert (same - face * 0.7).abs().max() < 1e-4


def test_low_frequency_takes_the_reference_light_and_keeps_the_edit_detail(face):
    """The edit = the reference under a left-to-right light gradient, plus fine stripes of its own.
    After matching the gradient is gone and the stripes are still there."""
    x = torch.linspace(0, 1, 128)
    light = (0.6 + 0.5 * x)[None, :, None]
    stripes = 0.05 * torch.tensor([1.0, -1.0]).repeat(64)[None, :, None]
    edit = (face * light + stripes).clamp(0, 1)
    out = match_low_frequency(edit, face, sigma=6.0)

    def low(img):
        return gaussian_blur(img.permute(2, 0, 1)[None], 6.0)[0].permute(1, 2, 0)

    inner = (slice(16, 112), slice(16, 112))
    before = (low(edit) - low(face))[inner].abs().mean()
    after = (low(out) - low(face))[inner].abs().mean()
    assert after < 0.25 * before
    detail = (out - low(out))[inner] - (face - low(face))[inner]  # what the edit added on top of the reference
    kept = (detail * stripes.expand_as(face)[inner]).sum() / (stripes.expand_as(face)[inner] ** 2).sum()
    assert kept > 0.7  # most of the stripes' amplitude survives


def test_low_frequency_mask_limits_where_the_correction_comes_from(face):
    mask = torch.zeros(128, 128)
    mask[:, :40] = 1.0
    edit = (face + 0.2).clamp(0, 1)
    out = match_low_frequency(edit, face, mask, sigma=4.0)
    assert (out - face)[:, :30].abs().mean() < 0.3 * (edit - face)[:, :30].abs().mean()
    assert (out - edit)[:, 90:].abs().max() < 1e-3  # far from the mask nothing changes


def test_matchers_are_batch_aware(face):
    small = face[::2, ::2]
    batch = torch.stack([small * 0.7, small.flip(1) * 0.9])
    ref = torch.stack([small, small.flip(1)])
    for fn in (match_mean_std, match_low_frequency):
        out = fn(batch, ref)
        for i in range(2):
            assert (out[i] - fn(batch[i], ref[i])).abs().max() < 1e-4
