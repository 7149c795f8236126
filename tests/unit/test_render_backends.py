"""The optional nvdiffrast / pytorch3d paths of the rasterizer, against stand-in modules.

Neither library installs on this machine, so each stand-in below implements its library's
documented contract by brute force (its own clip/NDC space, row order, barycentric order, triangle
numbering, packed faces) and nothing of the pack's rasterizer. The pack's adapter must then turn
their outputs into the same Fragments as the built-in rasterizer: a wrong axis flip, vertex order or
index offset shows up as thousands of differing pixels.
"""
from __future__ import annotations

import math
import sys
import types

import pytest
import torch

from models.render import RasterSettings, rasterize
from models.render import backends
from models.render.primitives import icosphere


def _brute_force(xy: torch.Tensor, z: torch.Tensor, tri: torch.Tensor, px: torch.Tensor, py: torch.Tensor):
    """Nearest (smallest z) triangle containing each sample point: (index or -1, w0, w1, w2, z)."""
    a, b, c = (xy[tri[:, k]] for k in range(3))  # (T, 2)
    p = torch.stack([px.flatten(), py.flatten()], -1).double()[:, None]  # (P, 1, 2)

    def cross(u, v, w):
        return (v[..., 0] - u[..., 0]) * (w[..., 1] - u[..., 1]) - (v[..., 1] - u[..., 1]) * (w[..., 0] - u[..., 0])

    area = cross(a, b, c)
    w0, w1, w2 = cross(b, c, p) / area, cross(c, a, p) / area, cross(a, b, p) / area
    inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & (area != 0)
    depth = w0 * z[tri[:, 0]] + w1 * z[tri[:, 1]] + w2 * z[tri[:, 2]]
    depth = torch.where(inside, depth, torch.full_like(depth, math.inf))
    best = depth.argmin(1)
    hit = torch.isfinite(depth.gather(1, best[:, None])[:, 0])
    pick = lambda t: t.gather(1, best[:, None])[:, 0]  # noqa: E731
    return torch.where(hit, best, -1), pick(w0), pick(w1), pick(w2), pick(depth)


def fake_nvdiffrast() -> types.ModuleType:
    module = types.ModuleType("nvdiffrast.torch")

    class RasterizeCudaContext:
        def __init__(self, device=None):
            self.device = device

    def rasterize(glctx, pos, tri, resolution, ranges=None, grad_db=True):
        assert isinstance(glctx, RasterizeCudaContext) and tri.dtype == torch.int32 and pos.shape[-1] == 4
        h, w = resolution
        cols = torch.arange(w, dtype=torch.float64)
        rows = torch.arange(h, dtype=torch.float64)
        xc = (2 * cols + 1) / w - 1  # clip x of column centres, x right
        yc = (2 * rows + 1) / h - 1  # row 0 is the bottom of clip space (y = -1)
        py, px = torch.meshgrid(yc, xc, indexing="ij")
        out = torch.zeros(pos.shape[0], h, w, 4)
        for i in range(pos.shape[0]):
            ndc = pos[i, :, :3].double() / pos[i, :, 3:].double()
            face, w0, w1, _, depth = _brute_force(ndc[:, :2], ndc[:, 2], tri.long(), px, py)
            hit = face >= 0
            out[i, ..., 0] = torch.where(hit, w0, 0).view(h, w).float()
            out[i, ..., 1] = torch.where(hit, w1, 0).view(h, w).float()
            out[i, ..., 2] = torch.where(hit, depth, 0).view(h, w).float()
            out[i, ..., 3] = torch.where(hit, face + 1, 0).view(h, w).float()
        return out, torch.zeros_like(out)

    module.RasterizeCudaContext = RasterizeCudaContext
    module.rasterize = rasterize
    return module


def fake_pytorch3d() -> dict[str, types.ModuleType]:
    root, structures, renderer = (types.ModuleType(n) for n in ("pytorch3d", "pytorch3d.structures",
                                                                 "pytorch3d.renderer"))
    mesh, raster = types.ModuleType("pytorch3d.renderer.mesh"), types.ModuleType(
        "pytorch3d.renderer.mesh.rasterize_meshes")

    class Meshes:
        def __init__(self, verts, faces):
            self.verts, self.faces = list(verts), list(faces)

    def rasterize_meshes(meshes, image_size=256, blur_radius=0.0, faces_per_pixel=8, perspective_correct=False,
                         **_):
        assert blur_radius == 0.0 and faces_per_pixel == 1
        h, w = image_size
        s = min(h, w)
        cols = torch.arange(w, dtype=torch.float64)
        rows = torch.arange(h, dtype=torch.float64)
        xs = -((2 * cols + 1) / w - 1) * (w / s)  # +X left: column 0 is at +x
        ys = -((2 * rows + 1) / h - 1) * (h / s)  # +Y up: row 0 is at +y
        py, px = torch.meshgrid(ys, xs, indexing="ij")
        n = len(meshes.verts)
        pix, zbuf, bary = (torch.full((n, h, w, 1), -1, dtype=torch.long), torch.full((n, h, w, 1), -1.0),
                           torch.full((n, h, w, 1, 3), -1.0))
        offset = 0
        for i, (v, f) in enumerate(zip(meshes.verts, meshes.faces)):
            assert bool((v[:, 2] > 0).all()), "pytorch3d draws nothing behind the camera"
            if len(f):
                face, w0, w1, w2, depth = _brute_force(v[:, :2].double(), v[:, 2].double(), f.long(), px, py)
                hit = (face >= 0).view(h, w)
                pix[i, ..., 0] = torch.where(hit, face.view(h, w) + offset, -1)
                zbuf[i, ..., 0] = torch.where(hit, depth.view(h, w).float(), -1.0)
                bary[i, ..., 0, :] = torch.where(hit[..., None], torch.stack([w0, w1, w2], -1).view(h, w, 3).float(),
                                                 -1.0)
            offset += len(f)
        return pix, zbuf, bary, torch.zeros_like(zbuf)

    structures.Meshes = Meshes
    raster.rasterize_meshes = rasterize_meshes
    root.structures, root.renderer, renderer.mesh, mesh.rasterize_meshes = structures, renderer, mesh, raster
    return {m.__name__: m for m in (root, structures, renderer, mesh, raster)}


@pytest.fixture
def with_fakes(monkeypatch):
    nv = types.ModuleType("nvdiffrast")
    nv.torch = fake_nvdiffrast()
    for name, module in {"nvdiffrast": nv, "nvdiffrast.torch": nv.torch, **fake_pytorch3d()}.items():
        monkeypatch.setitem(sys.modules, name, module)
    backends._importable.cache_clear()
    backends._nvdiffrast_context.cache_clear()
    yield
    backends._importable.cache_clear()
    backends._nvdiffrast_context.cache_clear()


def scene(batch: int = 2, height: int = 40, width: int = 56) -> tuple[torch.Tensor, torch.Tensor]:
    """Two differently turned, off-centre spheres in pixel coordinates (x right, y down)."""
    verts, faces = icosphere(2)
    out = []
    for i in range(batch):
        angle = 0.4 + 0.7 * i
        rot = torch.tensor([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
        v = verts @ rot.T
        out.append(torch.stack([v[:, 0] * 15 + 24 + 5 * i, -v[:, 1] * 15 + 18, -v[:, 2] * 15 + 3], -1))
    return torch.stack(out), faces


@pytest.mark.parametrize("backend", ["nvdiffrast", "pytorch3d"])
@pytest.mark.parametrize("backface", ["keep", "cull"])
def test_optional_backend_matches_the_builtin_rasterizer(with_fakes, backend, backface):
    verts, faces = scene()
    ref = rasterize(verts, faces, 40, 56, RasterSettings(backface=backface, backend="builtin"))
    out = rasterize(verts, faces, 40, 56, RasterSettings(backface=backface, backend=backend))
    assert out.face_index.shape == ref.face_index.shape == (2, 40, 56)
    same = out.face_index == ref.face_index
    assert (out.mask == ref.mask).float().mean() > 0.995  # edge pixels may go either way
    assert same.float().mean() > 0.98 and ref.mask.sum() > 1000
    both = same & ref.mask
    # the built-in rasterizer snaps vertices to 1/256 px (and the stand-ins work in float32 clip space),
    # which moves barycentrics by ~1e-3, a little more on slivers; a wrong convention moves them by ~1
    error = (out.bary[both] - ref.bary[both]).abs().amax(-1)
    assert error.median() < 1e-3 and (error < 3e-3).float().mean() > 0.99 and error.max() < 0.05
    depth_error = (out.depth[both] - ref.depth[both]).abs()
    assert depth_error.median() < 0.01 and depth_error.max() < 0.01 * 30  # the spheres are 30 px deep
    assert not out.mask[~ref.mask].any() or (out.mask & ~ref.mask).sum() < 10
    assert (out.face_index[~out.mask] == -1).all() and (out.bary[~out.mask] == 0).all()


@pytest.mark.parametrize("backend", ["nvdiffrast", "pytorch3d"])
def test_optional_backend_skips_undrawable_triangles(with_fakes, backend):
    verts, faces = scene(batch=1)
    broken = verts.clone()
    broken[0, faces[0, 0]] = float("nan")
    ref = rasterize(broken, faces, 40, 56, RasterSettings(backend="builtin"))
    out = rasterize(broken, faces, 40, 56, RasterSettings(backend=backend))
    gone = (faces == faces[0, 0]).any(1).nonzero().flatten()
    assert not torch.isin(out.face_index, gone).any()
    assert (out.face_index == ref.face_index).float().mean() > 0.98


def test_auto_picks_a_library_only_for_cuda_tensors(with_fakes, monkeypatch):
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    assert backends.available_backends() == ("builtin", "nvdiffrast", "pytorch3d")
    assert backends.resolve_backend("auto", torch.device("cpu")) == "builtin"
    assert backends.resolve_backend("auto", torch.device("cuda")) == "nvdiffrast"
    monkeypatch.setenv(backends.ENV_VAR, "pytorch3d")
    assert backends.resolve_backend("auto", torch.device("cpu")) == "pytorch3d"
    assert backends.resolve_backend("builtin", torch.device("cuda")) == "builtin"  # explicit beats the variable


def test_missing_library_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "nvdiffrast", None)  # import fails
    monkeypatch.setitem(sys.modules, "nvdiffrast.torch", None)
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    backends._importable.cache_clear()
    try:
        assert "nvdiffrast" not in backends.available_backends()
        assert backends.resolve_backend("auto", torch.device("cpu")) == "builtin"
        with pytest.raises(ValueError, match="nvdiffrast rasterizer was asked for but cannot be imported"):
            rasterize(*scene(1), 40, 56, RasterSettings(backend="nvdiffrast"))
        with pytest.raises(ValueError, match="backend must be one of"):
            RasterSettings(backend="opengl")
    finally:
        backends._importable.cache_clear()
