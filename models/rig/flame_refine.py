"""FaceFit, FLAME backend: optional refinement of DECA's fit on the detector's dense landmarks.

DECA regresses the rig from one look at a 224 px crop, so its pose, expression, jaw and camera are
coarse. The detector's 468 landmarks are a much tighter target: each corresponds to a FLAME surface
point (flame_units.flame_correspondence), and the rig is moved so those points project onto them.

* Only x, y in crop pixels are fitted (the landmark model's z is unreliable).
* The face outline counts less (OUTLINE_WEIGHT): a contour landmark slides along the cheek as the
  head turns, so its fixed FLAME counterpart is only approximately right.
* Loss per face: weighted mean squared distance / inter-ocular distance^2, plus L2 priors on the
  change of shape, expression and jaw (weighted like expression) from the starting fit: DECA saw
  the whole face, and 2D points barely constrain identity (raise shape_weight to hold it closer).
  A rig already on its landmarks thus has zero loss and zero gradient and stays exactly where it
  is; the jaw's prior stops it trading places with the global pose where landmarks cannot tell.
* L-BFGS on well-scaled unknowns (log camera scale, NDC shift): a few dozen iterations converge,
  where Adam would need a tuned step per parameter.
* The fit is refined without the rig's action-unit edits (they sit on top of the fit).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from ..faces.crops import FaceCrops
from .flame_units import flame_correspondence
from .geometry import to_screen
from .rig import FaceRig
from .topology import load_mesh468

if TYPE_CHECKING:
    from .flame_backend import FlameAssets

OUTLINE_WEIGHT = 0.3


def _targets(info: FaceCrops, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 468, 2) landmarks in crop pixels and (B,) which faces have them."""
    points = np.zeros((len(info), 468, 2))
    has = np.zeros(len(info), dtype=bool)
    for b, item in enumerate(info.items):
        face = item.detection
        if face is None or face.landmarks is None:
            continue
        if item.crop_size != size:
            raise ValueError(f"crop {b} is {item.crop_size} px but the rig is fitted at {size} px")
        lm = np.asarray(face.landmarks, dtype=np.float64)[:, :2]
        points[b], has[b] = lm @ item.affine[:, :2].T + item.affine[:, 2], True
    return torch.from_numpy(points), torch.from_numpy(has)


def _point_weights(assets: "FlameAssets") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FLAME vertex triples and barycentric weights of the matched mesh points, and each point's weight."""
    corr = flame_correspondence(assets)
    mesh = load_mesh468()
    weight = torch.ones(468, dtype=torch.float64)
    weight[mesh.group("face_oval")] = OUTLINE_WEIGHT
    weight = weight * corr.valid.double()
    return corr.vertices, corr.weights, weight


def _interocular(targets: torch.Tensor) -> torch.Tensor:
    """(B,) pixels between the eye centres (mean of each eye's contour)."""
    mesh = load_mesh468()
    right = targets[:, list(mesh.groups["right_eye"])].mean(1)
    left = targets[:, list(mesh.groups["left_eye"])].mean(1)
    return (left - right).norm(dim=-1)


def _projected(assets: "FlameAssets", vertices: torch.Tensor, bary: torch.Tensor, shape, expression, pose, jaw,
               eyes, camera, size: int) -> torch.Tensor:
    """(B, 468, 2) crop pixels of the mesh points' FLAME counterparts."""
    like = assets.model.v_template
    verts = assets.model(shape.to(like), expression.to(like), torch.cat([pose, jaw], 1).to(like),
                         eye_pose=eyes.to(like))
    points = (verts[:, vertices.to(verts.device)] * bary.to(verts)[..., None]).sum(2)
    return to_screen(points, camera.to(points), size)[..., :2]


def landmark_error(rig: FaceRig, info: FaceCrops, assets: "FlameAssets") -> torch.Tensor:
    """(B,) float64: mean 2D distance of the matched landmarks (all weighted alike) / inter-ocular
    distance; NaN where the crop has no landmarks (placeholders)."""
    if rig.geometry != "flame" or len(info) != len(rig):
        raise ValueError(f"landmark_error needs a FLAME rig and its {len(rig)} crops, got a {rig.geometry!r} "
                         f"rig and {len(info)} crops")
    targets, has = _targets(info, rig.crop_size)
    vertices, bary, weight = _point_weights(assets)
    with torch.no_grad():
        screen = _projected(assets, vertices, bary, rig.identity, rig.expression, rig.pose, rig.jaw, rig.eyes,
                            rig.camera, rig.crop_size).double().cpu()
    valid = weight > 0
    distance = (screen - targets)[:, valid].norm(dim=-1).mean(1) / _interocular(targets)
    return torch.where(has, distance, torch.full_like(distance, float("nan")))


def refine_flame_fit(rig: FaceRig, info: FaceCrops, assets: "FlameAssets", *, steps: int = 60,
                     shape_weight: float = 1e-3, expression_weight: float = 1e-3,
                     check_interrupt: Callable[[], None] | None = None) -> FaceRig:
    """The rig with pose, jaw, expression, camera and (held closer) shape fitted to the crops' landmarks
    (see the module docstring); faces without landmarks and `steps=0` come back unchanged."""
    if rig.geometry != "flame" or len(info) != len(rig):
        raise ValueError(f"refine_flame_fit needs a FLAME rig and its {len(rig)} crops, got a {rig.geometry!r} "
                         f"rig and {len(info)} crops")
    # ComfyUI runs nodes under inference mode; the optimiser needs ordinary tensors and autograd
    with torch.inference_mode(False), torch.enable_grad():
        targets, has = _targets(info, rig.crop_size)
        if steps <= 0 or not bool(has.any()):
            return rig.replace()
        rows = torch.nonzero(has).squeeze(1)
        vertices, bary, weight = _point_weights(assets)
        like = assets.model.v_template
        targets = targets[rows].to(like)
        norm = (weight / weight.sum()).to(like)[None] / _interocular(targets)[:, None] ** 2  # (N, 468)
        start = {name: getattr(rig, name)[rows.to(rig.device)].detach().to(like).clone()
                 for name in ("identity", "expression", "pose", "jaw", "eyes", "camera")}
        scale0, shift0 = start["camera"][:, :1], start["camera"][:, 1:]
        unknowns = {name: torch.zeros_like(start[name], requires_grad=True)
                    for name in ("identity", "expression", "pose", "jaw")}
        unknowns["log_scale"] = torch.zeros_like(scale0, requires_grad=True)
        unknowns["shift_ndc"] = torch.zeros_like(shift0, requires_grad=True)

        def current() -> dict[str, torch.Tensor]:
            camera = torch.cat([scale0 * unknowns["log_scale"].exp(), shift0 + unknowns["shift_ndc"] / scale0], 1)
            return {name: start[name] + unknowns[name] for name in ("identity", "expression", "pose", "jaw")} | {
                "camera": camera}

        def closure() -> torch.Tensor:
            if check_interrupt is not None:
                check_interrupt()
            optimizer.zero_grad()
            p = current()
            screen = _projected(assets, vertices, bary, p["identity"], p["expression"], p["pose"], p["jaw"],
                                start["eyes"], p["camera"], rig.crop_size)
            data = (((screen - targets) ** 2).sum(-1) * norm).sum()
            prior = (shape_weight * unknowns["identity"].pow(2).sum()
                     + expression_weight * (unknowns["expression"].pow(2).sum() + unknowns["jaw"].pow(2).sum()))
            loss = data + prior
            loss.backward()
            return loss

        optimizer = torch.optim.LBFGS(list(unknowns.values()), lr=1.0, max_iter=steps, max_eval=2 * steps,
                                      tolerance_grad=1e-9, tolerance_change=1e-12, history_size=20,
                                      line_search_fn="strong_wolfe")
        optimizer.step(closure)
        with torch.no_grad():
            fitted = current()
        return rig.replace(**{name: getattr(rig, name).index_copy(0, rows.to(rig.device), value.to(getattr(rig, name)))
                              for name, value in fitted.items()})
