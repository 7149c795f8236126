"""The dense backward flow of a mesh edit: where each pixel of the edited crop takes its colour from.

Pixel conventions are the rasterizer's: x right, y down, pixel (i, j) centred at (i + 0.5, j + 0.5).
A flow f (B, H, W, 2) is backward: the output pixel centre p shows the input at p + f(p).

Inside the edited (new) mesh's coverage the flow is exact: p fetches the old screen position of the
surface point it now shows. Outside, the border's displacement is carried outward by a push-pull
(pyramid normalised convolution) and faded to exactly zero over `falloff` pixels, so hair and
background next to the face follow it, the rest of the crop stays put, and no seam shows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..faces.filters import gaussian_blur
from ..render.interpolate import covered_pixels, interpolate_at
from ..render.raster import rasterize

# Default falloff as a fraction of the crop side, and the widening that keeps the map one-to-one:
# the fade's steepest slope is 1.5 / falloff, so a displacement |d| folds the background unless
# falloff > 1.5 |d|; the default takes at least FOLD_MARGIN * |d|.
DEFAULT_FALLOFF_FRACTION = 0.15
FOLD_MARGIN = 2.0
# The change mask reaches 1 at this flow length (px) and is then feathered by a blur of this sigma.
MASK_FULL_PX = 0.5
MASK_FEATHER_PX = 2.0
# Push-pull's low-pass: the 4-tap binomial, whose stride-2 output i sits at fine coordinate 2i + 1,
# exactly where align_corners=False bilinear upsampling expects coarse pixel i.
_TAPS = (0.125, 0.375, 0.375, 0.125)


@dataclass(frozen=True)
class MeshFlow:
    """flow: (B, H, W, 2) backward offsets in pixels; mask: (B, H, W) in [0, 1], feathered, where the
    flow is non-negligible; coverage: (B, H, W) bool, the new mesh's coverage."""

    flow: torch.Tensor
    mask: torch.Tensor
    coverage: torch.Tensor


def _down(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) low-passed and halved (odd sides are zero-padded first)."""
    c = x.shape[1]
    x = F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
    k = torch.tensor(_TAPS, dtype=x.dtype, device=x.device)
    x = F.conv2d(x, k.view(1, 1, 1, 4).expand(c, 1, 1, 4), stride=(1, 2), padding=(0, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, 4, 1).expand(c, 1, 4, 1), stride=(2, 1), padding=(1, 0), groups=c)


def push_pull(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Fill (N, C, H, W) `values` everywhere from where `weights` (N, 1, H, W) in [0, 1] vouch for them.

    Push (Gortler et al. 1996, "The Lumigraph"): a pyramid of weighted averages, each level's
    confidence the sum of its children's, saturating at 1, so a coarse cell touched by known pixels
    counts as known and far averages cannot outvote near ones. Pull: each level keeps its own value
    in proportion to its confidence and takes the rest from the coarser level, upsampled. The result
    equals `values` where the weight is 1, follows the nearest known pixels, and varies smoothly
    (bilinearly, level by level) elsewhere. No weight at all gives zeros.
    """
    value, conf = values, weights
    tiny = torch.finfo(conf.dtype).tiny
    levels = []
    while value.shape[-2] > 1 or value.shape[-1] > 1:
        levels.append((value, conf))
        mean_conf = _down(conf)
        value = torch.where(mean_conf > 0, _down(value * conf) / mean_conf.clamp_min(tiny), 0.0)
        conf = (4.0 * mean_conf).clamp(max=1.0)  # a parent stands for four children
    filled = value
    for value, conf in reversed(levels):
        h, w = value.shape[-2:]
        up = F.interpolate(filled, scale_factor=2.0, mode="bilinear", align_corners=False)[..., :h, :w]
        filled = torch.lerp(up, value, conf)
    return filled


def distance_to(covered: torch.Tensor, limit: float) -> torch.Tensor:
    """Euclidean distance (B, H, W) from each pixel centre to the nearest covered one, capped at `limit`.

    Exact below the cap: a row pass finds the horizontal distance with running max/min of covered
    columns, then a column pass takes the min over |k| < limit of dx(y + k)^2 + k^2.
    """
    b, h, w = covered.shape
    cols = torch.arange(w, dtype=torch.float32, device=covered.device).expand(b, h, w)
    inf = torch.full_like(cols, math.inf)
    left = torch.where(covered, cols, -inf).cummax(-1).values
    right = torch.where(covered, cols, inf).flip(-1).cummin(-1).values.flip(-1)
    dx2 = torch.minimum(cols - left, right - cols).clamp(max=limit).square()
    best = dx2.clone()
    for k in range(1, min(h, math.ceil(limit))):
        k2 = float(k * k)
        torch.minimum(best[:, k:], dx2[:, :-k] + k2, out=best[:, k:])
        torch.minimum(best[:, :-k], dx2[:, k:] + k2, out=best[:, :-k])
    return best.sqrt().clamp(max=limit)


def change_mask(flow: torch.Tensor) -> torch.Tensor:
    """(B, H, W) weight of the pixels a flow moves: 0 where it is zero, 1 from MASK_FULL_PX on, feathered."""
    t = (flow.norm(dim=-1) / MASK_FULL_PX).clamp(0.0, 1.0)
    ramp = t * t * (3.0 - 2.0 * t)
    soft = gaussian_blur(ramp[:, None], MASK_FEATHER_PX, border="replicate")[:, 0]
    return torch.maximum(ramp, soft).clamp(0.0, 1.0)


def _falloff(border_disp: torch.Tensor, ring: torch.Tensor, side: int, falloff_px: float | None) -> torch.Tensor:
    """(B,) fade width: the given one, or the default widened against folding by the border's displacement."""
    b = ring.shape[0]
    if falloff_px is not None:
        if not falloff_px > 0:
            raise ValueError(f"falloff_px must be positive, got {falloff_px}")
        return torch.full((b,), float(falloff_px), device=ring.device)
    biggest = (border_disp.norm(dim=-1) * ring).flatten(1).amax(1)
    return torch.clamp(FOLD_MARGIN * biggest.float(), min=DEFAULT_FALLOFF_FRACTION * side)


def mesh_flow(screen_old: torch.Tensor, screen_new: torch.Tensor, faces: torch.Tensor, height: int, width: int,
              *, falloff_px: float | None = None) -> MeshFlow:
    """The backward flow that moves the face from its old to its new mesh position.

    screen_old, screen_new: (B, V, 3) screen positions (x, y, depth) of the same vertices before and
    after the edit; only the new depth matters (it decides visibility in the edited crop). A surface
    point hidden in the old crop but visible in the new one fetches whatever the old crop showed there.
    falloff_px: how far outside the new mesh the motion fades to zero; default
    DEFAULT_FALLOFF_FRACTION of the larger side, widened to FOLD_MARGIN x the border's displacement.
    Items whose old and new xy are equal get an exactly zero flow.
    """
    if screen_old.shape != screen_new.shape or screen_new.dim() != 3 or screen_new.shape[-1] != 3:
        raise ValueError(f"screen_old and screen_new must both be (B, V, 3), got {tuple(screen_old.shape)} "
                         f"and {tuple(screen_new.shape)}")
    dtype = torch.float64 if screen_new.dtype == torch.float64 else torch.float32
    b, npix = screen_new.shape[0], height * width
    frags = rasterize(screen_new, faces, height, width)
    pixels = covered_pixels(frags)
    old_xy = interpolate_at(frags, pixels, screen_old[..., :2].detach().to(dtype))
    pix = pixels % npix
    centre = torch.stack([pix % width, torch.div(pix, width, rounding_mode="floor")], -1).to(dtype) + 0.5
    disp = torch.zeros(b * npix, 2, dtype=dtype, device=screen_new.device)
    disp[pixels] = old_xy - centre
    disp = disp.view(b, height, width, 2)

    covered = frags.mask
    uncovered_near = F.max_pool2d((~covered)[:, None].to(dtype), 3, stride=1, padding=1)[:, 0] > 0
    ring = (covered & uncovered_near).to(dtype)  # the coverage's inner border: what the outside follows
    falloff = _falloff(disp, ring, max(height, width), falloff_px).to(dtype)
    outside = push_pull(disp.permute(0, 3, 1, 2), ring[:, None]).permute(0, 2, 3, 1)
    # distance to the coverage's edge, about half a pixel short of the nearest covered pixel centre
    edge_distance = distance_to(covered, float(falloff.max()) + 1.0).to(dtype) - 0.5
    t = (edge_distance / falloff[:, None, None]).clamp(0.0, 1.0)
    fade = 1.0 - t * t * (3.0 - 2.0 * t)  # smoothstep: flat at the border (no seam) and at the far end
    flow = torch.where(covered[..., None], disp, outside * fade[..., None])

    unchanged = (screen_old[..., :2] == screen_new[..., :2]).flatten(1).all(1)
    flow = flow.masked_fill(unchanged[:, None, None, None], 0.0)
    return MeshFlow(flow=flow, mask=change_mask(flow), coverage=covered)


def sample_flow(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """(B, H, W, C) image resampled along a backward flow: bilinear, edge pixels repeated beyond the
    border. Pixels whose flow is exactly zero are copied, so a zero flow returns the image bit for bit."""
    b, h, w, c = image.shape
    if flow.shape != (b, h, w, 2):
        raise ValueError(f"flow must be {(b, h, w, 2)}, got {tuple(flow.shape)}")
    work = image.dtype if image.dtype in (torch.float32, torch.float64) else torch.float32
    f = flow.to(device=image.device, dtype=work)
    xs = torch.arange(w, device=image.device, dtype=work) + 0.5
    ys = torch.arange(h, device=image.device, dtype=work) + 0.5
    grid = torch.stack([(xs + f[..., 0]) * (2.0 / w) - 1.0, (ys[:, None] + f[..., 1]) * (2.0 / h) - 1.0], -1)
    out = F.grid_sample(image.permute(0, 3, 1, 2).to(work), grid, mode="bilinear", padding_mode="border",
                        align_corners=False).permute(0, 2, 3, 1).to(image.dtype)
    return torch.where((f == 0).all(-1, keepdim=True), image, out)
