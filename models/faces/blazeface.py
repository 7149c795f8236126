"""BlazeFace, mediapipe's SSD face detector: letterboxed input, anchor decoding, image-space output.

The constants follow mediapipe's face_detection_{short,full}_range graphs: the anchors have a fixed
unit size, so each regressor row is (dx, dy, w, h, then 6 keypoints' dx, dy), all in input pixels
relative to its anchor's centre. Keypoints, in this order: the subject's right eye (image left),
left eye, nose tip, mouth centre, right ear tragion, left ear tragion.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..tflite import TFLiteModule
from .nms import weighted_nms

KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion")


@dataclass(frozen=True)
class BlazeFaceConfig:
    input_size: int
    strides: tuple[int, ...]  # one per SSD layer; consecutive equal strides share a feature map
    anchors_per_layer: int  # 2 where mediapipe sets interpolated_scale_aspect_ratio, else 1
    score_clip: float = 100.0  # logits are clipped to +-this before the sigmoid


SHORT_RANGE = BlazeFaceConfig(input_size=128, strides=(8, 16, 16, 16), anchors_per_layer=2)
FULL_RANGE = BlazeFaceConfig(input_size=192, strides=(4,), anchors_per_layer=1)


@dataclass(frozen=True)
class Detections:
    """One image's faces in its pixel coordinates, best score first."""

    boxes: Tensor  # (n, 4) x0, y0, x1, y1
    keypoints: Tensor  # (n, 6, 2) in KEYPOINT_NAMES order
    scores: Tensor  # (n,)


def ssd_anchors(config: BlazeFaceConfig) -> Tensor:
    """(num_anchors, 2) anchor centres in [0, 1], in the order of the model's output rows."""
    centres = []
    layer = 0
    while layer < len(config.strides):
        stride, per_cell = config.strides[layer], 0
        while layer < len(config.strides) and config.strides[layer] == stride:
            per_cell += config.anchors_per_layer
            layer += 1
        cells = math.ceil(config.input_size / stride)
        grid = (torch.arange(cells, dtype=torch.float32) + 0.5) / cells
        ys, xs = torch.meshgrid(grid, grid, indexing="ij")
        centres.append(torch.stack([xs, ys], -1).reshape(-1, 1, 2).expand(-1, per_cell, 2).reshape(-1, 2))
    return torch.cat(centres)


@dataclass(frozen=True)
class Letterbox:
    """Where an image lands in the square model input: scaled to fit, centred, black bars around."""

    scale_x: float  # input pixels per image pixel
    scale_y: float
    pad_x: int  # input pixels left of the image
    pad_y: int
    size: int  # input side
    resized: tuple[int, int]  # (height, width) of the image inside the input

    @classmethod
    def fit(cls, height: int, width: int, size: int) -> "Letterbox":
        scale = size / max(height, width)
        h, w = max(1, round(height * scale)), max(1, round(width * scale))
        return cls(w / width, h / height, (size - w) // 2, (size - h) // 2, size, (h, w))

    def apply(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 3, size, size) in [0, 1], antialiased when shrinking."""
        h, w = self.resized
        x = F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        return F.pad(x, (self.pad_x, self.size - w - self.pad_x, self.pad_y, self.size - h - self.pad_y))

    def to_image(self, points: Tensor) -> Tensor:
        """(..., 2) points normalised to the input square -> image pixels."""
        x = (points[..., 0] * self.size - self.pad_x) / self.scale_x
        y = (points[..., 1] * self.size - self.pad_y) / self.scale_y
        return torch.stack([x, y], -1)


class BlazeFace:
    """Runs one BlazeFace model on a batch of same-sized images."""

    def __init__(self, network: TFLiteModule, config: BlazeFaceConfig):
        expected = (1, config.input_size, config.input_size, 3)
        if tuple(network.input_shapes[0]) != expected:
            raise ValueError(f"{network.source.name}: input {network.input_shapes[0]}, expected {expected}")
        self.network = network
        self.config = config
        self.anchors = ssd_anchors(config)

    def candidates(self, images: Tensor, min_score: float) -> list[Detections]:
        """Every anchor scoring at least `min_score`, in image pixels, before suppression."""
        letterbox = Letterbox.fit(images.shape[2], images.shape[3], self.config.input_size)
        raw_boxes, raw_scores = self.network(letterbox.apply(images) * 2.0 - 1.0)
        raw_boxes, raw_scores = raw_boxes.float().cpu(), raw_scores.float().cpu()
        if raw_boxes.shape[1] != len(self.anchors):
            raise ValueError(f"{self.network.source.name}: {raw_boxes.shape[1]} boxes, {len(self.anchors)} anchors")
        limit = self.config.score_clip
        scores = torch.sigmoid(raw_scores[..., 0].clamp(-limit, limit))
        offsets = raw_boxes.reshape(*raw_boxes.shape[:2], 8, 2) / self.config.input_size
        centres = offsets[:, :, 0] + self.anchors
        half = offsets[:, :, 1] / 2
        corners = letterbox.to_image(torch.stack([centres - half, centres + half], 2)).flatten(2)
        keypoints = letterbox.to_image(offsets[:, :, 2:] + self.anchors[:, None])
        out = []
        for b in range(len(images)):
            keep = scores[b] >= min_score
            out.append(Detections(corners[b][keep], keypoints[b][keep], scores[b][keep]))
        return out

    def __call__(self, images: Tensor, min_score: float, iou_threshold: float = 0.3) -> list[Detections]:
        """(B, 3, H, W) images in [0, 1] -> per image, the faces after weighted suppression."""
        return [Detections(*weighted_nms(d.boxes, d.keypoints, d.scores, iou_threshold))
                for d in self.candidates(images, min_score)]
