"""Loading model files safely and strictly.

Legacy formats (FLAME's chumpy pickle, DECA's pickled landmark .npy, torch checkpoints) are read
through restricted unpicklers that can build data but never call arbitrary code; every file's
contents are compared key by key and shape by shape with what the caller expects, so a wrong or
damaged file fails at load time with a message naming it, instead of producing a subtly wrong model.
"""
from .checkpoint import load_torch_checkpoint
from .errors import ModelFileError
from .lightning import lightning_weights, read_lightning_checkpoint
from .legacy_objects import ChumpyArray, SparseMatrixState, to_dense
from .npy import load_npy, loads_npy
from .safetensors_file import read_checked_safetensors, sha256_file, write_safetensors_atomic
from .strict import StateDictMismatchError, check_state_dict, parse_manifest, shapes_of
from .unpickle import (LEGACY_MODEL_GLOBALS, NPY_OBJECT_GLOBALS, UnsafePickleError, load_legacy_pickle,
                       restricted_loads)

__all__ = [
    "lightning_weights", "read_lightning_checkpoint",
    "ChumpyArray", "LEGACY_MODEL_GLOBALS", "ModelFileError", "NPY_OBJECT_GLOBALS", "SparseMatrixState",
    "StateDictMismatchError", "UnsafePickleError", "check_state_dict", "load_legacy_pickle", "load_npy",
    "load_torch_checkpoint", "loads_npy", "parse_manifest", "read_checked_safetensors", "restricted_loads",
    "sha256_file", "shapes_of", "to_dense", "write_safetensors_atomic",
]
