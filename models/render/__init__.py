"""A pure-PyTorch face-rig renderer: exact batched rasterization, SH shading and DiffusionRig's
physical buffers, on CPU and CUDA alike. nvdiffrast or pytorch3d, when importable, rasterize CUDA
batches instead (backends.py); neither is needed."""
from .buffers import PHYSIC_ORDERS, BufferSettings, PhysicalBuffers, render_buffers, to_physic_cond
from .interpolate import covered_pixels, face_vertex_normals, interpolate, interpolate_at, scatter_pixels
from .preview import buffers_to_images, points_overlay, wireframe_overlay
from .backends import available_backends
from .raster import Fragments, RasterSettings, rasterize
from .sh import SH_CONSTANTS, rotate_sh, sh_basis, sh_from_direction, sh_shading

__all__ = [
    "PHYSIC_ORDERS", "SH_CONSTANTS", "BufferSettings", "available_backends", "Fragments", "PhysicalBuffers", "RasterSettings",
    "buffers_to_images", "covered_pixels", "face_vertex_normals", "interpolate", "interpolate_at",
    "points_overlay", "rasterize", "render_buffers", "rotate_sh", "scatter_pixels", "sh_basis",
    "sh_from_direction", "sh_shading", "to_physic_cond", "wireframe_overlay",
]
