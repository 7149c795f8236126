"""Mediapipe's weighted non-maximum suppression for face detections.

Instead of keeping only the best box of an overlapping cluster, the cluster's boxes and keypoints
are averaged with their scores as weights (the best score is kept), which steadies the landmarks of
SSD detectors whose neighbouring anchors all fire on the same face.
"""
from __future__ import annotations

import torch
from torch import Tensor


def box_iou(box: Tensor, boxes: Tensor) -> Tensor:
    """IoU of one (4,) x0y0x1y1 box with each of (n, 4) boxes."""
    x0 = torch.maximum(box[0], boxes[:, 0])
    y0 = torch.maximum(box[1], boxes[:, 1])
    x1 = torch.minimum(box[2], boxes[:, 2])
    y1 = torch.minimum(box[3], boxes[:, 3])
    inter = (x1 - x0).clamp(min=0) * (y1 - y0).clamp(min=0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter).clamp(min=1e-12)


def weighted_nms(boxes: Tensor, keypoints: Tensor, scores: Tensor, iou_threshold: float = 0.3
                 ) -> tuple[Tensor, Tensor, Tensor]:
    """(n, 4) boxes, (n, k, 2) keypoints, (n,) scores -> the merged detections, best first.

    Every detection overlapping the current best by more than `iou_threshold` (the best included)
    joins its cluster and leaves the pool.
    """
    order = torch.argsort(scores, descending=True, stable=True)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    out_boxes, out_points, out_scores = [], [], []
    remaining = torch.arange(len(scores), device=scores.device)
    while len(remaining):
        best = remaining[0]
        joins = box_iou(boxes[best], boxes[remaining]) > iou_threshold
        joins[0] = True  # a degenerate (zero-area) best box still leaves the pool
        members = remaining[joins]
        weights = scores[members]
        total = weights.sum()
        out_boxes.append((boxes[members] * weights[:, None]).sum(0) / total)
        out_points.append((keypoints[members] * weights[:, None, None]).sum(0) / total)
        out_scores.append(scores[best])
        remaining = remaining[~joins]
    if not out_scores:
        return boxes[:0], keypoints[:0], scores[:0]
    return torch.stack(out_boxes), torch.stack(out_points), torch.stack(out_scores)
