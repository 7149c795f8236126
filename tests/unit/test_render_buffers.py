"""Physical buffers: DiffusionRig's definitions, channel orders, batching, dtypes and previews."""
import math

import pytest
import torch

from models.render.buffers import BufferSettings, render_buffers, to_physic_cond
from models.render.interpolate import face_vertex_normals, interpolate
from models.render.preview import buffers_to_images, points_overlay, wireframe_overlay
from models.render.primitives import grid_mesh, icosphere
from models.render.raster import RasterSettings, rasterize
from models.render.sh import sh_from_direction, sh_shading

SIZE = 64


def scene(batch=1, dtype=torch.float32, seed=0):
    """Spheres of different sizes and places, random vertex albedo, random-ish lights."""
    g = torch.Generator().manual_seed(seed)
    v, f = icosphere(3, dtype=torch.float64)
    radius = 14 + 10 * torch.rand(batch, 1, generator=g, dtype=torch.float64)
    centre = 24 + 16 * torch.rand(batch, 1, 2, generator=g, dtype=torch.float64)
    world = v[None] * radius[..., None]  # world frame: y up, z toward the camera
    screen = torch.cat([centre + world[..., :2] * torch.tensor([1.0, -1.0], dtype=torch.float64),
                        -world[..., 2:]], -1)
    normals = face_vertex_normals(world, f)
    albedo = torch.rand(batch, v.shape[0], 3, generator=g, dtype=torch.float64)
    light = sh_from_direction(torch.randn(batch, 3, generator=g, dtype=torch.float64), 1.0, ambient=0.3)
    light = light + 0.1 * torch.randn(batch, 9, 3, generator=g, dtype=torch.float64)
    return (screen.to(dtype), f, normals.to(dtype), albedo.to(dtype), light.to(dtype))


def test_buffers_follow_their_definitions():
    vs, f, normals, albedo, light = scene(2)
    buf = render_buffers(vs, f, normals, light, SIZE, SIZE, albedo_vertex=albedo)
    m = buf.mask
    assert buf.rendered.shape == (2, SIZE, SIZE, 3) and buf.depth.shape == m.shape == (2, SIZE, SIZE)
    assert m.sum() > 500 and (m[m > 0] == 1).all()
    out = m == 0
    for t in (buf.rendered, buf.normal, buf.albedo, buf.shading):
        assert (t[out] == 0).all()
    assert (buf.depth[out] == 0).all()
    assert torch.allclose(buf.rendered, buf.albedo * buf.shading, atol=1e-6)
    assert torch.allclose(buf.shading, sh_shading(buf.normal, light) * m[..., None], atol=1e-6)
    assert torch.allclose(buf.normal[m > 0].norm(dim=-1), torch.ones(()), atol=1e-5)
    # world normals on screen: the visible hemisphere faces the camera (+z), screen-up is +y
    assert (buf.normal[..., 2][m > 0] > -1e-3).all()
    frags = rasterize(vs, f, SIZE, SIZE)
    assert torch.allclose(buf.albedo, interpolate(frags, albedo), atol=1e-6)
    assert torch.equal(m > 0, frags.mask)
    # unclamped, like DiffusionRig: strong light pushes rendered above 1
    hot = render_buffers(vs, f, normals, light * 10, SIZE, SIZE, albedo_vertex=albedo)
    assert hot.rendered.max() > 1


def test_deca_mode_keeps_interpolated_normals_unnormalised():
    vs, f, normals, albedo, light = scene(1)
    raw = render_buffers(vs, f, normals, light, SIZE, SIZE, albedo_vertex=albedo,
                         settings=BufferSettings(renormalize_normals=False))
    frags = rasterize(vs, f, SIZE, SIZE)
    assert torch.allclose(raw.normal, interpolate(frags, normals), atol=1e-7)
    lengths = raw.normal[raw.mask > 0].norm(dim=-1)
    assert (lengths <= 1 + 1e-6).all() and lengths.min() < 0.999


def test_physic_cond_channel_orders():
    vs, f, normals, albedo, light = scene(2)
    buf = render_buffers(vs, f, normals, light, SIZE, SIZE, albedo_vertex=albedo)
    chw = lambda t: t.permute(0, 3, 1, 2)  # noqa: E731
    rig = to_physic_cond(buf)
    assert rig.shape == (2, 9, SIZE, SIZE)
    assert torch.equal(rig, torch.cat([chw(buf.rendered), chw(buf.normal), chw(buf.albedo)], 1))
    cap = to_physic_cond(buf, "caphuman")
    assert torch.equal(cap, torch.cat([chw(buf.normal), chw(buf.albedo), chw(buf.rendered)], 1))
    custom = to_physic_cond(buf, ("albedo", "depth", "mask"))
    assert custom.shape == (2, 5, SIZE, SIZE) and torch.equal(custom[:, 3], buf.depth)
    for bad in ("rig", ("rendered", "nope"), ()):
        with pytest.raises(ValueError):
            to_physic_cond(buf, bad)


def test_batch_of_three_equals_three_singles():
    vs, f, normals, albedo, light = scene(3, seed=7)
    whole = render_buffers(vs, f, normals, light, SIZE, SIZE, albedo_vertex=albedo)
    for i in range(3):
        one = render_buffers(vs[i:i + 1], f, normals[i:i + 1], light[i:i + 1], SIZE, SIZE,
                             albedo_vertex=albedo[i:i + 1])
        for name in ("rendered", "normal", "albedo", "shading", "depth", "mask"):
            assert torch.equal(getattr(one, name)[0], getattr(whole, name)[i]), name


def test_float64_works_and_agrees_with_float32():
    s64 = scene(2, dtype=torch.float64)
    b64 = render_buffers(*s64[:3], s64[4], SIZE, SIZE, albedo_vertex=s64[3])
    s32 = scene(2, dtype=torch.float32)
    b32 = render_buffers(*s32[:3], s32[4], SIZE, SIZE, albedo_vertex=s32[3])
    assert b64.rendered.dtype == torch.float64 and b64.mask.dtype == torch.float64
    assert (b64.mask != b32.mask.double()).float().mean() < 1e-3  # 1/256-px snapping may differ
    both = (b64.mask > 0) & (b32.mask > 0)
    assert torch.allclose(b64.rendered[both].float(), b32.rendered[both], atol=1e-4)


def test_texture_albedo_through_uv_and_uv_faces():
    # a flat grid facing the camera; u follows x, v follows screen-up; texture red = u, green = 1 - v_img
    v, f = grid_mesh(9, 9, dtype=torch.float64)
    vs = torch.cat([v[:, :2] * 40 + 12, torch.zeros(v.shape[0], 1, dtype=torch.float64)], 1)[None]
    normals = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand(1, v.shape[0], 3)
    uv = torch.stack([v[:, 0], 1 - v[:, 1]], -1)  # v up: the top row of the grid has v = 1
    th, tw = 32, 32
    tex = torch.zeros(1, th, tw, 3, dtype=torch.float64)
    tex[..., 0] = ((torch.arange(tw, dtype=torch.float64) + 0.5) / tw)[None, None, :]
    tex[..., 1] = ((torch.arange(th, dtype=torch.float64) + 0.5) / th)[None, :, None]
    light = torch.zeros(1, 9, 3, dtype=torch.float64)
    light[0, 0] = 1 / 0.28209479177387814
    buf = render_buffers(vs, f, normals, light, SIZE, SIZE, uv=uv, texture=tex)
    frags = rasterize(vs, f, SIZE, SIZE)
    uv_img = interpolate(frags, uv)[0]
    m = frags.mask[0]
    inner = m & (uv_img[..., 0] > 0.05) & (uv_img[..., 0] < 0.95) & (uv_img[..., 1] > 0.05) & (uv_img[..., 1] < 0.95)
    assert inner.sum() > 600
    assert torch.allclose(buf.albedo[0, ..., 0][inner], uv_img[..., 0][inner], atol=1e-6)  # linear texture
    assert torch.allclose(buf.albedo[0, ..., 1][inner], 1 - uv_img[..., 1][inner], atol=1e-6)  # image rows down
    assert torch.allclose(buf.rendered, buf.albedo, atol=1e-6)  # shading == 1 everywhere inside
    # UVs on their own indexing (as FLAME's seams need): same result through uv_faces
    perm = torch.randperm(v.shape[0], generator=torch.Generator().manual_seed(0))
    uv_perm = torch.empty_like(uv)
    uv_perm[perm] = uv
    again = render_buffers(vs, f, normals, light, SIZE, SIZE, uv=uv_perm, uv_faces=perm[f], texture=tex[0])
    assert torch.allclose(again.albedo, buf.albedo, atol=1e-12)


def test_argument_checks():
    vs, f, normals, albedo, light = scene(1)
    with pytest.raises(ValueError):
        render_buffers(vs, f, normals, light, SIZE, SIZE)
    with pytest.raises(ValueError):
        render_buffers(vs, f, normals, light, SIZE, SIZE, albedo_vertex=albedo, texture=torch.zeros(1, 4, 4, 3))
    with pytest.raises(ValueError):
        render_buffers(vs, f, normals, light, SIZE, SIZE, texture=torch.zeros(1, 4, 4, 3))


def test_gradients_reach_albedo_and_light():
    vs, f, normals, albedo, light = scene(1)
    albedo.requires_grad_(True)
    light.requires_grad_(True)
    buf = render_buffers(vs, f, normals, light, SIZE, SIZE, albedo_vertex=albedo,
                         settings=BufferSettings(raster=RasterSettings(backface="cull")))
    buf.rendered.sum().backward()
    assert albedo.grad.abs().sum() > 0 and light.grad.abs().sum() > 0


def test_previews():
    vs, f, normals, albedo, light = scene(2)
    buf = render_buffers(vs, f, normals, light, SIZE, SIZE, albedo_vertex=albedo)
    images = buffers_to_images(buf)
    assert set(images) == {"rendered", "normal", "albedo", "shading", "depth", "mask"}
    for name, img in images.items():
        assert img.shape == (2, SIZE, SIZE, 3) and img.min() >= 0 and img.max() <= 1, name
        assert (img[buf.mask == 0] == 0).all(), name
    d = images["depth"][..., 0]
    for i in range(2):
        inside = buf.mask[i] > 0
        nearest = torch.where(inside, buf.depth[i], torch.inf).argmin()
        assert d[i].flatten()[nearest] == 1 and d[i][inside].min() < 0.05  # near = bright

    canvas = torch.zeros(1, 16, 16, 3)
    line = torch.tensor([[[2.5, 4.5, 0.0], [12.5, 4.5, 0.0], [2.5, 9.5, 0.0]]])
    drawn = wireframe_overlay(canvas, line, torch.tensor([[0, 1, 2]]), colour=(0.0, 1.0, 0.0))
    assert (drawn[0, 4, 2:13, 1] == 1).all() and (drawn[0, 4, 2:13, 0] == 0).all()  # the top edge
    assert (drawn[0, 4:10, 2, 1] == 1).all()  # the left edge
    hit = drawn[0, ..., 1] > 0
    assert hit.sum() < 32 and not hit[12:].any() and not hit[:, 14:].any()
    # alpha blends; culling hides edges of a back-facing triangle
    half = wireframe_overlay(torch.ones(1, 16, 16, 3), line, torch.tensor([[0, 1, 2]]), (0.0, 0.0, 0.0), alpha=0.5)
    assert half[0, 4, 5].tolist() == [0.5, 0.5, 0.5]
    assert wireframe_overlay(canvas, line, torch.tensor([[0, 1, 2]]), backface="cull").sum() == 0
    assert wireframe_overlay(canvas, line, torch.tensor([[0, 2, 1]]), backface="cull").sum() > 0
    # lines that leave the image are clipped, not wrapped
    far = torch.tensor([[[-100.0, 8.5, 0.0], [1000.0, 8.5, 0.0], [-100.0, 9.0, 0.0]]])
    clipped = wireframe_overlay(canvas, far, torch.tensor([[0, 1, 2]]))
    assert (clipped[0, 8, :, 1] == 1).all()

    dots = points_overlay(canvas, torch.tensor([[[3.2, 7.7], [float("nan"), 1.0], [40.0, 2.0]]]), radius=0.0)
    assert dots[0, ..., 0].sum() == 1 and dots[0, 7, 3, 0] == 1
    disc = points_overlay(canvas, torch.tensor([[[8.0, 8.0]]]), radius=2.0)
    assert disc[0, ..., 0].sum() == 12  # pixel centres within 2 px of a pixel corner
    assert math.isclose(disc[0, 8, 8, 0].item(), 1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    vs, f, normals, albedo, light = scene(2)
    cpu = render_buffers(vs, f, normals, light, SIZE, SIZE, albedo_vertex=albedo)
    gpu = render_buffers(vs.cuda(), f.cuda(), normals.cuda(), light.cuda(), SIZE, SIZE, albedo_vertex=albedo.cuda())
    for name in ("rendered", "normal", "albedo", "shading", "depth", "mask"):
        assert torch.allclose(getattr(gpu, name).cpu(), getattr(cpu, name), atol=1e-5), name
