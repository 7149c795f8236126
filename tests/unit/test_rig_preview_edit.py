"""The diffusion-free preview edit against edits whose answer is known: a square grid mesh moved or
scaled over a crop whose content encodes position (linear ramps and a Gaussian dot), and shadings
whose ratio is known."""
import time

import torch

from models.render.primitives import grid_mesh
from models.render.raster import rasterize
from models.rig.flow import DEFAULT_FALLOFF_FRACTION, push_pull
from models.rig.preview_edit import mesh_warp, preview_edit, relight, relight_weight

SIZE = 128
LO, HI = 40.0, 88.0  # the mesh covers this square of the crop
CENTRE = 64.0


def square_mesh(lo=LO, hi=HI, n=9, batch=1):
    v, f = grid_mesh(n, n)
    xy = lo + (hi - lo) * v[:, :2]
    return torch.cat([xy, torch.zeros(len(v), 1)], -1)[None].repeat(batch, 1, 1), f


def translated(screen, dx, dy):
    out = screen.clone()
    out[..., 0] += dx
    out[..., 1] += dy
    return out


def scaled(screen, s, centre=CENTRE):
    out = screen.clone()
    out[..., :2] = centre + s * (screen[..., :2] - centre)
    return out


def centres(size=SIZE):
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    return xs, ys


def scene(dot=(58.3, 69.6), sigma=2.5, size=SIZE):
    """Channels: x / size, y / size (bilinear sampling reproduces them exactly), a Gaussian dot."""
    xs, ys = centres(size)
    blob = torch.exp(-((xs - dot[0]) ** 2 + (ys - dot[1]) ** 2) / (2 * sigma**2))
    return torch.stack([xs / size, ys / size, blob], -1)[None]


def blob_stats(channel):
    """Centroid (x, y) and rms radius of a non-negative image."""
    xs, ys = centres(channel.shape[-1])
    w = channel / channel.sum()
    cx, cy = (w * xs).sum(), (w * ys).sum()
    return cx.item(), cy.item(), (w * ((xs - cx) ** 2 + (ys - cy) ** 2)).sum().sqrt().item()


def distance_to_square(lo, hi, shift=(0.0, 0.0)):
    """Distance from each pixel centre to the square [lo, hi]^2 moved by `shift`."""
    xs, ys = centres()
    dx = (lo + shift[0] - xs).clamp_min(0) + (xs - hi - shift[0]).clamp_min(0)
    dy = (lo + shift[1] - ys).clamp_min(0) + (ys - hi - shift[1]).clamp_min(0)
    return (dx**2 + dy**2).sqrt()


def neighbour_jump(flow):
    """Largest flow difference (px) between horizontally or vertically adjacent pixels."""
    return torch.maximum((flow[:, 1:] - flow[:, :-1]).norm(dim=-1).amax(), (flow[1:] - flow[:-1]).norm(dim=-1).amax())


# relight ------------------------------------------------------------------------------------------

def relight_inputs(seed=0, size=64):
    g = torch.Generator().manual_seed(seed)
    image = 0.1 + 0.3 * torch.rand(1, size, size, 3, generator=g)
    shading = 0.3 + 0.3 * torch.rand(1, size, size, 3, generator=g)
    mask = torch.zeros(1, size, size)
    mask[:, 12:52, 12:52] = 1.0
    return image, shading, mask


def test_relight_equal_shadings_is_bit_identical():
    image, shading, mask = relight_inputs()
    dark = shading.clone()
    dark[..., :8, :] = 0.0  # below the floor: still equal, still a gain of exactly 1
    assert torch.equal(relight(image, shading, shading.clone(), mask), image)
    assert torch.equal(relight(image, dark, dark.clone(), mask, feather_px=0.0), image)


def test_relight_doubling_doubles_inside_and_leaves_outside():
    image, shading, mask = relight_inputs()
    out = relight(image, shading, 2 * shading, mask, feather_px=4.0)
    inner = torch.zeros_like(mask, dtype=torch.bool)
    inner[:, 12 + 8:52 - 8, 12 + 8:52 - 8] = True  # 2 x feather_px inside: full strength
    torch.testing.assert_close(out[inner], 2 * image[inner], rtol=1e-5, atol=1e-6)
    assert torch.equal(out[mask == 0], image[mask == 0])  # the fade lies inside the mask
    # the gain fades in monotonically from the edge inward, without a step at the edge
    gain = (out / image)[0, 32, :33, 0]
    assert (gain[1:] >= gain[:-1] - 1e-6).all()
    assert gain[12] < 1.01 and (gain[1:] - gain[:-1]).max() < 0.3


def test_relight_clamps_gain_floor_and_output():
    image, shading, mask = relight_inputs()
    inner = (slice(None), slice(30, 34), slice(30, 34))
    strong = relight(image, shading, 10 * shading, mask)  # ratio 10, clamped to max_gain 4
    torch.testing.assert_close(strong[inner], (4 * image[inner]).clamp(max=1.0))
    assert strong.max() <= 1.0 and (strong == 1.0).any()
    weak = relight(image, shading, shading / 10, mask, max_gain=2.0)
    torch.testing.assert_close(weak[inner], image[inner] / 2)
    # both shadings under min_shading: floored to the same value, no blow-up
    tiny = relight(image, torch.full_like(shading, 1e-4), torch.full_like(shading, 0.04), mask)
    assert torch.equal(tiny, image)
    half = relight(image, torch.full_like(shading, 0.01), torch.full_like(shading, 0.2), mask)
    torch.testing.assert_close(half[inner], (image[inner] * 4).clamp(max=1.0))  # 0.2 / floor 0.05


def test_relight_weight_soft_mask_keeps_its_level():
    mask = torch.full((1, 32, 32), 0.5)
    torch.testing.assert_close(relight_weight(mask, 6.0), mask)


# mesh_warp ----------------------------------------------------------------------------------------

def test_translation_moves_the_content_and_the_flow_is_exact_inside():
    old, faces = square_mesh()
    image = scene()
    res = mesh_warp(image, old, translated(old, 5, -3), faces)
    x0, y0, _ = blob_stats(image[0, ..., 2])
    x1, y1, _ = blob_stats(res.image[0, ..., 2])
    assert abs(x1 - x0 - 5) < 0.05 and abs(y1 - y0 + 3) < 0.05  # a tenth of the 0.5 px asked for
    core = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    core[int(LO - 3) + 1:int(HI - 3) - 1, int(LO + 5) + 1:int(HI + 5) - 1] = True
    torch.testing.assert_close(res.flow[0][core], torch.tensor([-5.0, 3.0]).expand(int(core.sum()), 2), atol=1e-4,
                               rtol=0)
    # the ramps read back where each pixel sampled: bilinear sampling at exact pixel-centre positions
    xs, ys = centres()
    interior = distance_to_square(8, SIZE - 8) == 0
    torch.testing.assert_close((res.image[0, ..., 0] * SIZE)[interior], (xs + res.flow[0, ..., 0])[interior],
                               atol=2e-4, rtol=0)
    torch.testing.assert_close((res.image[0, ..., 1] * SIZE)[interior], (ys + res.flow[0, ..., 1])[interior],
                               atol=2e-4, rtol=0)


def test_far_pixels_stay_put_and_the_field_has_no_seam():
    old, faces = square_mesh()
    image = scene()
    new = translated(old, 5, -3)
    res = mesh_warp(image, old, new, faces)
    flow = res.flow[0]
    falloff = DEFAULT_FALLOFF_FRACTION * SIZE
    far = distance_to_square(LO, HI, (5, -3)) > 2 * falloff
    assert far.sum() > 500
    assert flow[far].norm(dim=-1).max() < 0.05
    assert torch.equal(res.image[0][far], image[0][far])
    assert res.mask[0][far].max() < 0.01
    # continuous: the fade is flat at the mesh border, so neighbours differ by at most its slope
    # (1.5 x |(5, -3)| / falloff ~ 0.46 px), far from the 5.8 px a seam would show
    assert neighbour_jump(flow) < 0.5
    # what the old mesh covered and the new one does not follows the face (the strip left of it)
    left_strip = flow[50:80, 41:44]
    assert (left_strip.norm(dim=-1) > 5.0).all()
    assert res.mask[0, 50:80, 41:44].min() > 0.99
    # near the mesh, the background follows the face
    assert (flow[64, 40] - torch.tensor([-5.0, 3.0])).norm() < 1.0


def test_explicit_falloff_bounds_the_motion():
    old, faces = square_mesh()
    res = mesh_warp(scene(), old, translated(old, 2, 1), faces, falloff_px=8.0)
    dist = distance_to_square(LO, HI, (2, 1))
    assert torch.equal(res.flow[0][dist > 8.5], torch.zeros(int((dist > 8.5).sum()), 2))
    assert res.flow[0][(dist > 0) & (dist < 2)].norm(dim=-1).min() > 1.9


def test_scaling_scales_the_content():
    old, faces = square_mesh()
    q = (50.3, 75.6)
    image = scene(dot=q)
    res = mesh_warp(image, old, scaled(old, 1.1), faces)
    _, _, r0 = blob_stats(image[0, ..., 2])
    x1, y1, r1 = blob_stats(res.image[0, ..., 2])
    assert abs(x1 - (CENTRE + 1.1 * (q[0] - CENTRE))) < 0.5
    assert abs(y1 - (CENTRE + 1.1 * (q[1] - CENTRE))) < 0.5
    assert abs(r1 / r0 - 1.1) < 0.02
    xs, ys = centres()
    inside = distance_to_square(CENTRE + 1.1 * (LO - CENTRE) + 1, CENTRE + 1.1 * (HI - CENTRE) - 1) == 0
    expected = torch.stack([(CENTRE + (xs - CENTRE) / 1.1) - xs, (CENTRE + (ys - CENTRE) / 1.1) - ys], -1)
    # (the rasterizer snaps vertices to 1/256 px, so barycentrics carry up to ~1/500 px of error)
    torch.testing.assert_close(res.flow[0][inside], expected[inside], atol=4e-3, rtol=0)
    assert neighbour_jump(res.flow[0]) < 0.3  # inside the slope is 0.09 px / px; no seam at the border


def test_zero_displacement_is_bit_identical():
    old, faces = square_mesh(batch=2)
    image = scene().repeat(2, 1, 1, 1)
    res = mesh_warp(image, old, old.clone(), faces)
    assert torch.equal(res.image, image)
    assert torch.equal(res.flow, torch.zeros_like(res.flow)) and res.mask.max() == 0
    # one item edited, one not: the unedited one still comes back exactly
    new = old.clone()
    new[1] = translated(old[1:], 3, 0)[0]
    res = mesh_warp(image, old, new, faces)
    assert torch.equal(res.image[0], image[0]) and not torch.equal(res.image[1], image[1])
    # grid_sample is only exact at identity for power-of-two sides; other crops must still come back
    odd = torch.rand(1, 100, 120, 3)
    assert torch.equal(mesh_warp(odd, old[:1], old[:1].clone(), faces).image, odd)
    moved = mesh_warp(odd, old[:1], translated(old[:1], 2, 1), faces, falloff_px=8.0)
    still = (moved.flow[0] == 0).all(-1)
    assert still.sum() > 3000 and torch.equal(moved.image[0][still], odd[0][still])
    # a depth-only change moves nothing either
    deeper = old.clone()
    deeper[..., 2] += 5
    assert torch.equal(mesh_warp(image, old, deeper, faces).image, image)


def test_batch_equals_singles():
    old, faces = square_mesh(batch=2)
    image = torch.cat([scene(), scene(dot=(70.2, 50.7))])
    new = torch.cat([translated(old[:1], 5, -3), scaled(old[1:], 0.9)])
    both = mesh_warp(image, old, new, faces)
    for i in range(2):
        one = mesh_warp(image[i:i + 1], old[i:i + 1], new[i:i + 1], faces)
        torch.testing.assert_close(both.flow[i], one.flow[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(both.image[i], one.image[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(both.mask[i], one.mask[0], atol=1e-5, rtol=0)


def test_push_pull_keeps_known_values_and_fills_constants():
    g = torch.Generator().manual_seed(1)
    values = torch.randn(1, 2, 37, 50, generator=g)
    weights = (torch.rand(1, 1, 37, 50, generator=g) > 0.9).float()
    filled = push_pull(values, weights)
    assert torch.equal(filled[weights.expand_as(values) == 1], values[weights.expand_as(values) == 1])
    constant = push_pull(torch.full((1, 1, 37, 50), 2.5), weights)
    torch.testing.assert_close(constant, torch.full_like(constant, 2.5))
    assert torch.equal(push_pull(values, torch.zeros_like(weights)), torch.zeros_like(values))


# preview_edit -------------------------------------------------------------------------------------

def test_preview_edit_relights_in_the_new_frame():
    old, faces = square_mesh()
    new = translated(old, 5, -3)
    image = scene() * 0.4 + 0.1
    old_cover = distance_to_square(LO, HI)[None] == 0
    new_cover = distance_to_square(LO, HI, (5, -3))[None] == 0
    shading_old = old_cover[..., None] * torch.full((1, SIZE, SIZE, 3), 0.5)
    shading_new = new_cover[..., None] * torch.full((1, SIZE, SIZE, 3), 1.0)
    out, mask = preview_edit(image, screen_old=old, screen_new=new, faces=faces, shading_old=shading_old,
                             shading_new=shading_new, feather_px=3.0)
    warped = mesh_warp(image, old, new, faces).image
    core = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    core[int(LO - 3) + 7:int(HI - 3) - 7, int(LO + 5) + 7:int(HI + 5) - 7] = True
    torch.testing.assert_close(out[0][core], (2 * warped[0][core]).clamp(max=1.0))
    far = distance_to_square(LO, HI, (5, -3)) > 2 * DEFAULT_FALLOFF_FRACTION * SIZE
    assert torch.equal(out[0][far], image[0][far]) and mask[0][far].max() < 0.01
    assert mask[0][core].min() == 1.0
    # no geometry edit, same light: the crop comes back exactly
    same, _ = preview_edit(image, screen_old=old, screen_new=old.clone(), faces=faces, shading_old=shading_old,
                           shading_new=shading_old.clone())
    assert torch.equal(same, image)


def test_preview_edit_old_shading_edge_does_not_leak():
    """A sub-pixel move makes the new mesh's edge sample the old render half off its coverage: the
    carried old shading is renormalised there, so the gain stays at new / old = 2, never more."""
    old, faces = square_mesh()
    new = translated(old, 5.5, -3.25)
    image = scene() * 0.4 + 0.1
    shading_old = rasterize(old, faces, SIZE, SIZE).mask[..., None] * torch.full((1, SIZE, SIZE, 3), 0.5)
    shading_new = rasterize(new, faces, SIZE, SIZE).mask[..., None] * torch.full((1, SIZE, SIZE, 3), 1.0)
    out, _ = preview_edit(image, screen_old=old, screen_new=new, faces=faces, shading_old=shading_old,
                          shading_new=shading_new, feather_px=0.0)
    gain = out / mesh_warp(image, old, new, faces).image
    assert gain.max() <= 2.0 + 1e-5 and gain.min() >= 1.0 - 1e-6
    assert (gain > 1.9).sum() > 2000


def test_preview_edit_without_shading_is_the_warp():
    old, faces = square_mesh()
    new = scaled(old, 1.05)
    image = scene()
    out, mask = preview_edit(image, screen_old=old, screen_new=new, faces=faces)
    res = mesh_warp(image, old, new, faces)
    assert torch.equal(out, res.image) and torch.equal(mask, res.mask)


def test_timing_face_sized_mesh():
    """Timings only (no assertion): a 484-vertex / 882-face mesh, about mesh468's size."""
    v, faces = grid_mesh(22, 22)
    for size in (256, 512):
        old = torch.cat([size * (0.2 + 0.6 * v[:, :2]), v[:, 2:]], -1)[None]
        new = old.clone()
        bump = torch.exp(-((v[:, 0] - 0.5) ** 2 + (v[:, 1] - 0.7) ** 2) / 0.02)
        new[0, :, 1] -= 0.02 * size * bump  # a local lift, like a smile
        image = torch.rand(1, size, size, 3)
        shading = torch.rand(1, size, size, 3)
        mesh_warp(image, old, new, faces)  # warm-up
        t0 = time.perf_counter()
        mesh_warp(image, old, new, faces)
        t1 = time.perf_counter()
        preview_edit(image, screen_old=old, screen_new=new, faces=faces, shading_old=shading, shading_new=shading * 1.2)
        t2 = time.perf_counter()
        print(f"\n{size}x{size}: mesh_warp {1e3 * (t1 - t0):.1f} ms, preview_edit (warp + relight) "
              f"{1e3 * (t2 - t1):.1f} ms on CPU ({torch.get_num_threads()} threads)")
