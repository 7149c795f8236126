"""Readers for the official, registration-gated FLAME / DECA files, into the pack's tensor layout.

Each reader loads one file safely (restricted unpickling, `torch.load(weights_only=True)` or
`np.load(allow_pickle=False)`), checks every entry it uses against the published layout, and
returns the canonical tensors that the converter stores in safetensors and the runtime modules
take. Messages name the file and what was expected.

Source layouts, as DECA's loader (decalib/models/FLAME.py) uses them:

* generic_model.pkl: Python-2 pickle with chumpy and scipy.sparse objects; entries f, v_template,
  shapedirs (300 shape + 100 expression), posedirs, J_regressor, kintree_table, weights.
* deca_model.tar: torch.save dict of the E_flame / E_detail / D_detail state dicts (training
  checkpoints add opt, global_step, batch_size).
* FLAME_texture.npz: mean, tex_dir (200 components), values 0..255, BGR.
* FLAME_albedo_from_BFM.npz: MU, PC (199 components), values 0..1, BGR.
* landmark_embedding.npy: pickled dict of static / dynamic (torch tensors) / full landmark
  triangles and barycentric coordinates.
"""
from __future__ import annotations

import math
import zipfile
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..loading import ModelFileError, check_state_dict, load_legacy_pickle, load_npy, load_torch_checkpoint, to_dense
from .config import FLAME2020, FlameTopology, flame_tensor_shapes
from .deca_encoder import encoder_state_shapes
from .landmarks import LANDMARK_SHAPES, OPTIONAL_LANDMARKS
from .texture import texture_shapes

PathArg = str | PathLike[str]


# ----------------------------------------------------------------------------------------------
# generic_model.pkl

def flame_pickle_shapes(topology: FlameTopology = FLAME2020) -> dict[str, tuple[int, ...]]:
    """The entries of generic_model.pkl that FLAME needs, with their FLAME 2020 shapes."""
    v, j = topology.n_vertices, topology.n_joints
    return {
        "f": (topology.n_faces, 3),
        "v_template": (v, 3),
        "shapedirs": (v, 3, topology.n_shape_basis + topology.n_exp_basis),
        "posedirs": (v, 3, topology.n_pose_features),
        "J_regressor": (j, v),
        "kintree_table": (2, j),
        "weights": (v, j),
    }


def read_flame_pickle(path: PathArg, topology: FlameTopology = FLAME2020) -> dict[str, torch.Tensor]:
    """FLAME model tensors (`config.flame_tensor_shapes`) from the official generic_model.pkl.

    Needs neither chumpy nor scipy. Extra entries of the pickle (J, bs_style, ...) are ignored.
    """
    path = Path(path)
    raw = load_legacy_pickle(path, purpose="FLAME model pickle (generic_model.pkl)")
    if not isinstance(raw, Mapping):
        raise ModelFileError(path, f"expected the FLAME model dict, found a {type(raw).__name__}")
    try:
        arrays = {k: to_dense(raw[k]) for k in flame_pickle_shapes(topology) if k in raw}
    except (TypeError, ValueError) as exc:
        raise ModelFileError(path, f"an entry of the FLAME model could not be read as an array: {exc}") from exc
    check_state_dict(arrays, flame_pickle_shapes(topology), "FLAME 2020 generic_model.pkl", path,
                     allow_unexpected=True)

    table = arrays["kintree_table"].astype(np.int64)
    table[0, 0] = -1  # stored as the unsigned maximum (4294967295) in the official file
    if not np.array_equal(table[1], np.arange(topology.n_joints)) or tuple(table[0]) != topology.parents:
        raise ModelFileError(path, f"kinematic tree {table.tolist()} differs from FLAME 2020's "
                                   f"[{list(topology.parents)}, {list(range(topology.n_joints))}]")
    split = topology.n_shape_basis
    tensors = {
        "v_template": arrays["v_template"],
        "shapedirs": arrays["shapedirs"][..., :split],
        "exprdirs": arrays["shapedirs"][..., split:],
        "posedirs": arrays["posedirs"],
        "J_regressor": arrays["J_regressor"],
        "lbs_weights": arrays["weights"],
    }
    out = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in tensors.items()}
    out["parents"] = torch.from_numpy(table[0].copy())
    faces = arrays["f"].astype(np.int64)
    if faces.min() < 0 or faces.max() >= topology.n_vertices:
        raise ModelFileError(path, f"faces index vertices outside [0, {topology.n_vertices})")
    out["faces"] = torch.from_numpy(faces)
    check_state_dict(out, flame_tensor_shapes(topology), "FLAME 2020 model", path)
    return out


# ----------------------------------------------------------------------------------------------
# deca_model.tar

DECA_ENTRIES = ("E_flame", "E_detail", "D_detail")


def read_deca_e_flame(path: PathArg) -> tuple[dict[str, torch.Tensor], list[str]]:
    """E_flame's state dict from deca_model.tar, strictly checked, and the file's top-level keys.

    `num_batches_tracked` may be absent (some re-saved checkpoints drop it; it does nothing at
    inference) and is then filled with zeros.
    """
    path = Path(path)
    checkpoint = load_torch_checkpoint(path, what="DECA checkpoint (deca_model.tar)")
    if not isinstance(checkpoint, Mapping) or "E_flame" not in checkpoint:
        found = sorted(map(str, checkpoint)) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise ModelFileError(path, f"expected a dict with the state dicts {DECA_ENTRIES}; found {found}")
    state = checkpoint["E_flame"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(path, "entry 'E_flame' is not a state dict of tensors")
    expected = encoder_state_shapes()
    check_state_dict(state, expected, "DECA E_flame state dict (deca_model.tar['E_flame'])", path,
                     optional_suffixes=("num_batches_tracked",))
    out = {}
    for key in expected:
        value = state.get(key)
        if value is None:  # a missing num_batches_tracked
            value = torch.zeros((), dtype=torch.long)
        out[key] = value.detach().to(torch.float32) if value.is_floating_point() else value.detach().long()
    return out, sorted(map(str, checkpoint))


# ----------------------------------------------------------------------------------------------
# FLAME_texture.npz / FLAME_albedo_from_BFM.npz

TEXTURE_LAYOUTS = {
    # type: (mean key, components key, components in the release, scale to 0..1)
    "FLAME": ("mean", "tex_dir", 200, 1 / 255),
    "BFM": ("MU", "PC", 199, 1.0),
}


def read_texture_space(path: PathArg, n_tex: int = 50) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Texture tensors (`texture.texture_shapes`) keeping the first `n_tex` components, and facts about the file.

    The flat vectors are laid out as (row, column, channel) of a square UV image with BGR channels,
    as DECA reshapes them; the side (512 in the releases) is inferred from the size of the mean, and
    must make a square. The arrays' stored shapes (e.g. (512, 512, 3) vs. flat) are not verified
    against a real file, so only their sizes and the trailing component axis are checked, as
    DECA's reshape relies on no more.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "texture space file not found")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ModelFileError(path, "expected an .npz archive (FLAME_texture.npz or FLAME_albedo_from_BFM.npz)")
        with archive as npz:
            keys = set(npz.files)
            kind = next((k for k, (m, c, _, _) in TEXTURE_LAYOUTS.items() if {m, c} <= keys), None)
            if kind is None:
                raise ModelFileError(path, f"expected a FLAME texture space with keys mean + tex_dir "
                                           f"(FLAME_texture.npz) or MU + PC (FLAME_albedo_from_BFM.npz); "
                                           f"found {sorted(keys)}")
            mean_key, basis_key, n_release, scale = TEXTURE_LAYOUTS[kind]
            mean = np.asarray(npz[mean_key], dtype=np.float64).reshape(-1)
            basis = np.asarray(npz[basis_key])
    except ModelFileError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile) as exc:  # includes pickled members: allow_pickle=False
        raise ModelFileError(path, f"not a readable .npz texture space ({exc})") from exc

    side = math.isqrt(mean.size // 3)
    if mean.size == 0 or 3 * side * side != mean.size:
        raise ModelFileError(path, f"'{mean_key}' has {mean.size} values; expected 3 x S x S for a square UV "
                                   f"texture (S = 512 in the official file)")
    if basis.ndim < 1 or basis.shape[-1] != n_release or basis.size != mean.size * n_release:
        raise ModelFileError(path, f"'{basis_key}' has shape {basis.shape}; expected {mean.size} x {n_release} values "
                                   f"with the {n_release} components last ({kind} texture space)")
    if not 0 < n_tex <= n_release:
        raise ModelFileError(path, f"cannot keep {n_tex} of the file's {n_release} texture components")

    # flat index = (row * S + column) * 3 + channel; the channel order is BGR, DECA flips to RGB
    mean_img = (mean * scale).reshape(side, side, 3)[..., ::-1].transpose(2, 0, 1)
    basis_img = (basis.reshape(-1, n_release)[:, :n_tex].astype(np.float64) * scale)
    basis_img = basis_img.reshape(side, side, 3, n_tex)[:, :, ::-1, :].transpose(3, 2, 0, 1)
    tensors = {"mean": torch.from_numpy(np.ascontiguousarray(mean_img, dtype=np.float32)),
               "basis": torch.from_numpy(np.ascontiguousarray(basis_img, dtype=np.float32))}
    check_state_dict(tensors, texture_shapes(n_tex, side, side), "FLAME texture space", path)
    info = {"texture_type": kind, "components_in_file": n_release, "components_kept": n_tex, "resolution": side,
            "channels": "RGB", "scale": "0..1"}
    return tensors, info


# ----------------------------------------------------------------------------------------------
# landmark_embedding.npy

def _tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    return torch.from_numpy(np.array(to_dense(value)))


def read_landmark_embedding(path: PathArg, topology: FlameTopology = FLAME2020) -> dict[str, torch.Tensor]:
    """Landmark tensors (`landmarks.LANDMARK_SHAPES`) from DECA's landmark_embedding.npy.

    The file is a pickled 0-d object array holding a dict; it is read with the restricted
    unpickler. The full 68-point entries are optional and may be stored with a leading batch
    axis of 1, which is dropped.
    """
    path = Path(path)
    array = load_npy(path, allow_objects=True)
    content = array.item() if array.dtype == object and array.size == 1 else None
    if not isinstance(content, Mapping):
        raise ModelFileError(path, f"expected a pickled dict of landmark arrays; found a {array.dtype} array "
                                   f"of shape {array.shape}")
    try:
        tensors = {k: _tensor(content[k]) for k in LANDMARK_SHAPES if k in content}
    except (TypeError, ValueError) as exc:
        raise ModelFileError(path, f"a landmark entry is not an array: {exc}") from exc
    for key in OPTIONAL_LANDMARKS:
        if key in tensors and tensors[key].ndim == len(LANDMARK_SHAPES[key]) + 1 and tensors[key].shape[0] == 1:
            tensors[key] = tensors[key][0]
    check_state_dict(tensors, LANDMARK_SHAPES, "FLAME landmark embedding (landmark_embedding.npy)", path,
                     optional=OPTIONAL_LANDMARKS, allow_unexpected=True)
    out = {}
    for key, value in tensors.items():
        if key.endswith("faces_idx"):
            if value.is_floating_point() or value.is_complex():
                raise ModelFileError(path, f"{key} should hold integer triangle indices, found {value.dtype}")
            value = value.long()
            if value.numel() and (value.min() < 0 or value.max() >= topology.n_faces):
                raise ModelFileError(path, f"{key} indexes triangles outside [0, {topology.n_faces})")
        else:
            value = value.to(torch.float32)
        out[key] = value.contiguous()
    return out
