"""Preview drawings of detections, for artists checking what was found before they edit."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from .crops import FaceDetections

POINT_COLOURS = ((255, 64, 64), (64, 160, 255), (255, 220, 0), (255, 64, 255), (0, 230, 230))
BOX_COLOUR = (64, 255, 64)
MESH_COLOUR = (200, 200, 200)


def draw_detections(images: torch.Tensor, detections: FaceDetections) -> torch.Tensor:
    """Boxes, left-to-right index and score, the 5 alignment points and the face mesh, on a copy."""
    if images.shape[0] == 0:
        return images.clone()
    rgb = images[..., :3] if images.shape[-1] >= 3 else images[..., :1].expand(*images.shape[:3], 3)
    out = []
    for frame, faces in zip(rgb, detections.faces):
        canvas = Image.fromarray((frame.clamp(0, 1) * 255).round().byte().cpu().numpy())
        pen = ImageDraw.Draw(canvas)
        h, w = frame.shape[:2]
        t = max(1, round(min(h, w) / 256))
        for k, face in enumerate(faces):
            if face.landmarks is not None:
                for x, y in face.landmarks[:, :2]:
                    pen.point((float(x), float(y)), fill=MESH_COLOUR)
            x0, y0, x1, y1 = face.box
            pen.rectangle((x0, y0, x1, y1), outline=BOX_COLOUR, width=t)
            pen.text((x0 + 2 * t, max(0.0, y0 - 12 * t)), f"{k}: {face.score:.2f}", fill=BOX_COLOUR)
            r = 2 * t
            for (x, y), colour in zip(face.points5, POINT_COLOURS):
                pen.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        out.append(torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255.0))
    return torch.stack(out).to(images.device)
