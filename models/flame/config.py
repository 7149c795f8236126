"""Sizes and settings of the FLAME head model as DECA uses it.

`FlameTopology` describes the FLAME 2020 `generic_model.pkl` release (the one DECA, EMOCA and
DiffusionRig load); loaders compare every file with it. `FlameConfig` says how many shape and
expression components a model instance uses (DECA: 100 of 300 shape, 50 of 100 expression).
"""
from __future__ import annotations

from dataclasses import dataclass

Shape = tuple[int, ...]


@dataclass(frozen=True)
class FlameTopology:
    """Sizes of the FLAME 2020 generic model; joints are global, neck, jaw and the two eyeballs.

    The sizes follow DECA's loader and the published model description; they were not checked
    against a real file (it is registration-gated). Which eyeball is joint 3 and which joint 4 is
    not verified either, so the pack calls them "the two eyeball joints, in file order".
    """

    n_vertices: int = 5023
    n_faces: int = 9976
    n_shape_basis: int = 300
    n_exp_basis: int = 100
    parents: tuple[int, ...] = (-1, 0, 1, 1, 1)  # neck under global; jaw and eyes under neck

    @property
    def n_joints(self) -> int:
        return len(self.parents)

    @property
    def n_pose_features(self) -> int:
        """Pose-corrective inputs: the 9 entries of (R - I) for every non-root joint."""
        return 9 * (self.n_joints - 1)


FLAME2020 = FlameTopology()


@dataclass(frozen=True)
class FlameConfig:
    """How many shape / expression components the model uses (DECA's defaults)."""

    n_shape: int = 100
    n_exp: int = 50

    def check(self, topology: FlameTopology) -> None:
        if not (0 < self.n_shape <= topology.n_shape_basis and 0 < self.n_exp <= topology.n_exp_basis):
            raise ValueError(f"FlameConfig(n_shape={self.n_shape}, n_exp={self.n_exp}) outside the file's "
                             f"{topology.n_shape_basis} shape / {topology.n_exp_basis} expression components")


DECA_CONFIG = FlameConfig()


def flame_tensor_shapes(topology: FlameTopology = FLAME2020) -> dict[str, Shape]:
    """Keys and shapes of the converted FLAME file (`flame2020_generic.safetensors`)."""
    v, j = topology.n_vertices, topology.n_joints
    return {
        "v_template": (v, 3),
        "shapedirs": (v, 3, topology.n_shape_basis),
        "exprdirs": (v, 3, topology.n_exp_basis),
        "posedirs": (v, 3, topology.n_pose_features),
        "J_regressor": (j, v),
        "parents": (j,),
        "lbs_weights": (v, j),
        "faces": (topology.n_faces, 3),
    }
