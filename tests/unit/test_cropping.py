"""Batch semantics of detection + cropping, with a stand-in detector so only our logic is under test."""
import numpy as np
import pytest
import torch

from models.faces.crops import FaceDetections
from models.faces.cropping import CropSettings, NoFaceError, crop_faces
from models.faces.finder import MIN_SIDE, find_faces
from models.faces.types import FaceDetection


def face_at(cx: float, cy: float, eye_dist: float, score: float = 0.9) -> FaceDetection:
    e = eye_dist / 2
    pts = [(cx - e, cy), (cx + e, cy), (cx, cy + 0.6 * e), (cx - 0.8 * e, cy + 1.3 * e), (cx + 0.8 * e, cy + 1.3 * e)]
    return FaceDetection((cx - 2 * e, cy - 2 * e, cx + 2 * e, cy + 3 * e), score, pts)


class StandInDetector:
    """Returns preset faces per frame and records what it was given."""

    def __init__(self, per_frame):
        self.per_frame = per_frame
        self.seen = None

    def detect(self, images, **kw):
        self.seen = images
        return [list(self.per_frame[i]) for i in range(images.shape[0])]


def test_channels_are_normalised_before_detection():
    for c in (1, 2, 3, 4):
        det = StandInDetector([[]])
        find_faces(det, torch.rand(1, 64, 64, c))
        assert det.seen.shape == (1, 64, 64, 3)
    gray = torch.rand(1, 64, 64, 1)
    det = StandInDetector([[]])
    find_faces(det, gray)
    assert torch.equal(det.seen[..., 0], gray[..., 0]) and torch.equal(det.seen[..., 2], gray[..., 0])


def test_tiny_images_are_reported_not_guessed():
    det = StandInDetector([[face_at(20, 20, 10)]])
    found, reasons = find_faces(det, torch.rand(1, MIN_SIDE - 8, 100, 3))
    assert det.seen is None and found.count == 0
    assert "at least 48 px" in reasons[0]


def test_empty_batch_gives_empty_results():
    found, reasons = find_faces(StandInDetector([]), torch.rand(0, 64, 64, 3))
    assert len(found) == 0 and reasons == {}
    crops, info = crop_faces(torch.rand(0, 64, 64, 3), found, CropSettings(size=128))
    assert crops.shape == (0, 128, 128, 3) and len(info) == 0


def test_selection_modes_and_left_to_right_order():
    small, big = face_at(60, 100, 20), face_at(200, 100, 40)
    images = torch.rand(2, 240, 320, 3)
    dets = FaceDetections(((small, big), (big,)), ((240, 320),) * 2)
    crops, info = crop_faces(images, dets, CropSettings(size=64, selection="largest"))
    assert crops.shape == (2, 64, 64, 3) and [c.detection for c in info.items] == [big, big]
    crops, info = crop_faces(images, dets, CropSettings(size=64, selection="all"))
    assert [(c.source_index, c.detection) for c in info.items] == [(0, small), (0, big), (1, big)]
    assert [c.face_index for c in info.items] == [0, 1, 0]
    crops, info = crop_faces(images, dets, CropSettings(size=64, selection="index", face_index=0,
                                                        on_no_face="passthrough"))
    assert [c.detection for c in info.items] == [small, big]
    with pytest.raises(NoFaceError, match="face_index 1 asked for, but only 1 face"):
        crop_faces(images, dets, CropSettings(size=64, selection="index", face_index=1))


def test_passthrough_keeps_one_placeholder_per_faceless_frame():
    images = torch.rand(3, 100, 100, 3)
    dets = FaceDetections(((face_at(50, 40, 20),), (), (face_at(50, 40, 20),)), ((100, 100),) * 3)
    with pytest.raises(NoFaceError, match="image 2 of 3: no face found"):
        crop_faces(images, dets, CropSettings(size=64))
    crops, info = crop_faces(images, dets, CropSettings(size=64, on_no_face="passthrough"))
    assert crops.shape[0] == 3 and info.valid.tolist() == [True, False, True]
    assert info.source_indices.tolist() == [0, 1, 2]


def test_detections_for_another_image_size_are_refused():
    dets = FaceDetections(((face_at(50, 40, 20),),), ((100, 100),))
    with pytest.raises(ValueError, match="same image"):
        crop_faces(torch.rand(1, 120, 100, 3), dets, CropSettings(size=64))


def test_crop_centres_the_face_between_eyes_and_mouth():
    img = torch.zeros(1, 200, 200, 3)
    face = face_at(100, 90, 40)
    # a bright dot between the eyes lands left-right centred in the crop, above the middle
    img[0, 88:93, 98:103] = 1.0
    crops, info = crop_faces(img, FaceDetections(((face,),), ((200, 200),)), CropSettings(size=128))
    ys, xs = np.nonzero(crops[0, ..., 0].numpy() > 0.5)
    assert abs(xs.mean() - 63.5) < 1.5 and ys.mean() < 64
