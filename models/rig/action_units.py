"""FACS action units as displacement fields of the 468-point face mesh.

A unit is a fixed displacement of every vertex of the canonical neutral shape (canonical frame,
metres) at weight 1.0, meant as a strong but plausible expression; weights combine linearly, and
each unit's scale at 1.0 is listed in ACTION_UNITS' comments. A unit is written as a few anchor
vertices with hand-set displacements plus "pins" that must stay put, all for the subject's right
side and the midline; the left side is their mirror image. The rest of the mesh follows by screened
harmonic interpolation on the mesh graph: the field takes exactly the anchors' and pins' values, fades
out over a per-unit radius, never overshoots them (maximum principle, unlike a Gaussian RBF solve,
which bulges and blows up between close anchors with different values), and flows around the mouth
and eye openings (holes in the mesh), so a lower-lip unit leaves the upper lip alone. Region weights
keep eyelid units off the brows and brow units off the eyelids.

Symmetric units are made exactly mirror-symmetric with `mesh.mirror`. One-sided units ("_left",
"_right") are their symmetric unit times a smooth left/right split, so left + right equals the
symmetric unit (up to rounding) and right is exactly the mirror image of left. "Left" is the
subject's left, which appears on the image's right (x > 0).

The one-sided units are linearly dependent on the symmetric ones; a fitter solving for all columns
needs a prior (or should leave some out).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from .jaw import JAW_PIVOT, LIPS_LOWER_INNER, LIPS_LOWER_OUTER, LIPS_UPPER_INNER, LIPS_UPPER_OUTER, jaw_weights
from .topology import Mesh468


@dataclass(frozen=True)
class ActionUnit:
    key: str  # stable id used in files and node inputs
    label: str  # user-facing
    facs: int | None  # FACS action unit number


ACTION_UNITS: tuple[ActionUnit, ...] = (
    ActionUnit("au1_inner_brow_raiser", "Inner brow raiser (AU1)", 1),  # inner brow up 8 mm
    ActionUnit("au2_outer_brow_raiser", "Outer brow raiser (AU2)", 2),  # outer brow up 8 mm
    ActionUnit("au2_outer_brow_raiser_left", "Outer brow raiser, left (L2)", 2),
    ActionUnit("au2_outer_brow_raiser_right", "Outer brow raiser, right (R2)", 2),
    ActionUnit("au4_brow_lowerer", "Brow lowerer (AU4)", 4),  # inner brow down 5 mm, in 3 mm
    ActionUnit("au5_upper_lid_raiser", "Upper lid raiser (AU5)", 5),  # upper lid up 2.5 mm
    ActionUnit("au6_cheek_raiser", "Cheek raiser (AU6)", 6),  # cheeks up 4 mm, lower lid up 1.2 mm
    ActionUnit("au7_lid_tightener", "Lid tightener (AU7)", 7),  # lower lid up 2 mm, upper down 1 mm
    ActionUnit("au9_nose_wrinkler", "Nose wrinkler (AU9)", 9),  # nose wings up 3.5 mm
    ActionUnit("au10_upper_lip_raiser", "Upper lip raiser (AU10)", 10),  # upper lip up 4 mm at the centre
    ActionUnit("au12_lip_corner_puller", "Lip corner puller (AU12)", 12),  # corners 6 up, 5 out, 4 back
    ActionUnit("au12_lip_corner_puller_left", "Lip corner puller, left (L12)", 12),
    ActionUnit("au12_lip_corner_puller_right", "Lip corner puller, right (R12)", 12),
    ActionUnit("au14_dimpler", "Dimpler (AU14)", 14),  # corners back 4 mm
    ActionUnit("au14_dimpler_left", "Dimpler, left (L14)", 14),
    ActionUnit("au14_dimpler_right", "Dimpler, right (R14)", 14),
    ActionUnit("au15_lip_corner_depressor", "Lip corner depressor (AU15)", 15),  # corners down 5 mm
    ActionUnit("au16_lower_lip_depressor", "Lower lip depressor (AU16)", 16),  # lower lip down 5 mm
    ActionUnit("au17_chin_raiser", "Chin raiser (AU17)", 17),  # chin boss up 4 mm, lower lip out 3 mm
    ActionUnit("au18_lip_pucker", "Lip pucker (AU18)", 18),  # corners in 8.6 mm, lips forward 5-8 mm
    ActionUnit("au20_lip_stretcher", "Lip stretcher (AU20)", 20),  # corners out 5.8 mm
    ActionUnit("au23_lip_tightener", "Lip tightener (AU23)", 23),  # each red lip 1.5 mm thinner, rolled in
    ActionUnit("au24_lip_pressor", "Lip pressor (AU24)", 24),  # lips pressed shut, 1 mm thinner
    ActionUnit("au25_lips_part", "Lips part (AU25)", 25),  # lips 4.2 mm further apart
    ActionUnit("au26_jaw_drop", "Jaw drop (AU26)", 26),  # jaw swung 8 degrees: lower lip down 11.5 mm
    ActionUnit("au45_blink", "Blink (AU45)", 45),  # upper lids on the lower lids
    ActionUnit("au45_blink_left", "Wink left (L45)", 45),
    ActionUnit("au45_blink_right", "Wink right (R45)", 45),
)

# Landmarks of the subject's right side (mediapipe indices); the left side is their mirror image.
CHEEK = (50, 101, 36, 205)  # the cheek prominence
CHEEK_RIM = (118, 117, 119, 100, 123, 187)  # around it
UNDER_EYE = (31, 228, 229, 230, 231, 232)  # the ring below the lower-lid ring
NOSE_WING = (48, 64, 98, 129, 102, 49, 219, 235, 240, 115)
NOSTRIL = (218, 166, 59, 79, 75)
NOSE_SIDE = (131, 209, 198, 126, 217, 47)
NOSE_TIP = (1, 4)
NOSE_BRIDGE = (168, 6, 193)
SUBNASAL = (2, 164)
CHIN = (18, 200, 199, 175, 152)
# Each lip as columns running from its outer contour through two interior rows to its inner contour.
UPPER_LIP = ((0, 11, 12, 13), (37, 72, 38, 82), (39, 73, 41, 81), (40, 74, 42, 80), (185, 184, 183, 191))
LOWER_LIP = ((17, 16, 15, 14), (84, 85, 86, 87), (181, 180, 179, 178), (91, 90, 89, 88), (146, 77, 96, 95))
MOUTH_CORNERS = (61, 78)  # outer and inner

SIDE_SPLIT_MM = 12.0  # half-width of the left/right split around the midline
BLINK_LIFT_MM = 0.3  # a closed upper lid rests this far above the lower lid
JAW_DROP_DEGREES = 8.0

Vec = tuple[float, float, float]


def _smoothstep01(t: torch.Tensor) -> torch.Tensor:
    t = t.clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class _Face:
    """The canonical shape in millimetres (float64) and the landmark sets the units are built from."""

    def __init__(self, mesh: Mesh468):
        self.mesh = mesh
        self.p = mesh.canonical.double() * 1000.0
        self.mirror = mesh.mirror
        self.upper_lid, self.lower_lid, self.eye_corners = self._eyelids(mesh.groups["right_eye"])
        brow = list(mesh.groups["right_eyebrow"])
        ax = self.p[brow, 0].abs()
        self.brow = dict(zip(brow, ((ax - ax.min()) / (ax.max() - ax.min())).tolist()))  # 0 inner .. 1 outer
        self.eyes = mesh.group("left_eye", "right_eye")
        self.brows = mesh.group("left_eyebrow", "right_eyebrow")
        self.hairline = [i for i in mesh.groups["face_oval"] if self.p[i, 1] > 45.0]  # the oval above the brows
        self.laplacian, self.valence = self._laplacian(mesh.triangles)
        self.brow_side = self._partition(self.brows, self.eyes)
        self.lid_side = self._partition(self.eyes, self.brows)
        corner = self.p[LIPS_UPPER_OUTER[0]]
        self.mouth_half_width = float(-corner[0])

    def _eyelids(self, group: Iterable[int]) -> tuple[dict[int, float], dict[int, float], list[int]]:
        """Upper and lower lid vertices (above / below the corner-to-corner line), each with the
        profile sin(pi u) of its position u between the corners, and the two corners."""
        idx = sorted(group, key=lambda i: float(self.p[i, 0]))
        corners = [idx[0], idx[-1]]
        a, b = self.p[corners[0]], self.p[corners[1]]
        upper, lower = {}, {}
        for i in idx[1:-1]:
            u = float((self.p[i, 0] - a[0]) / (b[0] - a[0]))
            above = float(self.p[i, 1] - (a[1] + u * (b[1] - a[1])))
            (upper if above > 0 else lower)[i] = float(np.sin(np.pi * u))
        return upper, lower, corners

    def _laplacian(self, triangles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mesh graph's Laplacian with edge weights 1 / length^2, and each vertex's valence."""
        edges = torch.cat([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
        edges = torch.unique(torch.sort(edges, 1).values, dim=0)
        weight = 1.0 / (self.p[edges[:, 0]] - self.p[edges[:, 1]]).pow(2).sum(1)
        adjacency = torch.zeros(len(self.p), len(self.p), dtype=torch.float64)
        adjacency[edges[:, 0], edges[:, 1]] = weight
        adjacency[edges[:, 1], edges[:, 0]] = weight
        return torch.diag(adjacency.sum(1)) - adjacency, (adjacency > 0).sum(1).double()

    def _partition(self, near: torch.Tensor, far: torch.Tensor) -> torch.Tensor:
        """(V,) weight: 1 at `near`, 0 at `far`, by relative distance to the two sets."""
        d_near = torch.cdist(self.p, self.p[near]).min(1).values
        d_far = torch.cdist(self.p, self.p[far]).min(1).values
        return _smoothstep01((d_far / (d_near + d_far) - 0.25) / 0.5)

    def lip_profile(self, v: int, floor: float = 0.0) -> float:
        """1 at the lips' midline falling to `floor` at the mouth corners (by |x|)."""
        s = min(abs(float(self.p[v, 0])) / self.mouth_half_width, 1.0)
        return floor + (1.0 - floor) * (1.0 - s * s)

    def lip_gap(self, v: int) -> float:
        """The vertical gap between the inner lip contours at vertex v's |x| (mm)."""
        def curve(contour):
            half = [i for i in contour if self.p[i, 0] <= 0]
            xs = (-self.p[half, 0]).numpy()
            order = np.argsort(xs)
            return xs[order], self.p[half, 1].numpy()[order]
        ax = abs(float(self.p[v, 0]))
        return float(np.interp(ax, *curve(LIPS_UPPER_INNER)) - np.interp(ax, *curve(LIPS_LOWER_INNER)))

    def field(self, moves: dict[int, Vec], pins: Iterable[int], radius: float) -> torch.Tensor:
        """(V, 3) mm through `moves` (subject's right side and midline) and their mirror images, zero at
        `pins` and theirs: the screened harmonic interpolant, which fades over about `radius` mm."""
        targets: dict[int, torch.Tensor] = {}
        for v in pins:
            targets[int(v)] = targets[int(self.mirror[v])] = torch.zeros(3, dtype=torch.float64)
        for v, d in moves.items():
            vec = torch.tensor(d, dtype=torch.float64)
            targets[v] = vec
            targets[int(self.mirror[v])] = vec * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
        fixed = torch.tensor(list(targets))
        values = torch.stack(list(targets.values()))
        free = torch.ones(len(self.p), dtype=torch.bool)
        free[fixed] = False
        # (L + valence / (4 r^2)) d = 0 at the free vertices: the screening term makes the field decay
        # like exp(-distance / r) (a triangle fan's Laplacian is about 1.5x the continuous one).
        system = self.laplacian + torch.diag(self.valence / (4.0 * radius**2))
        out = torch.zeros_like(self.p)
        out[fixed] = values
        out[free] = torch.linalg.solve(system[free][:, free], -system[free][:, fixed] @ values)
        return out


def _mirrored(d: torch.Tensor, mirror: torch.Tensor) -> torch.Tensor:
    """The mirror image of a displacement field: vertex v takes mirror[v]'s displacement, x negated."""
    return d[mirror] * torch.tensor([-1.0, 1.0, 1.0], dtype=d.dtype)


def _lip(columns: tuple[tuple[int, ...], ...], outer: Callable[[int], Vec],
         inner: Callable[[int], Vec]) -> dict[int, Vec]:
    """Moves of a whole lip: `outer` / `inner` give its contour vertices' displacements and the interior
    rows between them are interpolated, so the lip moves as a body."""
    moves = {}
    for column in columns:
        a, b = np.array(outer(column[0])), np.array(inner(column[-1]))
        for k, v in enumerate(column):
            moves[v] = tuple((a + (b - a) * k / (len(column) - 1)).tolist())
    return moves


# ----- the units, each as a field in millimetres (right-side anchors; the left side is mirrored) -----

def _brow_raiser(f: _Face, outer: bool) -> torch.Tensor:
    """Brows up; the hairline and the nose bridge stay, the forehead between them bunches."""
    moves = {}
    for v, t in f.brow.items():
        s = (t if outer else 1.0 - t) ** 1.5
        moves[v] = (0.0, 8.0 * s, -0.5 * s)
    if not outer:
        moves |= {9: (0.0, 5.0, 0.0), 8: (0.0, 2.0, 0.0)}  # the glabella, between the inner ends
    pins = [*f.eyes.tolist(), *f.hairline, *NOSE_BRIDGE]
    return f.field(moves, pins, radius=14.0) * f.brow_side[:, None]


def _brow_lowerer(f: _Face) -> torch.Tensor:
    """Brows down and drawn together, most at the inner ends; the glabella follows."""
    moves = {v: (3.0 * (1 - t) ** 2, -(2.0 + 3.0 * (1 - t)), 1.0 * (1 - t)) for v, t in f.brow.items()}
    moves |= {9: (0.0, -2.5, 0.5), 8: (0.0, -1.5, 0.3)}
    pins = [*f.eyes.tolist(), *f.hairline, 6]
    return f.field(moves, pins, radius=14.0) * f.brow_side[:, None]


def _upper_lid_raiser(f: _Face) -> torch.Tensor:
    """Upper lids lifted (most at their middle) and drawn back under the brow."""
    moves = {v: (0.0, 2.5 * w, -0.5 * w) for v, w in f.upper_lid.items()}
    pins = [*f.lower_lid, *f.eye_corners, *f.brows.tolist()]
    return f.field(moves, pins, radius=5.0) * f.lid_side[:, None]


def _lid_tightener(f: _Face) -> torch.Tensor:
    """The eye narrowed: lower lids straightened upward, upper lids a little down."""
    moves = {v: (0.0, 2.0 * w, 0.3 * w) for v, w in f.lower_lid.items()}
    moves |= {v: (0.0, -1.0 * w, 0.0) for v, w in f.upper_lid.items()}
    pins = [*f.eye_corners, *UNDER_EYE, *f.brows.tolist()]
    return f.field(moves, pins, radius=5.0) * f.lid_side[:, None]


def _blink(f: _Face) -> torch.Tensor:
    """Each upper-lid vertex comes to rest just above the lower lid at its own x."""
    rim = sorted([*f.lower_lid, *f.eye_corners], key=lambda i: float(f.p[i, 0]))
    rx, ry, rz = (f.p[rim, k].numpy() for k in range(3))
    moves = {}
    for v in f.upper_lid:
        x, y, z = f.p[v].tolist()
        low_y, low_z = np.interp(x, rx, ry), np.interp(x, rx, rz)
        moves[v] = (0.0, float(low_y + BLINK_LIFT_MM - y), float(0.5 * (low_z - z)))
    pins = [*f.lower_lid, *f.eye_corners, *f.brows.tolist()]
    return f.field(moves, pins, radius=5.0) * f.lid_side[:, None]


def _cheek_raiser(f: _Face) -> torch.Tensor:
    """Cheeks lifted and pushed forward, bunching the lower lid upward (crow's-feet region)."""
    moves = {v: (0.0, 4.0, 1.0) for v in CHEEK}
    moves |= {v: (0.0, 3.0, 0.5) for v in CHEEK_RIM}
    moves |= {v: (0.0, 2.0, 0.3) for v in UNDER_EYE}
    moves |= {v: (0.0, 1.2 * w, 0.0) for v, w in f.lower_lid.items()}
    pins = [*f.upper_lid, *f.eye_corners, *f.brows.tolist(), *NOSE_TIP, *LIPS_UPPER_OUTER, *LIPS_LOWER_OUTER]
    return f.field(moves, pins, radius=12.0)


def _nose_wrinkler(f: _Face) -> torch.Tensor:
    """Nose wings and the skin along the nose pulled up; the upper lip and inner brows follow."""
    moves = {v: (0.0, 3.5, 0.0) for v in NOSE_WING}
    moves |= {v: (0.0, 3.0, 0.0) for v in NOSTRIL}
    moves |= {v: (0.0, 2.5, 0.0) for v in NOSE_SIDE}
    moves |= {v: (0.0, 1.5, 0.0) for v in (165, 167, 97, *SUBNASAL)}
    moves |= {55: (0.0, -1.5, 0.0), 65: (0.0, -1.0, 0.0)}
    pins = [*f.eyes.tolist(), *LIPS_LOWER_OUTER, *LIPS_LOWER_INNER]
    return f.field(moves, pins, radius=8.0)


def _upper_lip_raiser(f: _Face) -> torch.Tensor:
    """Upper lip lifted, most at the centre; the nasolabial region and nose wings follow."""
    def lift(scale):
        return lambda v: (0.0, scale * f.lip_profile(v, floor=0.25), 0.5 * f.lip_profile(v, floor=0.25))

    moves = _lip(UPPER_LIP, outer=lift(4.0), inner=lift(3.2))
    moves |= {61: (0.0, 0.8, 0.0), 78: (0.0, 1.0, 0.0)}
    moves |= {v: (0.0, 2.0, 0.5) for v in (92, 165, 186, 206)}
    moves |= {v: (0.0, 1.0, 0.0) for v in (48, 64, 98)}
    pins = [v for column in LOWER_LIP for v in column] + [*NOSE_TIP]
    return f.field(moves, pins, radius=7.0)


def _lip_corner_puller(f: _Face) -> torch.Tensor:
    """Smile: corners up, out and back around the face; the cheeks bunch up."""
    moves = {61: (-5.0, 6.0, -4.0), 78: (-4.5, 5.5, -3.5)}
    moves |= {205: (0.0, 3.0, 1.5), 50: (0.0, 2.0, 1.0), 187: (-1.0, 3.0, 0.5), 207: (-1.0, 3.5, 1.0),
              216: (-1.0, 4.0, 1.0), 206: (0.0, 2.5, 1.0), 92: (-1.0, 3.0, 0.5)}
    moves |= {0: (0.0, 1.0, 0.0), 13: (0.0, 1.0, 0.0)}
    pins = [14, 17, *CHIN, *NOSE_TIP, *f.lower_lid, *f.eye_corners]
    return f.field(moves, pins, radius=10.0)


def _dimpler(f: _Face) -> torch.Tensor:
    """Corners tightened back into the cheek, dimpling beside them."""
    moves = {61: (-1.5, 1.0, -4.0), 78: (-1.0, 1.0, -3.5), 57: (0.0, 0.0, -2.5), 212: (0.0, 0.0, -1.5)}
    pins = [0, 13, 14, 17, *NOSE_TIP, *CHIN]
    return f.field(moves, pins, radius=7.0)


def _lip_corner_depressor(f: _Face) -> torch.Tensor:
    """Corners pulled down, with the skin below them; the lips' middle stays."""
    moves = {61: (-1.0, -5.0, -1.0), 78: (-1.0, -4.5, -1.0), 202: (0.0, -3.0, 0.0), 43: (0.0, -3.0, 0.0),
             57: (0.0, -2.5, 0.0), 204: (0.0, -1.5, 0.0)}
    pins = [0, 13, 14, 17, *SUBNASAL, *CHIN[1:]]
    return f.field(moves, pins, radius=9.0)


def _lower_lip_depressor(f: _Face) -> torch.Tensor:
    """Lower lip pulled down and everted; the upper lip and the mouth corners stay."""
    def drop(scale):
        return lambda v: (0.0, -scale * f.lip_profile(v, floor=0.2), 1.5 * f.lip_profile(v, floor=0.2))

    moves = _lip(LOWER_LIP, outer=drop(5.0), inner=drop(4.5))
    pins = [v for column in UPPER_LIP for v in column] + [*MOUTH_CORNERS, 152, 175]
    return f.field(moves, pins, radius=8.0)


def _chin_raiser(f: _Face) -> torch.Tensor:
    """Chin boss pushed up and forward, pouting the lower lip."""
    moves = {199: (0.0, 3.0, 2.0), 200: (0.0, 4.0, 2.0), 18: (0.0, 4.0, 2.5), 201: (0.0, 3.5, 1.5),
             83: (0.0, 4.0, 2.0), 175: (0.0, 2.0, 1.5), 194: (0.0, 2.5, 1.0), 182: (0.0, 2.5, 1.2),
             152: (0.0, 1.0, 1.0)}
    moves |= _lip(LOWER_LIP, outer=lambda v: (0.0, 2.0 * f.lip_profile(v), 3.0 * f.lip_profile(v)),
                  inner=lambda v: (0.0, 1.5 * f.lip_profile(v), 2.5 * f.lip_profile(v)))
    pins = [v for column in UPPER_LIP for v in column] + [*MOUTH_CORNERS]
    return f.field(moves, pins, radius=9.0)


def _all_lip_vertices() -> list[int]:
    return [v for column in (*UPPER_LIP, *LOWER_LIP) for v in column] + [*MOUTH_CORNERS]


def _lip_pucker(f: _Face) -> torch.Tensor:
    """Lips drawn toward the mouth's centre and pushed forward (a funnel)."""
    cy = float(0.5 * (f.p[13, 1] + f.p[14, 1]))
    moves = {}
    for v in _all_lip_vertices():
        x, y, _ = f.p[v].tolist()
        moves[v] = (-0.3 * x, -0.12 * (y - cy), 5.0 + 0.1 * abs(x))
    pins = [*NOSE_TIP, 199, 152, 50, 205]
    return f.field(moves, pins, radius=9.0)


def _lip_stretcher(f: _Face) -> torch.Tensor:
    """Lips stretched sideways and flattened: corners out, a little down and back."""
    moves = {}
    for v in _all_lip_vertices():
        s2 = 1.0 - f.lip_profile(v)
        moves[v] = (0.2 * float(f.p[v, 0]), -1.2 * s2, -1.5 * s2)
    pins = [*NOSE_TIP, 199, 152]
    return f.field(moves, pins, radius=9.0)


def _lip_tightener(f: _Face) -> torch.Tensor:
    """Red of the lips narrowed and rolled in a little; the mouth slightly narrower."""
    def move(dy):
        return lambda v: (-0.05 * float(f.p[v, 0]), dy * f.lip_profile(v, 0.5), -0.8 * f.lip_profile(v, 0.5))

    moves = _lip(UPPER_LIP, outer=move(-1.8), inner=move(-0.3)) | _lip(LOWER_LIP, outer=move(1.8), inner=move(0.3))
    moves |= {v: (-0.05 * float(f.p[v, 0]), 0.0, -0.5) for v in MOUTH_CORNERS}
    pins = [*SUBNASAL, 18, 200]
    return f.field(moves, pins, radius=5.0)


def _lip_pressor(f: _Face) -> torch.Tensor:
    """Lips pressed together: the inner contours meet halfway, the lips thin and press back."""
    def press(sign, thinning):
        return lambda v: (0.0, sign * (0.5 * f.lip_gap(v) + thinning * f.lip_profile(v)), -1.0 * f.lip_profile(v))

    moves = _lip(UPPER_LIP, outer=press(-1.0, 1.0), inner=press(-1.0, 0.0))
    moves |= _lip(LOWER_LIP, outer=press(1.0, 1.0), inner=press(1.0, 0.0))
    pins = [*MOUTH_CORNERS, *SUBNASAL, 18, 200]
    return f.field(moves, pins, radius=5.0)


def _lips_part(f: _Face) -> torch.Tensor:
    """Lips apart without the jaw: mostly the lower lip drops."""
    def move(dy, dz):
        return lambda v: (0.0, dy * f.lip_profile(v), dz * f.lip_profile(v))

    moves = _lip(LOWER_LIP, outer=move(-2.5, 0.3), inner=move(-3.0, 0.3))
    moves |= _lip(UPPER_LIP, outer=move(0.8, 0.0), inner=move(1.2, 0.0))
    pins = [*MOUTH_CORNERS, *SUBNASAL, 18, 200, 199]
    return f.field(moves, pins, radius=6.0)


def _jaw_drop(f: _Face) -> torch.Tensor:
    """The jaw rig's own motion (jaw_weights about JAW_PIVOT) at JAW_DROP_DEGREES, as a displacement."""
    angle = torch.tensor(np.radians(JAW_DROP_DEGREES), dtype=torch.float64)
    c, s = torch.cos(angle), torch.sin(angle)
    rel = f.p - torch.tensor(JAW_PIVOT, dtype=torch.float64) * 1000.0
    y, z = rel[:, 1], rel[:, 2]
    moved = torch.stack([torch.zeros_like(y), y * c - z * s - y, y * s + z * c - z], -1)
    return moved * jaw_weights(f.mesh).double()[:, None]


_BUILDERS: dict[str, Callable[[_Face], torch.Tensor]] = {
    "au1_inner_brow_raiser": lambda f: _brow_raiser(f, outer=False),
    "au2_outer_brow_raiser": lambda f: _brow_raiser(f, outer=True),
    "au4_brow_lowerer": _brow_lowerer,
    "au5_upper_lid_raiser": _upper_lid_raiser,
    "au6_cheek_raiser": _cheek_raiser,
    "au7_lid_tightener": _lid_tightener,
    "au9_nose_wrinkler": _nose_wrinkler,
    "au10_upper_lip_raiser": _upper_lip_raiser,
    "au12_lip_corner_puller": _lip_corner_puller,
    "au14_dimpler": _dimpler,
    "au15_lip_corner_depressor": _lip_corner_depressor,
    "au16_lower_lip_depressor": _lower_lip_depressor,
    "au17_chin_raiser": _chin_raiser,
    "au18_lip_pucker": _lip_pucker,
    "au20_lip_stretcher": _lip_stretcher,
    "au23_lip_tightener": _lip_tightener,
    "au24_lip_pressor": _lip_pressor,
    "au25_lips_part": _lips_part,
    "au26_jaw_drop": _jaw_drop,
    "au45_blink": _blink,
}

_CACHE: dict[int, tuple[Mesh468, torch.Tensor]] = {}


def _build_basis(mesh: Mesh468) -> torch.Tensor:
    face = _Face(mesh)
    left = _smoothstep01((face.p[:, 0] + SIDE_SPLIT_MM) / (2 * SIDE_SPLIT_MM))[:, None]
    symmetric: dict[str, torch.Tensor] = {}
    fields = []
    for unit in ACTION_UNITS:
        base, _, side = unit.key.rpartition("_") if unit.key.endswith(("_left", "_right")) else (unit.key, "", "")
        if base not in symmetric:
            d = _BUILDERS[base](face)
            symmetric[base] = 0.5 * (d + _mirrored(d, mesh.mirror))
        d = symmetric[base]
        if side:
            d = d * left
            d = d if side == "left" else _mirrored(d, mesh.mirror)
        fields.append(d)
    return (torch.stack(fields) / 1000.0).float()


def action_unit_basis(mesh: Mesh468) -> torch.Tensor:
    """(N_AU, 468, 3) float32: each unit's canonical-frame displacement in metres at weight 1.0.

    Built once per mesh and cached; each call returns a fresh copy.
    """
    cached = _CACHE.get(id(mesh))
    if cached is None or cached[0] is not mesh:
        cached = _CACHE[id(mesh)] = (mesh, _build_basis(mesh))
    return cached[1].clone()
