"""SH shading against DECA's formula, and the light edits relighting relies on."""
import math

import pytest
import torch

from models.render.sh import SH_CONSTANTS, rotate_sh, sh_from_direction, sh_shading


def deca_add_shlight(normal_images, sh_coeff):
    """DECA's SRenderY.add_SHlight, restated: normal_images (B, 3, H, W), sh_coeff (B, 9, 3)."""
    pi = math.pi
    constant_factor = torch.tensor([
        1 / math.sqrt(4 * pi), ((2 * pi) / 3) * (math.sqrt(3 / (4 * pi))), ((2 * pi) / 3) * (math.sqrt(3 / (4 * pi))),
        ((2 * pi) / 3) * (math.sqrt(3 / (4 * pi))), (pi / 4) * (3) * (math.sqrt(5 / (12 * pi))),
        (pi / 4) * (3) * (math.sqrt(5 / (12 * pi))), (pi / 4) * (3) * (math.sqrt(5 / (12 * pi))),
        (pi / 4) * (3 / 2) * (math.sqrt(5 / (12 * pi))), (pi / 4) * (1 / 2) * (math.sqrt(5 / (4 * pi)))],
        dtype=normal_images.dtype)
    n = normal_images
    sh = torch.stack([n[:, 0] * 0.0 + 1.0, n[:, 0], n[:, 1], n[:, 2], n[:, 0] * n[:, 1], n[:, 0] * n[:, 2],
                      n[:, 1] * n[:, 2], n[:, 0] ** 2 - n[:, 1] ** 2, 3 * (n[:, 2] ** 2) - 1], 1)
    sh = sh * constant_factor[None, :, None, None]
    return torch.sum(sh_coeff[:, :, :, None, None] * sh[:, :, None, :, :], 1)  # (B, 3, H, W)


def random_rotation(g, dtype=torch.float64):
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=dtype))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def unit(v):
    return v / v.norm(dim=-1, keepdim=True)


def test_matches_deca_formula():
    g = torch.Generator().manual_seed(1)
    normals = torch.randn(2, 8, 8, 3, generator=g)  # unit and non-unit alike: the formula is polynomial
    normals[0] = unit(normals[0])
    light = torch.randn(2, 9, 3, generator=g)
    ours = sh_shading(normals, light)
    ref = deca_add_shlight(normals.permute(0, 3, 1, 2), light).permute(0, 2, 3, 1)
    assert ours.shape == (2, 8, 8, 3)
    assert (ours - ref).abs().max() < 1e-5
    assert SH_CONSTANTS[0] == pytest.approx(0.28209479177387814)
    assert SH_CONSTANTS[8] == pytest.approx((math.pi / 4) * 0.5 * math.sqrt(5 / (4 * math.pi)))


def test_no_clamping_and_broadcast():
    light = torch.zeros(1, 9, 3)
    light[0, 0] = torch.tensor([10.0, -10.0, 1.0])
    out = sh_shading(torch.randn(3, 5, 3), light)
    assert out.shape == (3, 5, 3)
    assert torch.allclose(out[..., 0], torch.full((3, 5), 10 * SH_CONSTANTS[0]))
    assert (out[..., 1] < 0).all()


def test_band0_only_is_uniform():
    g = torch.Generator().manual_seed(2)
    light = torch.zeros(2, 9, 3)
    light[:, 0] = torch.rand(2, 3, generator=g) * 4
    out = sh_shading(unit(torch.randn(2, 16, 3, generator=g)), light)
    assert torch.allclose(out, (light[:, 0] * SH_CONSTANTS[0])[:, None].expand_as(out), atol=1e-6)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
def test_rotated_light_at_rotated_normals_shades_the_same(dtype, tol):
    g = torch.Generator().manual_seed(3)
    rot = torch.stack([random_rotation(g) for _ in range(4)]).to(dtype)
    light = torch.randn(4, 9, 3, generator=g, dtype=dtype)
    n = unit(torch.randn(4, 500, 3, generator=g, dtype=dtype))
    turned = rotate_sh(light, rot)
    before = sh_shading(n, light)
    after = sh_shading(n @ rot.transpose(1, 2), turned)  # R n for each row
    assert (before - after).abs().max() < tol * before.abs().max()
    # identity leaves it alone, and rotations compose
    assert torch.allclose(rotate_sh(light, torch.eye(3, dtype=dtype)), light, atol=tol)
    r2 = torch.stack([random_rotation(g) for _ in range(4)]).to(dtype)
    assert torch.allclose(rotate_sh(rotate_sh(light, rot), r2), rotate_sh(light, r2 @ rot), atol=10 * tol)
    # a non-trivial rotation really changes the coefficients
    assert (turned - light).abs().max() > 0.1


def test_directional_light_brightens_the_facing_side():
    d = torch.tensor([[0.3, -0.2, 1.0], [-1.0, 0.0, 0.0]])
    light = sh_from_direction(d, intensity=torch.tensor([1.0, 2.0]), colour=torch.tensor([1.0, 0.5, 0.25]),
                              ambient=0.2)
    assert light.shape == (2, 9, 3)
    du = unit(d)
    facing = sh_shading(du[:, None], light)[:, 0]
    away = sh_shading(-du[:, None], light)[:, 0]
    assert (facing > away + 0.5 * torch.tensor([[1.0], [2.0]]) * torch.tensor([1.0, 0.5, 0.25])).all()
    # close to ambient + intensity * colour * max(0, n . d) everywhere (order-2 truncation error < 0.11)
    g = torch.Generator().manual_seed(4)
    n = unit(torch.randn(2, 2000, 3, generator=g))
    target = 0.2 + torch.tensor([1.0, 2.0])[:, None, None] * torch.tensor([1.0, 0.5, 0.25]) \
        * (n * du[:, None]).sum(-1, keepdim=True).clamp(min=0)
    err = (sh_shading(n, light) - target).abs() / torch.tensor([1.0, 2.0])[:, None, None]
    assert err.max() < 0.11


def test_directional_light_rotates_with_its_direction():
    g = torch.Generator().manual_seed(5)
    rot = torch.stack([random_rotation(g) for _ in range(3)])
    d = torch.randn(3, 3, generator=g, dtype=torch.float64)
    colour = torch.rand(3, 3, generator=g, dtype=torch.float64)
    light = sh_from_direction(d, 1.5, colour, ambient=torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64))
    moved = sh_from_direction((rot @ d[..., None])[..., 0], 1.5, colour,
                              ambient=torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64))
    assert torch.allclose(rotate_sh(light, rot), moved, atol=1e-12)
