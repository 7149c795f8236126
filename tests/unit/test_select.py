"""Face selection and input normalisation."""
import pytest
import torch

from models.faces.select import image_too_small, normalize_image_channels, select_faces
from models.faces.types import FaceDetection


def face(x0: float, width: float, y0: float = 10.0) -> FaceDetection:
    pts = [(x0 + 0.3 * width, y0 + 0.4 * width)] * 5
    return FaceDetection((x0, y0, x0 + width, y0 + width), 0.9, pts)


# Given out of order: the middle face is the largest.
FACES = [face(300, 40), face(10, 30), face(150, 80)]


def lefts(faces):
    return [f.box[0] for f in faces]


def test_all_is_left_to_right():
    assert lefts(select_faces(FACES, "all", 0)) == [10, 150, 300]


def test_largest():
    assert lefts(select_faces(FACES, "largest", 0)) == [150]


@pytest.mark.parametrize("index, expected", [(0, [10]), (1, [150]), (2, [300]), (3, []), (50, [])])
def test_index_counts_from_the_left_and_past_the_end_is_empty(index, expected):
    assert lefts(select_faces(FACES, "index", index)) == expected


@pytest.mark.parametrize("mode", ["all", "largest", "index"])
def test_no_faces(mode):
    assert select_faces([], mode, 0) == []


def test_bad_arguments():
    with pytest.raises(ValueError):
        select_faces(FACES, "biggest", 0)
    with pytest.raises(ValueError):
        select_faces(FACES, "index", -1)


def test_channels():
    g = torch.rand(2, 5, 7, 1)
    assert torch.equal(normalize_image_channels(g), g.expand(2, 5, 7, 3))
    ga = torch.cat([g, torch.zeros_like(g)], -1)
    assert torch.equal(normalize_image_channels(ga), g.expand(2, 5, 7, 3))
    rgb = torch.rand(2, 5, 7, 3)
    assert normalize_image_channels(rgb) is rgb
    rgba = torch.cat([rgb, torch.ones_like(g)], -1)
    assert torch.equal(normalize_image_channels(rgba), rgb)
    for bad in (torch.rand(2, 5, 7, 5), torch.rand(5, 7, 3)):
        with pytest.raises(ValueError):
            normalize_image_channels(bad)


def test_image_too_small():
    assert image_too_small(47, 500) and image_too_small(500, 20)
    assert not image_too_small(48, 48)
    assert image_too_small(60, 60, min_side=64)
