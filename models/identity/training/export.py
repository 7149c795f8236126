"""Writing what training produced in the formats the nodes load.

`f2d_mapping.safetensors` carries the same kind tag, keys and shapes as the converter writes from
the official `mapping.pt` (so `load_mapping` reads either), with the trainer's provenance;
`f2d_rig_expression.safetensors` is `save_rig_expression_map`'s format. Both are written through a
temporary file and a rename.
"""
from __future__ import annotations

from dataclasses import asdict
from os import PathLike
from pathlib import Path

from ...loading import write_safetensors_atomic
from ..files import MAPPING_KIND
from ..mapping import Img2TextMapping
from ..rig_expression import TRAINER, RigExpressionMap, save_rig_expression_map

FORMAT_VERSION = 1  # as scripts/convert_face2diffusion.py


def save_mapping(path: str | PathLike[str], mapping: Img2TextMapping, **provenance) -> Path:
    state = mapping.state_dict()
    meta = {"kind": MAPPING_KIND, "format_version": FORMAT_VERSION, "trainer": TRAINER,
            "config": asdict(mapping.config), "tensors": len(state),
            "parameters": sum(t.numel() for t in state.values()), **provenance}
    return write_safetensors_atomic(path, state, meta)


def save_rig_map(path: str | PathLike[str], rig_map: RigExpressionMap, **provenance) -> Path:
    return save_rig_expression_map(path, rig_map, trainer=TRAINER, **provenance)
