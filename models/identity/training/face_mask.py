"""The CGDR foreground: the face region of an aligned crop, from the detector's 468-point face mesh.

The mesh spans forehead, cheeks and chin, so the filled convex hull of its points (mapped into the
crop) marks the face whose identity the identifier must carry; hair, neck and background are left
to the class prior. `grow` widens the hull about its centroid (0.1 = 10 % larger) for a margin.
"""
from __future__ import annotations

import numpy as np
import torch


def crop_points(landmarks: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """(N, 2+) image-pixel points -> (N, 2) crop pixels through the crop's (2, 3) affine."""
    points = np.asarray(landmarks, dtype=np.float64)[:, :2]
    a = np.asarray(affine, dtype=np.float64)
    return points @ a[:, :2].T + a[:, 2]


def hull_mask(points: np.ndarray, size: int, grow: float = 0.0) -> torch.Tensor:
    """(size, size) float mask, 1 where a pixel centre lies inside the convex hull of the (N, 2) points."""
    from scipy.spatial import ConvexHull

    points = np.asarray(points, dtype=np.float64)
    hull = points[ConvexHull(points).vertices]  # counter-clockwise in (x, y)
    centre = hull.mean(0)
    hull = centre + (hull - centre) * (1.0 + grow)
    centres = np.arange(size, dtype=np.float64) + 0.5
    x, y = np.meshgrid(centres, centres, indexing="xy")
    inside = np.ones((size, size), dtype=bool)
    for (x0, y0), (x1, y1) in zip(hull, np.roll(hull, -1, axis=0)):
        inside &= (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) >= 0
    return torch.from_numpy(inside.astype(np.float32))
