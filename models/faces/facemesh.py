"""Mediapipe's 468-point face mesh: rotated square crop around a face, landmarks back to pixels.

The crop (mediapipe's "ROI") is the face box squared on its long side, enlarged 1.5x and rotated so
that the eye line is horizontal; from landmarks, the box of all points and the line between the
outer eye corners (33, 263) play the same roles. All geometry is in image pixels with pixel centres
at +0.5, which `grid_sample(align_corners=False)` shares.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..tflite import TFLiteModule

INPUT_SIZE = 192
NUM_LANDMARKS = 468
ROI_SCALE = 1.5
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263  # subject's right eye is on the image's left
MAX_SUPERSAMPLING = 4


@dataclass(frozen=True)
class FaceRois:
    """n rotated square crops: centres (n, 2) px, sides (n,) px, angles (n,) radians (x axis -> eye line)."""

    centers: Tensor
    sizes: Tensor
    angles: Tensor

    def to_image(self, points: Tensor) -> Tensor:
        """(n, k, 2) points normalised to each crop ([0, 1], x right, y down) -> image pixels."""
        cos, sin = torch.cos(self.angles)[:, None], torch.sin(self.angles)[:, None]
        u = (points[..., 0] - 0.5) * self.sizes[:, None]
        v = (points[..., 1] - 0.5) * self.sizes[:, None]
        return torch.stack([cos * u - sin * v, sin * u + cos * v], -1) + self.centers[:, None]


def _square_rois(x0: Tensor, y0: Tensor, x1: Tensor, y1: Tensor, start: Tensor, end: Tensor) -> FaceRois:
    """Mediapipe's DetectionsToRects + RectTransformation(scale 1.5, square_long) in pixels."""
    centers = torch.stack([(x0 + x1) / 2, (y0 + y1) / 2], -1)
    sizes = torch.maximum(x1 - x0, y1 - y0) * ROI_SCALE
    delta = end - start
    return FaceRois(centers, sizes, torch.atan2(delta[:, 1], delta[:, 0]))


def rois_from_detections(boxes: Tensor, keypoints: Tensor) -> FaceRois:
    """(n, 4) BlazeFace boxes and (n, 6, 2) keypoints -> crops; the angle comes from the two eyes."""
    return _square_rois(boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], keypoints[:, 0], keypoints[:, 1])


def rois_from_landmarks(landmarks: Tensor) -> FaceRois:
    """(n, 468, 2+) mesh points -> crops framing them as the detector's crops frame a box."""
    xy = landmarks[..., :2]
    low, high = xy.min(1).values, xy.max(1).values
    return _square_rois(low[:, 0], low[:, 1], high[:, 0], high[:, 1],
                        xy[:, RIGHT_EYE_OUTER], xy[:, LEFT_EYE_OUTER])


def crop_faces(images: Tensor, image_index: Tensor, rois: FaceRois, size: int = INPUT_SIZE) -> Tensor:
    """(B, 3, H, W) images, face i cut from images[image_index[i]] -> (n, 3, size, size).

    Border pixels repeat outside the image (mediapipe's BORDER_REPLICATE). A crop that shrinks the
    face is sampled at about one sample per source pixel (an integer multiple of `size`, at most
    MAX_SUPERSAMPLING) and box-filtered down, so faces from large images are not aliased.
    """
    height, width = images.shape[2], images.shape[3]
    crops = []
    for i in range(len(image_index)):
        factor = min(MAX_SUPERSAMPLING, max(1, round(float(rois.sizes[i]) / size)))
        # crop coordinates in [-1, 1] -> grid_sample's image coordinates in [-1, 1]
        cos, sin, side = torch.cos(rois.angles[i]), torch.sin(rois.angles[i]), rois.sizes[i]
        cx, cy = rois.centers[i]
        theta = torch.stack([
            torch.stack([cos * side / width, -sin * side / width, cx * 2 / width - 1]),
            torch.stack([sin * side / height, cos * side / height, cy * 2 / height - 1]),
        ])[None].to(images)
        image = images[int(image_index[i])][None]
        grid = F.affine_grid(theta, [1, 3, size * factor, size * factor], align_corners=False)
        crop = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
        crops.append(F.avg_pool2d(crop, factor) if factor > 1 else crop)
    return torch.cat(crops) if crops else images.new_zeros(0, 3, size, size)


@dataclass(frozen=True)
class MeshResult:
    landmarks: Tensor  # (n, 468, 3) image pixels; z in pixels too, smaller = nearer the camera
    presence: Tensor  # (n,) the model's face-presence probability
    rois: FaceRois  # the crops the landmarks were read from


class FaceMesh:
    def __init__(self, network: TFLiteModule):
        expected = (1, INPUT_SIZE, INPUT_SIZE, 3)
        if tuple(network.input_shapes[0]) != expected:
            raise ValueError(f"{network.source.name}: input {network.input_shapes[0]}, expected {expected}")
        self.network = network

    def __call__(self, images: Tensor, image_index: Tensor, rois: FaceRois, refine: bool = False) -> MeshResult:
        """(B, 3, H, W) images in [0, 1]; with `refine`, a second pass on the crops the first pass's
        landmarks give, which frame the face more tightly and level it better than the detector's."""
        result = self._run(images, image_index, rois)
        return self._run(images, image_index, rois_from_landmarks(result.landmarks)) if refine else result

    def _run(self, images: Tensor, image_index: Tensor, rois: FaceRois) -> MeshResult:
        if len(image_index) == 0:
            return MeshResult(torch.zeros(0, NUM_LANDMARKS, 3), torch.zeros(0), rois)
        raw, flag = self.network(crop_faces(images, image_index, rois))
        raw = raw.float().cpu().reshape(-1, NUM_LANDMARKS, 3) / INPUT_SIZE
        xy = rois.to_image(raw[..., :2])
        z = raw[..., 2] * rois.sizes[:, None]
        return MeshResult(torch.cat([xy, z[..., None]], -1), torch.sigmoid(flag.float().cpu().reshape(-1)), rois)
