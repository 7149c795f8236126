"""The rig-driven preview edit of a photo: what the README's main job runs with no diffusion weights.

The fitted rig and its edited copy are rendered in the aligned crop; the crop is warped along the
mesh's motion and relit by the ratio of new to old shading (preview_edit.py). A batch of edited
rigs made from one fitted face (an animation) gives one edited crop per frame.
"""
from __future__ import annotations

import torch

from ..faces.crops import FaceCropInfo, FaceCrops
from .preview_edit import preview_edit
from .render import render_rig
from .rig import FaceRig


def pair_for_edit(crops: torch.Tensor, fitted: FaceRig, edited: FaceRig) -> tuple[torch.Tensor, FaceRig]:
    """Crops and fitted rig repeated to match the edited batch (one fitted face -> many frames)."""
    if fitted.geometry != edited.geometry or fitted.crop_size != edited.crop_size:
        raise ValueError(f"the edited rig ({edited.geometry}, {edited.crop_size} px) was not made from this fitted rig "
                         f"({fitted.geometry}, {fitted.crop_size} px)")
    if crops.shape[0] != len(fitted) or crops.shape[1] != fitted.crop_size:
        raise ValueError(f"{crops.shape[0]} crops of {crops.shape[1]} px for a rig of {len(fitted)} faces at "
                         f"{fitted.crop_size} px: wire the crops the rig was fitted on")
    n = len(edited)
    if len(fitted) == n:
        return crops, fitted
    if len(fitted) == 1:
        return crops.expand(n, -1, -1, -1), fitted.expand_to(n)
    raise ValueError(f"{len(edited)} edited faces for {len(fitted)} fitted ones: give one fitted face, or as many")


def edit_crops(crops: torch.Tensor, fitted: FaceRig, edited: FaceRig, flame=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(edited crops (N, S, S, 3), change mask (N, S, S)) for each edited face (`flame`: a FLAME rig's assets)."""
    crops, fitted = pair_for_edit(crops[..., :3], fitted, edited)
    before, after = render_rig(fitted, flame=flame), render_rig(edited, flame=flame)
    out, mask = preview_edit(crops, screen_old=before.mesh.screen, screen_new=after.mesh.screen,
                             faces=before.mesh.faces, shading_old=before.buffers.shading,
                             shading_new=after.buffers.shading, mask_old=before.buffers.mask)
    if fitted.crops is not None:  # placeholder crops (no face in that frame) stay as they were
        valid = torch.tensor([c.valid for c in fitted.crops.items], device=out.device)
        out = torch.where(valid[:, None, None, None], out, crops)
        mask = torch.where(valid[:, None, None], mask, torch.zeros_like(mask))
    return out, mask


def frames_for_paste(images: torch.Tensor, fitted: FaceRig, n: int) -> tuple[torch.Tensor, FaceCrops]:
    """The frames and FACE_CROP to paste n edited crops into: the fitted rig's frames when the batch
    sizes match, else (an animation of one face) its frame repeated once per edited crop."""
    if fitted.crops is None:
        raise ValueError("this rig carries no crop record (it was not fitted on Face Align Crop output)")
    if len(fitted) == n:
        return images, fitted.crops
    item = fitted.crops.items[0]
    frames = images[item.source_index:item.source_index + 1].expand(n, -1, -1, -1)
    records = tuple(FaceCropInfo(i, item.source_size, item.crop_size, item.affine, item.detection, item.face_index)
                    for i in range(n))
    return frames, FaceCrops(records)
