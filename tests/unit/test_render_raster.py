"""The rasterizer against geometry whose answer is known: an analytic sphere, exact pixel sets,
watertight shared edges and vertices, the z-buffer and the back-face modes."""
import math

import pytest
import torch

from models.render.interpolate import face_vertex_normals, interpolate
from models.render.primitives import grid_mesh, icosphere
from models.render.raster import RasterSettings, rasterize

SIZE = 128


def sphere_screen(radius=40.0, centre=(64.0, 64.0), depth=100.0, subdivisions=4, dtype=torch.float32):
    """An icosphere placed in screen space with the identity orientation (outward stays outward)."""
    v, f = icosphere(subdivisions, dtype=torch.float64)
    vs = torch.stack([centre[0] + radius * v[:, 0], centre[1] + radius * v[:, 1], depth + radius * v[:, 2]], -1)
    return vs[None].to(dtype), f


def pixel_centres(h=SIZE, w=SIZE):
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5,
                            indexing="ij")
    return xs, ys


def test_sphere_coverage_normals_and_depth():
    r, cx, cy, cz = 40.0, 64.0, 61.0, 100.0
    vs, f = sphere_screen(r, (cx, cy), cz)
    frags = rasterize(vs, f, SIZE, SIZE)
    area = frags.mask.sum().item()
    assert abs(area - math.pi * r * r) / (math.pi * r * r) < 0.01

    xs, ys = pixel_centres()
    rho2 = ((xs - cx) ** 2 + (ys - cy) ** 2) / r**2
    # coverage is the disc, up to the polygonal silhouette: wrong pixels only hug the rim
    wrong = frags.mask[0] != (rho2 < 1)
    assert ((rho2[wrong] - 1).abs() < 0.05).all()

    normals = face_vertex_normals(vs, f)
    n = torch.nn.functional.normalize(interpolate(frags, normals)[0].double(), dim=-1)
    analytic = torch.stack([(xs - cx) / r, (ys - cy) / r, -torch.sqrt((1 - rho2).clamp(min=0))], -1)
    inner = rho2 < 0.9**2
    assert frags.mask[0][inner].all()
    angle = torch.rad2deg(torch.acos((n * analytic).sum(-1).clamp(-1, 1)))[inner]
    assert angle.mean() < 0.3 and angle.max() < 1.0, (angle.mean(), angle.max())

    # the near hemisphere is what is seen: depth = cz - sqrt(r^2 - rho^2), never the far side
    near = cz - r * torch.sqrt((1 - rho2).clamp(min=0))
    err = (frags.depth[0].double() - near)[inner]
    assert err.abs().max() < 0.25  # chord vs arc of subdivision-4 triangles at r = 40 px
    assert (frags.depth[0][~frags.mask[0]] == 0).all()
    assert (frags.bary[0][~frags.mask[0]] == 0).all() and (frags.face_index[0][~frags.mask[0]] == -1).all()
    face_n = normals[0][f[frags.face_index[0][inner]]].mean(1)
    assert (face_n[:, 2] < 0).all()  # every visible face looks at the viewer


def test_sphere_barycentrics_reproduce_pixel_centres():
    vs, f = sphere_screen()
    frags = rasterize(vs, f, SIZE, SIZE)
    bary = frags.bary[0][frags.mask[0]]
    assert (bary >= 0).all() and torch.allclose(bary.sum(-1), torch.ones(()), atol=1e-6)
    pos = interpolate(frags, vs)[0]
    xs, ys = pixel_centres()
    m = frags.mask[0]
    assert torch.allclose(pos[..., 0][m].double(), xs[m], atol=1e-2)  # 1/256-px vertex snapping
    assert torch.allclose(pos[..., 1][m].double(), ys[m], atol=1e-2)
    assert torch.allclose(pos[..., 2][m], frags.depth[0][m], atol=1e-3)


def test_cull_keeps_the_visible_surface_and_drops_the_far_one():
    r, cz = 40.0, 100.0
    vs, f = sphere_screen(r, depth=cz)
    keep = rasterize(vs, f, SIZE, SIZE)
    cull = rasterize(vs, f, SIZE, SIZE, RasterSettings(backface="cull"))
    assert torch.equal(keep.face_index, cull.face_index)
    # turned inside out, culling hides the near wall and shows the far inner one
    inside_out = f[:, [0, 2, 1]]
    assert torch.equal(rasterize(vs, inside_out, SIZE, SIZE).face_index, keep.face_index)
    far = rasterize(vs, inside_out, SIZE, SIZE, RasterSettings(backface="cull"))
    assert torch.equal(far.mask, keep.mask)
    assert abs(far.depth[0, 64, 64].item() - (cz + r)) < 0.25
    assert abs(keep.depth[0, 64, 64].item() - (cz - r)) < 0.25


def test_nearer_triangle_wins_regardless_of_order():
    far = [[10.0, 10.0, 5.0], [50.0, 12.0, 5.0], [12.0, 50.0, 5.0]]
    near = [[20.0, 20.0, 1.0], [60.0, 25.0, 3.0], [25.0, 60.0, 2.0]]
    for order in ((far, near), (near, far)):
        vs = torch.tensor([order[0] + order[1]])
        f = torch.tensor([[0, 1, 2], [3, 4, 5]])
        frags = rasterize(vs, f, 64, 64)
        alone = [rasterize(vs, f[i:i + 1], 64, 64).mask[0] for i in range(2)]
        near_id = 0 if order[0] is near else 1
        overlap = alone[0] & alone[1]
        assert overlap.sum() > 50
        assert (frags.face_index[0][overlap] == near_id).all()
        assert (frags.face_index[0][alone[near_id]] == near_id).all()
        assert torch.equal(frags.mask[0], alone[0] | alone[1])
        # depth in the overlap is the near plane, evaluated exactly
        pts = interpolate(frags, vs)[0][overlap]
        assert torch.allclose(frags.depth[0][overlap], pts[:, 2], atol=1e-5)
        assert (frags.depth[0][overlap] <= 3.0).all()


def test_equal_depth_tie_goes_to_lower_face_index():
    tri = [[4.0, 4.0, 2.0], [30.0, 4.0, 2.0], [4.0, 30.0, 2.0]]
    vs = torch.tensor([tri + tri])
    frags = rasterize(vs, torch.tensor([[3, 4, 5], [0, 1, 2]]), 32, 32)
    assert frags.mask.any() and (frags.face_index[frags.mask] == 0).all()


def test_triangle_covers_exactly_the_expected_pixel_centres():
    # no centre on an edge: compare with a float64 brute-force point-in-triangle test
    tri = torch.tensor([[1.2, 1.3], [17.7, 2.1], [3.4, 14.9]], dtype=torch.float64)
    xs, ys = pixel_centres(20, 20)

    def edge(a, b):
        return (b[0] - a[0]) * (ys - a[1]) - (b[1] - a[1]) * (xs - a[0])

    inside = (edge(tri[0], tri[1]) > 0) & (edge(tri[1], tri[2]) > 0) & (edge(tri[2], tri[0]) > 0)
    vs = torch.cat([tri, torch.zeros(3, 1, dtype=torch.float64)], 1)[None]
    frags = rasterize(vs, torch.tensor([[0, 1, 2]]), 20, 20)
    assert inside.sum() > 50 and torch.equal(frags.mask[0], inside)


def test_top_left_rule_on_pixel_centres():
    # vertices on pixel centres: top edge y = 2.5 and left edge x = 2.5 are owned, the
    # hypotenuse x + y = 11 is not: pixels i, j >= 2 with i + j <= 9
    vs = torch.tensor([[[2.5, 2.5, 0.0], [8.5, 2.5, 0.0], [2.5, 8.5, 0.0]]])
    frags = rasterize(vs, torch.tensor([[0, 2, 1]]), 12, 12)
    jj, ii = torch.meshgrid(torch.arange(12), torch.arange(12), indexing="ij")
    expected = (ii >= 2) & (jj >= 2) & (ii + jj <= 9)
    assert expected.sum() == 21
    assert torch.equal(frags.mask[0], expected)
    # both windings cover the same pixels when back faces are kept
    assert torch.equal(rasterize(vs, torch.tensor([[0, 1, 2]]), 12, 12).mask[0], expected)


def coverage_count(vs, f, h, w):
    return sum(rasterize(vs, f[i:i + 1], h, w).mask[0].long() for i in range(f.shape[0]))


@pytest.mark.parametrize("snap", ["centres", "corners", "random"])
def test_shared_edges_and_vertices_are_watertight(snap):
    g = torch.Generator().manual_seed(0)
    rows = cols = 7
    v, f = grid_mesh(rows, cols, dtype=torch.float64)
    xy = v[:, :2] * 48 + 8  # grid over [8, 56]^2, exactly on pixel corners
    interior = (v[:, 0] > 0) & (v[:, 0] < 1) & (v[:, 1] > 0) & (v[:, 1] < 1)
    jitter = (torch.rand(v.shape[0], 2, generator=g, dtype=torch.float64) - 0.5) * 2.4
    moved = xy + jitter
    if snap == "centres":
        moved = torch.floor(moved) + 0.5  # many pixel centres exactly on vertices and edges
    elif snap == "corners":
        moved = torch.round(moved)
    xy = torch.where(interior[:, None], moved, xy)
    vs = torch.cat([xy, torch.rand(v.shape[0], 1, generator=g, dtype=torch.float64)], 1)[None]
    t = vs[0, f, :2]
    e1, e2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    assert ((e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) < 0).all()  # still a consistent, unfolded mesh
    count = coverage_count(vs, f, 64, 64)
    frags = rasterize(vs, f, 64, 64)
    assert count.max() == 1  # no pixel claimed twice
    assert torch.equal(frags.mask[0], count == 1)
    # no holes: every pixel centre inside the outer square [8, 56) is covered exactly once
    assert frags.mask[0, 8:56, 8:56].all() and frags.mask.sum() == 48 * 48


def test_fan_around_a_vertex_on_a_pixel_centre():
    # eight triangles meeting at a pixel centre, edges along axes and diagonals through centres
    c = torch.tensor([10.5, 10.5])
    ring = [c + 6 * torch.tensor([math.cos(a), math.sin(a)]) for a in torch.arange(8) * math.pi / 4]
    ring = [torch.round(p - 0.5) + 0.5 for p in ring]
    xy = torch.stack([c] + ring)
    vs = torch.cat([xy, torch.zeros(9, 1)], 1)[None]
    f = torch.tensor([[0, 1 + k, 1 + (k + 1) % 8] for k in range(8)])
    count = coverage_count(vs, f, 21, 21)
    assert count.max() == 1 and count[10, 10] == 1
    assert torch.equal(rasterize(vs, f, 21, 21).mask[0], count == 1)


def test_batch_chunking_clipping_and_bad_vertices():
    vs, f = sphere_screen(radius=50.0, centre=(20.0, 100.0))  # partly off-screen
    vs2, _ = sphere_screen(radius=30.0, centre=(70.0, 60.0))
    batch = torch.cat([vs, vs2])
    whole = rasterize(batch, f, SIZE, SIZE)
    for i in range(2):
        single = rasterize(batch[i:i + 1], f, SIZE, SIZE)
        assert torch.equal(single.face_index[0], whole.face_index[i])
        assert torch.equal(single.depth[0], whole.depth[i])
    tiny = rasterize(batch, f, SIZE, SIZE, RasterSettings(max_candidates=997))  # many passes
    assert torch.equal(tiny.face_index, whole.face_index) and torch.equal(tiny.depth, whole.depth)
    assert torch.equal(tiny.bary, whole.bary)

    broken = batch.clone()
    broken[0, 0] = float("nan")
    broken[1, 1] = float("inf")
    frags = rasterize(broken, f, SIZE, SIZE)
    touches0 = (f == 0).any(1)
    assert not touches0[frags.face_index[0][frags.mask[0]]].any()
    assert torch.isfinite(frags.depth).all() and torch.isfinite(frags.bary).all()


def test_empty_inputs_and_validation():
    vs, f = sphere_screen()
    assert not rasterize(vs, f[:0], 8, 8).mask.any()
    assert rasterize(vs[:0], f, 8, 8).mask.shape == (0, 8, 8)
    far = vs + 1000
    assert not rasterize(far, f, 8, 8).mask.any()
    with pytest.raises(ValueError):
        rasterize(vs[0], f, 8, 8)
    with pytest.raises(ValueError):
        rasterize(vs, f + 10_000, 8, 8)
    with pytest.raises(ValueError):
        RasterSettings(backface="front")


def test_float64_matches_float32():
    vs, f = sphere_screen(dtype=torch.float64)
    d64 = rasterize(vs, f, SIZE, SIZE)
    d32 = rasterize(vs.float(), f, SIZE, SIZE)
    assert d64.depth.dtype == torch.float64 and d64.bary.dtype == torch.float64
    assert (d64.face_index != d32.face_index).float().mean() < 1e-3
    same = d64.face_index == d32.face_index
    assert torch.allclose(d64.depth[same].float(), d32.depth[same], atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    vs, f = sphere_screen()
    cpu = rasterize(vs, f, SIZE, SIZE)
    gpu = rasterize(vs.cuda(), f.cuda(), SIZE, SIZE)
    assert torch.equal(gpu.face_index.cpu(), cpu.face_index)
    assert torch.allclose(gpu.bary.cpu(), cpu.bary) and torch.allclose(gpu.depth.cpu(), cpu.depth)
