"""Deep3DFaceRecon's released checkpoint (`epoch_20.pth`) and the safetensors the pack converts it into.

The release is a `torch.save` dict holding the regressor's state dict under `net_recon`, next to
optimiser and scheduler states (`opt_00`, `sched_00`) that inference ignores. It is read only by
`scripts/convert_deep3d.py`, through the pack's restricted loader (`torch.load(weights_only=True)`:
tensors and plain containers, nothing called), compared key by key and shape by shape with
`Deep3DRecon`, and written as `deep3d_recon.safetensors` with a `kind` tag. The nodes load only
that file. A bare `net_recon` state dict (a re-saved file) is accepted as well.
"""
from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import torch

from ..loading import ModelFileError, load_torch_checkpoint, read_checked_safetensors
from .deep3d import DEEP3D, Deep3DConfig, Deep3DRecon, deep3d_state_shapes
from .official import checked_state_dict

DEEP3D_FILE = "deep3d_recon.safetensors"
DEEP3D_KIND = "deep3d_recon"
DEEP3D_CONVERTER = "scripts/convert_deep3d.py"
NET_KEY = "net_recon"
WHAT = "Deep3DFaceRecon checkpoint (epoch_20.pth)"

PathArg = str | PathLike[str]


def net_recon_state(checkpoint, path: Path) -> Mapping:
    """The regressor's state dict inside a loaded checkpoint (or the checkpoint itself when it is one)."""
    if not isinstance(checkpoint, Mapping):
        raise ModelFileError(path, f"expected a {WHAT}: a dict with '{NET_KEY}', found {type(checkpoint).__name__}")
    if NET_KEY in checkpoint:
        state = checkpoint[NET_KEY]
        if not isinstance(state, Mapping):
            raise ModelFileError(path, f"'{NET_KEY}' is a {type(state).__name__}, not a state dict")
        return state
    if any(str(k).startswith("backbone.") for k in checkpoint):
        return checkpoint
    shown = ", ".join(sorted(map(str, checkpoint))[:8])
    raise ModelFileError(path, f"expected a {WHAT} with a '{NET_KEY}' entry; its entries are: {shown}")


def read_deep3d_checkpoint(path: PathArg, config: Deep3DConfig = DEEP3D
                           ) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """The regressor's tensors (float32; integer buffers int64) in module order, the keys filled in
    (absent step counters, as 0) and the checkpoint's other top-level entries (ignored)."""
    path = Path(path)
    checkpoint = load_torch_checkpoint(path, what=WHAT)
    state = net_recon_state(checkpoint, path)
    tensors, filled = checked_state_dict(state, deep3d_state_shapes(config), f"{WHAT} '{NET_KEY}'", path)
    ignored = sorted(str(k) for k in checkpoint if k != NET_KEY) if NET_KEY in checkpoint else []
    return tensors, filled, ignored


def load_deep3d_recon(path: PathArg, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                      config: Deep3DConfig = DEEP3D) -> Deep3DRecon:
    """Deep3DRecon (eval mode) from the converted `deep3d_recon.safetensors` (kind, keys and shapes checked)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, f"converted Deep3DFaceRecon regressor not found (convert the released "
                                   f"epoch_20.pth with {DEEP3D_CONVERTER})")
    tensors, _ = read_checked_safetensors(path, deep3d_state_shapes(config), what="converted Deep3DFaceRecon "
                                          "regressor", kind=DEEP3D_KIND, converter=DEEP3D_CONVERTER)
    with torch.device("meta"):
        module = Deep3DRecon(config)
    module.load_state_dict(tensors, strict=True, assign=True)
    return module.to(device=device, dtype=dtype).eval()
