"""Optional GPU rasterizers (nvdiffrast, pytorch3d) behind the built-in rasterizer's interface.

Both libraries are faster than the built-in rasterizer on large GPU batches but neither can be
installed everywhere, so they are used only when importable and only for CUDA tensors ("auto"),
and give the same `Fragments`: the visible face per pixel centre, its screen-space barycentrics and
depth in the caller's units. Coverage of pixel centres lying exactly on a shared edge may differ
from the built-in top-left rule by a pixel here and there.

Conventions crossed here (the built-in one: pixel x right, y down, pixel centres at +0.5, depth
smaller = nearer; see raster.py):
* nvdiffrast: clip space x right, y up, image row 0 at y = -1 (bottom-up memory order), z/w in
  [-1, 1] growing away from the viewer; output (u, v, z/w, triangle_id + 1) with u, v the weights
  of the triangle's first two vertices. Feeding y_clip = 2 y / H - 1 therefore keeps our rows.
* pytorch3d: NDC +X left, +Y up, the shorter image side spanning [-1, 1]; depth must be positive;
  pix_to_face indexes the packed faces of the batch.
Back-face culling (the built-in rule) and dropping undrawable triangles happen before either library
sees the faces: each item of the batch gets its own list of faces (`keep`).
"""
from __future__ import annotations

import functools
import importlib
import os

import torch

BACKENDS = ("auto", "builtin", "nvdiffrast", "pytorch3d")
ENV_VAR = "LIKENESS_RASTERIZER"  # forces a backend for every render (e.g. "builtin" to compare)


@functools.cache
def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a broken install counts as absent
        return False
    return True


def available_backends() -> tuple[str, ...]:
    return ("builtin",) + tuple(name for module, name in (("nvdiffrast.torch", "nvdiffrast"),
                                                           ("pytorch3d.renderer", "pytorch3d"))
                                if _importable(module))


def resolve_backend(name: str, device: torch.device) -> str:
    """The backend that will run: `auto` (or the LIKENESS_RASTERIZER override) picks nvdiffrast, then
    pytorch3d, for CUDA tensors when importable, and the built-in one otherwise."""
    if name == "auto":
        name = os.environ.get(ENV_VAR, "") or name
    if name not in BACKENDS:
        raise ValueError(f"rasterizer backend must be one of {BACKENDS}, got {name!r}")
    if name == "auto":
        if device.type != "cuda":
            return "builtin"
        return next((b for b in ("nvdiffrast", "pytorch3d") if b in available_backends()), "builtin")
    if name != "builtin" and name not in available_backends():
        raise ValueError(f"the {name} rasterizer was asked for but cannot be imported; install it or use "
                         f"'builtin' / 'auto'")
    return name


def front_faces(verts_screen: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B, F) bool: the built-in rasterizer's front-facing test (counter-clockwise on screen, y down)."""
    v = verts_screen[..., :2].double()[:, faces]  # (B, F, 3, 2)
    e1, e2 = v[:, :, 1] - v[:, :, 0], v[:, :, 2] - v[:, :, 0]
    return e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0] < 0


def _depth_range(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    finite = torch.where(torch.isfinite(z), z, torch.zeros_like(z))
    lo, hi = finite.amin(1, keepdim=True), finite.amax(1, keepdim=True)
    return lo, (hi - lo).clamp(min=1e-6)


@functools.cache
def _nvdiffrast_context(device: str):
    import nvdiffrast.torch as dr

    return dr.RasterizeCudaContext(device=torch.device(device))


def _per_face(visible_faces: torch.Tensor, triangle: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Original face index of each pixel's triangle (indices into the faces handed to the library)."""
    return torch.where(keep, visible_faces[triangle.clamp(min=0)], torch.full_like(triangle, -1))


def rasterize_nvdiffrast(verts_screen: torch.Tensor, faces: torch.Tensor, keep: torch.Tensor, height: int,
                         width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(face_index (B, H, W), bary (B, H, W, 3), depth (B, H, W)) drawing, per item, the faces `keep` (B, F) marks."""
    import nvdiffrast.torch as dr

    b = verts_screen.shape[0]
    v = verts_screen.float()
    lo, span = _depth_range(v[..., 2])
    clip = torch.stack([2 * v[..., 0] / width - 1, 2 * v[..., 1] / height - 1,
                        (v[..., 2] - lo) / span * 1.8 - 0.9, torch.ones_like(v[..., 0])], -1).contiguous()
    context = _nvdiffrast_context(str(verts_screen.device))
    out_face, out_bary, out_depth = [], [], []
    for i in range(b):  # per item, as the faces drawn may differ between items
        visible = torch.nonzero(keep[i]).squeeze(1)
        if not len(visible):
            out_face.append(torch.full((height, width), -1, dtype=torch.long, device=v.device))
            out_bary.append(v.new_zeros(height, width, 3))
            out_depth.append(v.new_zeros(height, width))
            continue
        tri = faces[visible].to(torch.int32).contiguous()
        rast, _ = dr.rasterize(context, clip[i:i + 1], tri, resolution=(height, width))
        triangle = rast[0, ..., 3].long() - 1
        hit = triangle >= 0
        u, w = rast[0, ..., 0], rast[0, ..., 1]
        out_face.append(_per_face(visible, triangle, hit))
        out_bary.append(torch.where(hit[..., None], torch.stack([u, w, 1 - u - w], -1), torch.zeros(())))
        out_depth.append(torch.where(hit, (rast[0, ..., 2] + 0.9) / 1.8 * span[i] + lo[i], torch.zeros(())))
    return torch.stack(out_face), torch.stack(out_bary), torch.stack(out_depth)


def rasterize_pytorch3d(verts_screen: torch.Tensor, faces: torch.Tensor, keep: torch.Tensor, height: int,
                        width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
    from pytorch3d.structures import Meshes

    b = verts_screen.shape[0]
    v = verts_screen.float()
    lo, _ = _depth_range(v[..., 2])
    scale = min(height, width)
    ndc = torch.stack([(width - 2 * v[..., 0]) / scale, (height - 2 * v[..., 1]) / scale,
                       v[..., 2] - lo + 1.0], -1)
    visible = [torch.nonzero(k).squeeze(1) for k in keep]
    meshes = Meshes(verts=list(ndc), faces=[faces[idx] for idx in visible])
    pix_to_face, zbuf, bary, _ = rasterize_meshes(meshes, image_size=(height, width), blur_radius=0.0,
                                                  faces_per_pixel=1, perspective_correct=False)
    first = torch.cumsum(torch.tensor([0] + [len(idx) for idx in visible[:-1]], device=faces.device), 0)
    packed = pix_to_face[..., 0]
    hit = packed >= 0
    local = packed - first.view(b, 1, 1)
    face_index = torch.stack([_per_face(visible[i], local[i], hit[i]) for i in range(b)])
    bary = torch.where(hit[..., None], bary[..., 0, :], torch.zeros(()))
    depth = torch.where(hit, zbuf[..., 0] + lo.view(b, 1, 1) - 1.0, torch.zeros(()))
    return face_index, bary, depth


EXTERNAL = {"nvdiffrast": rasterize_nvdiffrast, "pytorch3d": rasterize_pytorch3d}
