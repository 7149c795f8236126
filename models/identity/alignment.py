"""ArcFace-template crops: the input of every identity network in this package.

Face2Diffusion's MSID encoder and InsightFace's recognisers all read a 112 x 112 crop whose five
points sit as close as a similarity transform allows to the ArcFace template. The reference code
warps with OpenCV (`warpPerspective` / `warpAffine`), which treats INTER_AREA as INTER_LINEAR in
warps, so the reference crops are plain bilinear samples; this package prefilters before
downscaling by default (`antialias=True`), which keeps large photos from aliasing into the crop,
and `antialias=False` reproduces the reference sampling. Outside the image is black, as with
OpenCV's default constant border.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..faces.align import arcface_affine, warp_affine
from ..faces.types import FaceDetection

Points5 = np.ndarray | Sequence[Sequence[float]] | torch.Tensor
Face = FaceDetection | Points5


def face_points(face: Face) -> np.ndarray:
    """A face's five points as a (5, 2) float64 array, from a FaceDetection or the points themselves."""
    points = face.points5 if isinstance(face, FaceDetection) else face
    if isinstance(points, torch.Tensor):
        points = points.detach().to("cpu").numpy()
    return np.asarray(points, dtype=np.float64).reshape(5, 2)


def crops_by_affine(images: torch.Tensor, faces: Sequence[Face], size: int,
                    affine_of: Callable[[np.ndarray], np.ndarray], *, antialias: bool = True) -> torch.Tensor:
    """(B, H, W, 3) images in [0, 1] and N faces -> (N, size, size, 3) crops, each warped by
    `affine_of(points5)` (a (2, 3) map from photo pixels to crop pixels).

    A face is a FaceDetection or its (5, 2) points in pixel coordinates with pixel centres at +0.5
    (`FaceDetection.points5`, ArcFace order). With B == N face i comes from image i; with B == 1
    every face comes from that image (several faces of one photo).
    """
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (B, H, W, 3), got {tuple(images.shape)}")
    count = len(faces)
    if len(images) not in (count, 1):
        raise ValueError(f"{len(images)} images for {count} faces: give one image per face, or one image")
    if count == 0:
        return images.new_zeros((0, size, size, 3))
    affines = np.stack([affine_of(face_points(face)) for face in faces])
    if len(images) != count:
        images = images.expand(count, -1, -1, -1)
    return warp_affine(images, affines, size, antialias=antialias, border="zeros").clamp(0.0, 1.0)


def arcface_crops(images: torch.Tensor, faces: Sequence[Face], size: int = 112, *,
                  antialias: bool = True) -> torch.Tensor:
    """The ArcFace-template crops Face2Diffusion's MSID reads (see crops_by_affine for the pairing)."""
    return crops_by_affine(images, faces, size, lambda points: arcface_affine(points, size), antialias=antialias)
