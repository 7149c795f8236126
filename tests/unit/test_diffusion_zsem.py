"""z_sem arithmetic: blends hit their ends, slerp keeps length, directions are unit mean differences."""
import pytest
import torch

from models.diffusion import zsem


def test_blends_hit_their_ends_and_slerp_keeps_length():
    a, b = torch.randn(3, 8), torch.randn(3, 8)
    for method in ("lerp", "slerp"):
        assert torch.allclose(zsem.blend(a, b, 0.0, method), a, atol=1e-5)
        assert torch.allclose(zsem.blend(a, b, 1.0, method), b, atol=1e-5)
    b = 2 * a.norm(dim=-1, keepdim=True) * torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    mid = zsem.slerp(a, b, 0.5)
    assert torch.allclose(mid.norm(dim=-1), 1.5 * a.norm(dim=-1), rtol=1e-5)
    assert zsem.lerp(a, -a, 0.5).abs().max() == 0  # why slerp: lerp of opposite codes collapses
    assert torch.allclose(zsem.slerp(a, a, 0.3), a, atol=1e-5)  # parallel rows fall back to lerp


def test_direction_is_the_unit_mean_difference_and_move_follows_it(tmp_path):
    axis = torch.zeros(8)
    axis[2] = 1.0
    without = torch.randn(20, 8)
    with_attr = without + 3 * axis
    direction = zsem.attribute_direction(with_attr, without)
    assert torch.allclose(direction, axis, atol=1e-6)
    z = torch.randn(2, 8)
    assert torch.allclose(zsem.move(z, direction, -0.5) - z, -0.5 * axis.expand(2, 8), atol=1e-6)
    path = zsem.save_direction(tmp_path / "d.safetensors", direction, {"attribute": "test"})
    assert torch.equal(zsem.load_direction(path), direction)
    with pytest.raises(ValueError, match="same mean"):
        zsem.attribute_direction(without, without)
    with pytest.raises(ValueError, match="dims"):
        zsem.move(z, torch.ones(4), 1.0)
