"""Paste-back: exact no-edit round trips on real photos, edits landing where they belong, smooth
seams, colour matching, batches."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.faces.align import ffhq_affine, invert_affine, warp_affine
from models.faces.crops import FaceCropInfo, FaceCrops
from models.faces.paste import paste_back, paste_back_batch, paste_crops

from face_photos import ROUND_TRIP_PHOTOS, photo, points5, psnr

# The no-edit round trip WITHOUT preserve_unchanged resamples twice; the worst of these photos
# measured 29.8 dB (lp_src_s2_bw.jpg, 256 px, padding 0.3; see scripts/bench_roundtrip.py).
PLAIN_ROUND_TRIP_DB = 28.0


def crop_of(name: str, size: int, padding: float = 0.0):
    image, a = photo(name), ffhq_affine(points5(name), size, padding)
    return image, warp_affine(image[None], a[None], size)[0], a


def source_point(a: np.ndarray, crop_xy) -> tuple[int, int]:
    """The frame pixel (row, col) under a crop point."""
    x, y = invert_affine(a) @ np.array([*crop_xy, 1.0])
    return int(y), int(x)


@pytest.mark.parametrize("padding", [0.0, 0.3])
@pytest.mark.parametrize("size", [256, 512])
def test_unedited_round_trip(size, padding):
    for name in ROUND_TRIP_PHOTOS:
        image, crop, a = crop_of(name, size, padding)
        kept, mask = paste_back(image, crop, a, preserve_unchanged=True)
        plain, plain_mask = paste_back(image, crop, a, preserve_unchanged=False)
        face = mask > 0.5
        assert face.sum() > 1000 and torch.equal(mask, plain_mask)
        kept_db, plain_db = psnr(kept, image, face), psnr(plain, image, face)
        print(f"{name} {size} px, padding {padding}: {kept_db:.1f} dB preserved, {plain_db:.1f} dB plain")
        assert kept_db >= 40.0
        assert plain_db >= PLAIN_ROUND_TRIP_DB
        outside = mask == 0  # empty when a padded crop covers the whole photo
        assert not (((kept != image) | (plain != image)).any(-1) & outside).any()


def test_requantised_crop_still_round_trips():
    """A crop that went through 8-bit storage differs from the aligner's by up to half a level;
    preserve_unchanged must still treat it as untouched."""
    image, crop, a = crop_of("lp_drv_d8_glasses_pout.jpg", 256)
    stored = torch.round(crop * 255.0) / 255.0
    kept, mask = paste_back(image, stored, a)
    plain, _ = paste_back(image, stored, a, preserve_unchanged=False)
    face = mask > 0.5
    assert psnr(kept, image, face) > psnr(plain, image, face) + 20.0


def test_edit_lands_where_the_crop_shows_it():
    image, crop, a = crop_of("lp_drv_d8_glasses_pout.jpg", 256)
    edited = crop.clone()
    edited[96:160, 96:160] = (edited[96:160, 96:160] + 0.3).clamp(max=1.0)  # a bright square at the crop centre
    out, mask = paste_back(image, edited, a)
    centre, corner = source_point(a, (128, 128)), source_point(a, (60, 200))
    assert (out[centre] - image[centre]).mean() > 0.15
    assert torch.equal(out[corner], image[corner])  # unchanged crop pixels give the original back
    changed = (out - image).abs().amax(-1) > 0.05
    ys, xs = torch.nonzero(changed, as_tuple=True)
    crop_pts = np.stack([xs.numpy() + 0.5, ys.numpy() + 0.5, np.ones(len(xs))], 1) @ a.T
    assert crop_pts.min() > 90 and crop_pts.max() < 166  # changes only around the edited square


def steepest_step(x: torch.Tensor) -> torch.Tensor:
    """Per pixel, the largest change to its right or lower neighbour (channel max)."""
    x = x if x.ndim == 3 else x[..., None]
    dx = F.pad(x.diff(dim=1).abs(), (0, 0, 0, 1))
    dy = F.pad(x.diff(dim=0).abs(), (0, 0, 0, 0, 0, 1))
    return torch.maximum(dx, dy).amax(-1)


def test_seam_is_smooth():
    """Paste flat grey over the face: across the mask border the result may change no faster than
    the frame itself does plus the blend mask's own step, and that step is bounded by the feather."""
    image, crop, a = crop_of("lp_drv_d8_glasses_pout.jpg", 256)
    grey = torch.full_like(crop, 0.5)
    frame_px_per_crop_px = 1.0 / np.sqrt(np.linalg.det(a[:, :2]))
    out, mask = paste_back(image, grey, a, preserve_unchanged=False)
    assert (out - image)[mask > 0.999].abs().mean() > 0.1  # the grey really is pasted
    border = (mask > 0) & (mask < 0.999)
    mask_step = steepest_step(mask)
    # smoothstep's steepest slope is 1.5 / width, width = feather x 256 crop pixels
    assert mask_step.max() <= 1.5 / (0.08 * 256 * frame_px_per_crop_px) * 1.1
    assert (steepest_step(out)[border] <= steepest_step(image)[border] + mask_step[border] + 1e-5).all()
    _, hard = paste_back(image, grey, a, feather=0.0, preserve_unchanged=False)
    assert steepest_step(hard).max() > 0.5  # without feathering the edge does jump


def test_crop_space_mask_limits_the_paste():
    image, crop, a = crop_of("lp_drv_d8_glasses_pout.jpg", 256)
    left = torch.zeros(64, 64)
    left[:, :32] = 1.0  # any square size: resized to the crop
    out, mask = paste_back(image, torch.ones_like(crop), a, mask=left)
    assert (out[source_point(a, (60, 128))] > 0.99).all()
    right = source_point(a, (200, 128))
    assert torch.equal(out[right], image[right]) and mask[right] == 0


def test_resized_crop_uses_the_scaled_affine():
    """An edit node returned the 256 crop at 512: the paste must land on the same square."""
    image, crop, a = crop_of("lp_drv_d8_glasses_pout.jpg", 256)
    edited = crop.clone()
    edited[96:160, 96:160] = 0.0
    big = F.interpolate(edited.permute(2, 0, 1)[None], size=512, mode="bilinear", align_corners=False)
    big = big[0].permute(1, 2, 0)
    small_out, small_mask = paste_back(image, edited, a, preserve_unchanged=False)
    big_out, big_mask = paste_back(image, big, a, affine_size=256, preserve_unchanged=False)
    assert (small_mask - big_mask).abs().max() < 0.02
    face = small_mask > 0.5
    assert psnr(big_out, small_out, face) > 30.0
    kept, _ = paste_back(image, big, a, affine_size=256)
    corner = source_point(a, (60, 200))
    assert (kept[corner] - image[corner]).abs().max() < 0.02  # upscaling noise counts as unchanged


@pytest.mark.parametrize("mode", ["mean_std", "low_frequency"])
def test_color_match_undoes_a_colour_cast(mode):
    image, crop, a = crop_of("lp_drv_d8_glasses_pout.jpg", 128)
    cast = (crop * torch.tensor([1.1, 0.9, 0.75]) + torch.tensor([0.05, 0.0, 0.0])).clamp(0, 1)
    plain, mask = paste_back(image, cast, a, preserve_unchanged=False)
    matched, _ = paste_back(image, cast, a, color_match=mode, preserve_unchanged=False)
    face = mask > 0.5
    mean = image[face].mean(0)
    assert (matched[face].mean(0) - mean).abs().max() < 0.4 * (plain[face].mean(0) - mean).abs().max()
    assert psnr(matched, image, face) > psnr(plain, image, face) + 6.0


def test_unknown_color_match_raises():
    image, crop, a = crop_of("lp_drv_d8_glasses_pout.jpg", 64)
    with pytest.raises(ValueError):
        paste_back(image, crop, a, color_match="histogram")


def side_by_side():
    """One frame with two faces (two photos side by side) and a plain second frame."""
    left, right = photo("lp_drv_d8_glasses_pout.jpg")[:400, 160:560], photo("a2f_exp4_scream.png")[:400, 28:428]
    frame = torch.cat([left, right], dim=1)
    other = torch.rand(frame.shape, generator=torch.Generator().manual_seed(3))
    a1 = ffhq_affine(points5("lp_drv_d8_glasses_pout.jpg") - [160, 0], 128)
    a2 = ffhq_affine(points5("a2f_exp4_scream.png") - [28, 0] + [400, 0], 128)
    return torch.stack([frame, other]), a1, a2


def test_batch_two_faces_in_one_frame_and_a_skipped_entry():
    frames, a1, a2 = side_by_side()
    affines = np.stack([a1, a2, a1])
    crops = warp_affine(frames[[0, 0, 1]], affines, 128)
    edited = (crops + 0.25).clamp(max=1.0)
    out, masks = paste_back_batch(frames, edited, affines, [0, 0, 1], [True, True, False])
    for a in (a1, a2):
        p = source_point(a, (64, 64))
        assert (out[0][p] - frames[0][p]).mean() > 0.15
    assert (masks[0, :, :400] > 0.5).any() and (masks[0, :, 400:] > 0.5).any()
    assert torch.equal(out[1], frames[1]) and not masks[1].any()


def test_batch_crops_stack_in_order():
    """A later, unedited crop over an earlier edited one keeps the earlier edit."""
    frames, a1, _ = side_by_side()
    wide = ffhq_affine(points5("lp_drv_d8_glasses_pout.jpg") - [160, 0], 128, padding=0.3)
    first = warp_affine(frames[:1], a1[None], 128)[0]
    first[40:88, 40:88] = 1.0
    second = warp_affine(frames[:1], wide[None], 128)[0]
    alone, alone_mask = paste_back(frames[0], first, a1)
    both, both_masks = paste_back_batch(frames, torch.stack([first, second]), np.stack([a1, wide]), [0, 0],
                                        [True, True])
    assert torch.equal(both[0], alone)
    assert torch.equal(both_masks[0], torch.maximum(alone_mask, paste_back(frames[0], second, wide)[1]))


def test_empty_batch_returns_the_frames():
    frames, _, _ = side_by_side()
    out, masks = paste_back_batch(frames, torch.zeros(0, 128, 128, 3), np.zeros((0, 2, 3)), [], [])
    assert torch.equal(out, frames) and out.data_ptr() != frames.data_ptr()
    assert masks.shape == frames.shape[:3] and not masks.any()


def test_paste_crops_follows_the_face_crop_record():
    frames, a1, a2 = side_by_side()
    size = tuple(frames.shape[1:3])
    record = FaceCrops((FaceCropInfo(0, size, 128, a2, None), FaceCropInfo(1, size, 128, a1, None)))
    crops = warp_affine(frames[[0, 1]], np.stack([a2, a1]), 128)
    big = F.interpolate(crops.permute(0, 3, 1, 2), size=256, mode="bilinear").permute(0, 2, 3, 1) * 0.5
    out, masks = paste_crops(frames, big, record)  # placeholders only: nothing is pasted
    assert torch.equal(out, frames) and not masks.any()
    with pytest.raises(ValueError):
        paste_crops(frames[:, :300], big, record)
