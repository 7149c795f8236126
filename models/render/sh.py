"""Second-order spherical-harmonics lighting in DECA's convention, and the edits relighting needs.

DECA (SRenderY.add_SHlight), and with it DiffusionRig and CapHuman, shade a unit normal n = (x, y, z)
as sum_k light[k, c] * C_k * Y_k(n) per RGB channel c, with the unnormalised basis
Y = [1, x, y, z, xy, xz, yz, x^2 - y^2, 3z^2 - 1] and the constants C below (Lambertian
irradiance factors pi, 2pi/3, pi/4 folded into the real-SH normalisations). No clamping: the
result may be negative or above 1, and the models were trained on exactly that.

On the unit sphere the order-2 part is a traceless quadratic form n^T M n, so rotating a light is:
band 0 unchanged, band 1 rotated as a vector, M conjugated by the rotation.
"""
from __future__ import annotations

import math

import torch

SH_CONSTANTS = (
    1 / math.sqrt(4 * math.pi),
    (2 * math.pi / 3) * math.sqrt(3 / (4 * math.pi)),
    (2 * math.pi / 3) * math.sqrt(3 / (4 * math.pi)),
    (2 * math.pi / 3) * math.sqrt(3 / (4 * math.pi)),
    (math.pi / 4) * 3 * math.sqrt(5 / (12 * math.pi)),
    (math.pi / 4) * 3 * math.sqrt(5 / (12 * math.pi)),
    (math.pi / 4) * 3 * math.sqrt(5 / (12 * math.pi)),
    (math.pi / 4) * (3 / 2) * math.sqrt(5 / (12 * math.pi)),
    (math.pi / 4) * (1 / 2) * math.sqrt(5 / (4 * math.pi)),
)

# Clamped cosine max(0, t) in Legendre polynomials up to order 2: 1/4 + t/2 + (5/16) P2(t).
_COSINE_LOBE = (0.25, 0.5, 5.0 / 32.0)  # band 0, band 1, factor on (3 t^2 - 1)


def _constants(like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(SH_CONSTANTS, dtype=like.dtype, device=like.device)


def sh_basis(normals: torch.Tensor, scaled: bool = True) -> torch.Tensor:
    """DECA's 9 basis values, times their constants unless scaled=False: (..., 3) -> (..., 9)."""
    x, y, z = normals.unbind(-1)
    basis = torch.stack([torch.ones_like(x), x, y, z, x * y, x * z, y * z, x * x - y * y, 3 * z * z - 1], -1)
    return basis * _constants(normals) if scaled else basis


def scaled_light(light: torch.Tensor) -> torch.Tensor:
    """light (..., 9, 3) with DECA's constants folded in: sh_basis(n, scaled=False) @ it = shading."""
    return light * _constants(light)[:, None]


def sh_shading(normals: torch.Tensor, light: torch.Tensor) -> torch.Tensor:
    """Per-channel SH shading of normals (B, ..., 3) under light (B, 9, 3) -> (B, ..., 3), unclamped.

    A batch of 1 on either side is broadcast to the other.
    """
    if light.dim() != 3 or light.shape[-2:] != (9, 3):
        raise ValueError(f"light must be (B, 9, 3), got {tuple(light.shape)}")
    if normals.dim() < 2 or normals.shape[-1] != 3:
        raise ValueError(f"normals must be (B, ..., 3), got {tuple(normals.shape)}")
    basis = sh_basis(normals).reshape(normals.shape[0], -1, 9)
    out = torch.matmul(basis, light.to(basis.dtype))
    return out.reshape(out.shape[0], *normals.shape[1:-1], 3)


def _band2_matrix(coeffs: torch.Tensor) -> torch.Tensor:
    """Order-2 coefficients (..., 5) -> the traceless symmetric M with n^T M n = their shading."""
    c = SH_CONSTANTS
    l4, l5, l6, l7, l8 = coeffs.unbind(-1)
    a = c[7] * l7
    b = c[8] * l8
    rows = [
        torch.stack([a - b, 0.5 * c[4] * l4, 0.5 * c[5] * l5], -1),
        torch.stack([0.5 * c[4] * l4, -a - b, 0.5 * c[6] * l6], -1),
        torch.stack([0.5 * c[5] * l5, 0.5 * c[6] * l6, 2 * b], -1),
    ]
    return torch.stack(rows, -2)


def _band2_coeffs(m: torch.Tensor) -> torch.Tensor:
    """Inverse of _band2_matrix for a traceless symmetric (..., 3, 3) matrix."""
    c = SH_CONSTANTS
    return torch.stack([
        2 * m[..., 0, 1] / c[4],
        2 * m[..., 0, 2] / c[5],
        2 * m[..., 1, 2] / c[6],
        (m[..., 0, 0] - m[..., 1, 1]) / (2 * c[7]),
        m[..., 2, 2] / (2 * c[8]),
    ], -1)


def rotate_sh(light: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """The light turned by `rotation`: shading(R n, rotate_sh(light, R)) == shading(n, light).

    light: (B, 9, 3); rotation: (B, 3, 3) or (3, 3), a proper rotation acting on normals in the same
    frame (e.g. a head pose's rotation, so the lighting follows the head). Exact for orthonormal R
    and unit normals (the order-2 basis 3z^2 - 1 assumes |n| = 1). A batch of 1 is broadcast.
    """
    if light.shape[-2:] != (9, 3):
        raise ValueError(f"light must be (B, 9, 3), got {tuple(light.shape)}")
    r = rotation.to(light)
    if r.dim() == 2:
        r = r[None]
    per_channel = light.transpose(-1, -2)  # (B, 3 channels, 9)
    r4 = r[:, None]  # (B, 1, 3, 3), shared by the colour channels
    band1 = (r4 @ per_channel[..., 1:4, None]).squeeze(-1)
    m = _band2_matrix(per_channel[..., 4:9])  # (B, C, 3, 3)
    band2 = _band2_coeffs(r4 @ m @ r4.transpose(-1, -2))
    band0 = per_channel[..., :1].expand(band1.shape[0], -1, -1)
    return torch.cat([band0, band1, band2], -1).transpose(-1, -2)


def _rgb(value, like: torch.Tensor, vector: str) -> torch.Tensor:
    """A scalar, a 1-D tensor (read as RGB or as per-batch, per `vector`) or (B, 3), as (B or 1, 3)."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if t.dim() == 0:
        return t.reshape(1, 1).expand(1, 3)
    if t.dim() == 1:
        return t[None] if vector == "rgb" else t[:, None].expand(-1, 3)
    return t


def sh_from_direction(direction: torch.Tensor, intensity: float | torch.Tensor = 1.0,
                      colour: torch.Tensor | None = None, ambient: float | torch.Tensor = 0.0) -> torch.Tensor:
    """A (B, 9, 3) light approximating ambient + intensity * colour * max(0, n . d).

    direction: (B, 3) or (3,), pointing from the surface toward the light, in the normals' frame
    (not necessarily unit). intensity: scalar or (B,). colour: (B, 3) or (3,) RGB, default white.
    ambient: scalar, (B,) or (B, 3), added uniformly. The order-2 truncation of the clamped cosine is
    smooth: it gives 1.0625 (not 1) facing the light, 0.0625 facing away and about 0.09 at grazing
    angles, per unit intensity.
    """
    d = direction if direction.is_floating_point() else direction.float()
    if d.dim() == 1:
        d = d[None]
    d = torch.nn.functional.normalize(d, dim=-1, eps=1e-12)
    col = _rgb(1.0 if colour is None else colour, d, vector="rgb")
    amb = _rgb(ambient, d, vector="batch")
    inten = torch.as_tensor(intensity, dtype=d.dtype, device=d.device).reshape(-1, 1)
    strength = inten * col  # (B, 3)
    bsz = max(d.shape[0], strength.shape[0], amb.shape[0])
    d, strength, amb = d.expand(bsz, 3), strength.expand(bsz, 3), amb.expand(bsz, 3)
    c = SH_CONSTANTS
    band0 = (_COSINE_LOBE[0] * strength + amb) / c[0]  # (B, 3 rgb)
    band1 = _COSINE_LOBE[1] * d[:, :, None] * strength[:, None, :] / c[1]  # (B, 3 xyz, 3 rgb)
    outer = 3 * d[:, :, None] * d[:, None, :] - torch.eye(3, dtype=d.dtype, device=d.device)
    m = _COSINE_LOBE[2] * strength[:, :, None, None] * outer[:, None]  # (B, 3 rgb, 3, 3)
    band2 = _band2_coeffs(m).transpose(-1, -2)  # (B, 5, 3 rgb)
    return torch.cat([band0[:, None], band1, band2], 1)
