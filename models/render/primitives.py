"""Small procedural meshes with known geometry, for tests, benchmarks and previews."""
from __future__ import annotations

import math

import torch


def icosphere(subdivisions: int = 3, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit sphere from a subdivided icosahedron: (10 * 4^s + 2, 3) vertices, (20 * 4^s, 3) faces.

    Faces are wound so their right-handed normals point outward.
    """
    g = (1 + math.sqrt(5)) / 2
    v = torch.tensor([[-1, g, 0], [1, g, 0], [-1, -g, 0], [1, -g, 0], [0, -1, g], [0, 1, g],
                      [0, -1, -g], [0, 1, -g], [g, 0, -1], [g, 0, 1], [-g, 0, -1], [-g, 0, 1]],
                     dtype=torch.float64)
    f = torch.tensor([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                      [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
                      [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]])
    v = v / v.norm(dim=-1, keepdim=True)
    for _ in range(subdivisions):
        edges = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).sort(dim=1).values
        unique, inverse = torch.unique(edges, dim=0, return_inverse=True)
        mid = v[unique].mean(1)
        mid = mid / mid.norm(dim=-1, keepdim=True)
        m = (inverse + v.shape[0]).view(3, -1).T  # midpoints of edges 01, 12, 20 of each face
        v = torch.cat([v, mid])
        f = torch.cat([
            torch.stack([f[:, 0], m[:, 0], m[:, 2]], 1),
            torch.stack([f[:, 1], m[:, 1], m[:, 0]], 1),
            torch.stack([f[:, 2], m[:, 2], m[:, 1]], 1),
            m,
        ])
    tri = v[f]
    outward = (torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1) * tri.mean(1)).sum(-1) > 0
    f = torch.where(outward[:, None], f, f[:, [0, 2, 1]])
    return v.to(dtype), f


def grid_mesh(rows: int, cols: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat rows x cols vertex grid over [0, 1]^2 at z = 0, two triangles per cell.

    Vertex (r, c) is at x = c / (cols - 1), y = r / (rows - 1). With y pointing down on screen, the
    triangles run counter-clockwise as seen by the viewer, i.e. front-facing in models.render.raster.
    """
    if rows < 2 or cols < 2:
        raise ValueError("a grid needs at least 2 x 2 vertices")
    ys, xs = torch.meshgrid(torch.linspace(0, 1, rows, dtype=torch.float64),
                            torch.linspace(0, 1, cols, dtype=torch.float64), indexing="ij")
    v = torch.stack([xs, ys, torch.zeros_like(xs)], -1).reshape(-1, 3)
    idx = torch.arange(rows * cols).view(rows, cols)
    a, b = idx[:-1, :-1].reshape(-1), idx[:-1, 1:].reshape(-1)
    c, d = idx[1:, :-1].reshape(-1), idx[1:, 1:].reshape(-1)
    f = torch.cat([torch.stack([a, c, b], 1), torch.stack([b, c, d], 1)])
    return v.to(dtype), f
