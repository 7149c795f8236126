"""The mesh drawn on the original photo lands on the face the rig was fitted to."""
import numpy as np
import torch

from face_photos import photo
from models.faces.cropping import CropSettings, crop_faces
from models.faces.detector import FaceDetector
from models.faces.finder import find_faces
from models.faces.mediapipe_files import find_mediapipe_models
from models.rig.fit_mesh import fit_mesh468
from models.rig.geometry import rig_mesh
from models.rig.overlay import crop_to_source, overlay_on_photo


def test_wireframe_is_drawn_over_the_detected_face_only():
    image = photo("fr_two_people.jpg")[None]
    detector = FaceDetector(find_mediapipe_models([]))
    faces, _ = find_faces(detector, image)
    crops, info = crop_faces(image, faces, CropSettings(size=256, selection="all"))
    rig = fit_mesh468(crops, info)
    drawn = overlay_on_photo(image, rig, rig_mesh(rig), "both")
    changed = (drawn[0] - image[0]).abs().amax(-1) > 0.05
    assert changed.any()
    ys, xs = np.nonzero(changed.numpy())
    boxes = [f.box for f in faces.faces[0]]
    inside = np.zeros_like(xs, dtype=bool)
    for x0, y0, x1, y1 in boxes:  # every drawn pixel lies on one of the faces (boxes grown by 30%)
        w, h = x1 - x0, y1 - y0
        inside |= (xs >= x0 - 0.3 * w) & (xs <= x1 + 0.3 * w) & (ys >= y0 - 0.3 * h) & (ys <= y1 + 0.3 * h)
    assert inside.all()
    assert torch.equal(image, photo("fr_two_people.jpg")[None])  # the input was not drawn on


def test_crop_to_source_inverts_the_crop_transform():
    affine = np.array([[0.8, -0.6, 10.0], [0.6, 0.8, -5.0]])
    src = torch.tensor([[3.0, 4.0], [100.0, 50.0]], dtype=torch.float64)
    crop = src @ torch.tensor(affine[:, :2]).T + torch.tensor(affine[:, 2])
    assert torch.allclose(crop_to_source(crop, affine), src, atol=1e-9)
