"""Synthetic stand-ins for the registration-gated FLAME / DECA files, in their official formats.

The real files cannot be downloaded here, so the tests build files with the official key names,
shapes and serialisation (a Python-2 style chumpy pickle, a torch.save checkpoint, npz, a pickled
.npy) from random values with enough structure to test skinning: vertex groups bound to each
joint with exactly representable weights, pose correctives only where a joint has influence.
The other FLAME test modules import the builders; the tests here check the builders themselves.
"""
from __future__ import annotations

import copyreg
import pickle
import struct
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

V, F, J = 5023, 9976, 5
N_SHAPE_BASIS, N_EXP_BASIS = 300, 100
PARENTS = (-1, 0, 1, 1, 1)
ROOT_MARK = 4294967295  # how the official kintree_table marks the root's parent (uint32 max)

# vertex groups: (first, stop) index ranges and their exact (dyadic) skinning weights per joint
GROUPS = {
    "jaw": (range(0, 900), {2: 0.75, 1: 0.25}),
    "eye0": (range(900, 1000), {3: 1.0}),
    "eye1": (range(1000, 1100), {4: 1.0}),
    "neck": (range(1100, 2400), {1: 0.5, 0: 0.5}),
    "head": (range(2400, V), {0: 1.0}),
}


def skinning_weights() -> np.ndarray:
    weights = np.zeros((V, J))
    for rows, by_joint in GROUPS.values():
        for joint, w in by_joint.items():
            weights[rows.start:rows.stop, joint] = w
    return weights


def flame_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Dense arrays with the keys, shapes and dtypes of FLAME 2020's generic_model.pkl."""
    rng = np.random.default_rng(seed)
    weights = skinning_weights()
    regressor = np.zeros((J, V))
    for joint in range(J):
        members = np.flatnonzero(weights[:, joint] > 0)
        regressor[joint, rng.choice(members, 8, replace=False)] = 1 / 8
    posedirs = rng.normal(0, 1e-3, (V, 3, 9 * (J - 1)))
    for joint in range(1, J):
        posedirs[weights[:, joint] == 0, :, (joint - 1) * 9:joint * 9] = 0
    kintree = np.array([[ROOT_MARK, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.uint32)
    return {
        "f": rng.integers(0, V, (F, 3)).astype(np.uint32),
        "v_template": rng.normal(0, 0.1, (V, 3)),
        "shapedirs": rng.normal(0, 1e-2, (V, 3, N_SHAPE_BASIS + N_EXP_BASIS)),
        "posedirs": posedirs,
        "J_regressor": regressor,
        "kintree_table": kintree,
        "weights": weights,
        "J": regressor @ rng.normal(0, 0.1, (V, 3)),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


def flame_tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    """The same model in the pack's converted layout (what `read_flame_pickle` returns)."""
    a = flame_arrays(seed)
    parents = a["kintree_table"][0].astype(np.int64)
    parents[0] = -1
    f32 = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))  # noqa: E731
    return {"v_template": f32(a["v_template"]), "shapedirs": f32(a["shapedirs"][..., :N_SHAPE_BASIS]),
            "exprdirs": f32(a["shapedirs"][..., N_SHAPE_BASIS:]), "posedirs": f32(a["posedirs"]),
            "J_regressor": f32(a["J_regressor"]), "parents": torch.from_numpy(parents),
            "lbs_weights": f32(a["weights"]), "faces": torch.from_numpy(a["f"].astype(np.int64))}


# ----------------------------------------------------------------------------------------------
# a Python-2 style pickle writer

class Py2Pickler(pickle._Pickler):
    """Writes protocol-2 pickles the way Python 2's cPickle did for these files.

    Text and bytes become Python-2 `str` opcodes (SHORT_BINSTRING / BINSTRING), which is why the
    official file must be read with encoding="latin1"; module paths are the 2015-era ones
    (numpy.core.multiarray, __builtin__, copy_reg); a class can declare `_pickle_as` to be
    written under another module path (the scipy.sparse.csc stand-in below).
    """

    RENAMES = {"numpy._core.multiarray": "numpy.core.multiarray", "builtins": "__builtin__", "copyreg": "copy_reg"}
    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("latin-1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str

    def save_global(self, obj, name=None):
        module, qualname = getattr(obj, "_pickle_as", (obj.__module__, name or obj.__qualname__))
        module = self.RENAMES.get(module, module)
        self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode("ascii"))
        self.memoize(obj)


def py2_dumps(obj, protocol: int = 2) -> bytes:
    import io
    buffer = io.BytesIO()
    Py2Pickler(buffer, protocol).dump(obj)
    return buffer.getvalue()


class LegacyCscMatrix:
    """Pickles like a 2015 scipy.sparse.csc.csc_matrix: NEWOBJ of the class, then its __dict__."""

    _pickle_as = ("scipy.sparse.csc", "csc_matrix")

    def __init__(self, dense: np.ndarray):
        rows, cols = np.nonzero(dense.T)  # column-major order of the nonzeros
        counts = np.bincount(rows, minlength=dense.shape[1])
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        self.__dict__.update(_shape=dense.shape, maxprint=50, format="csc", data=dense.T[rows, cols],
                             indices=cols.astype(np.int32), indptr=indptr)

    def __reduce_ex__(self, protocol):
        return copyreg.__newobj__, (type(self),), dict(self.__dict__)


FAKE_CHUMPY = {
    "__init__.py": "from .ch import Ch\n",
    "ch.py": '''
        import numpy as np

        class Ch(object):
            """Only what pickling needs: chumpy keeps these attributes and drops _parents/_cache."""
            def __init__(self, x=None, **terms):
                self.__dict__.update(_dirty_vars=set(), _itr=None, _depends_on_deps={}, _make_dense=False,
                                     _make_sparse=False, _parents={}, _cache={"r": None})
                if x is not None:
                    self.__dict__["x"] = np.asarray(x, dtype=np.float64)
                self.__dict__.update(terms)

            def __getstate__(self):
                state = dict(self.__dict__)
                del state["_parents"], state["_cache"]
                return state
    ''',
    "ch_ops.py": '''
        from .ch import Ch

        class add(Ch):
            def __init__(self, a, b):
                Ch.__init__(self, a=a, b=b)
    ''',
    "reordering.py": '''
        from .ch import Ch

        class Permute(Ch):
            pass

        class Select(Permute):
            def __init__(self, a, idxs, preferred_shape):
                Ch.__init__(self, a=a, idxs=idxs, preferred_shape=preferred_shape)

        class Reshape(Permute):
            def __init__(self, a, newshape):
                Ch.__init__(self, a=a, newshape=newshape)

        class transpose(Permute):
            def __init__(self, a, axes):
                Ch.__init__(self, a=a, axes=axes)

        class Concatenate(Ch):
            def __init__(self, parts, axis):
                Ch.__init__(self, axis=axis, dterms=["m%d" % i for i in range(len(parts))])
                for i, part in enumerate(parts):
                    self.__dict__["m%d" % i] = part
    ''',
}


class fake_chumpy:
    """Context manager: an importable `chumpy` package in `folder`, gone from sys.modules afterwards."""

    def __init__(self, folder: Path):
        self.folder = folder

    def __enter__(self):
        package = self.folder / "chumpy"
        package.mkdir(parents=True, exist_ok=True)
        for name, source in FAKE_CHUMPY.items():
            (package / name).write_text(textwrap.dedent(source))
        sys.path.insert(0, str(self.folder))
        import chumpy.ch
        import chumpy.ch_ops
        import chumpy.reordering
        return chumpy

    def __exit__(self, *exc):
        sys.path.remove(str(self.folder))
        for name in [m for m in sys.modules if m == "chumpy" or m.startswith("chumpy.")]:
            del sys.modules[name]


def write_generic_model_pkl(path: Path, work: Path, seed: int = 0, mutate=None) -> dict[str, np.ndarray]:
    """A chumpy-shaped FLAME generic_model.pkl; returns the dense arrays it encodes.

    As in the official file, `shapedirs` and `v_template` are chumpy arrays, `J_regressor` a CSC
    matrix and the rest numpy arrays; `J` is a chumpy expression (a Select) to exercise the
    derived-class stand-ins. `mutate(arrays)` may change the arrays first (for failure tests).
    """
    arrays = flame_arrays(seed)
    if mutate is not None:
        mutate(arrays)
    with fake_chumpy(work) as chumpy:
        content = dict(arrays)
        content["shapedirs"] = chumpy.ch.Ch(arrays["shapedirs"])
        content["v_template"] = chumpy.ch.Ch(arrays["v_template"])
        content["J_regressor"] = LegacyCscMatrix(arrays["J_regressor"])
        flat_j = chumpy.ch.Ch(arrays["J"].ravel())
        content["J"] = chumpy.reordering.Select(flat_j, np.arange(flat_j.x.size), arrays["J"].shape)
        path.write_bytes(py2_dumps(content))
    return arrays


# ----------------------------------------------------------------------------------------------
# checks of the builders

def test_synthetic_weights_are_a_partition_of_unity_with_exact_sums():
    weights = skinning_weights()
    assert (weights.sum(1) == 1.0).all()
    assert (torch.from_numpy(weights).float().sum(1) == 1.0).all()


def test_py2_pickle_uses_python2_opcodes_and_names(tmp_path):
    import pickletools
    path = tmp_path / "generic_model.pkl"
    write_generic_model_pkl(path, tmp_path / "fake")
    ops = {op.name for op, _, _ in pickletools.genops(path.read_bytes())}
    text = path.read_bytes()
    assert {"PROTO", "NEWOBJ", "SHORT_BINSTRING", "BINSTRING", "BUILD"} <= ops
    assert not {"BINUNICODE", "SHORT_BINUNICODE", "BINBYTES", "SHORT_BINBYTES"} & ops
    for name in (b"chumpy.ch\nCh\n", b"chumpy.reordering\nSelect\n", b"scipy.sparse.csc\ncsc_matrix\n",
                 b"numpy.core.multiarray\n_reconstruct\n", b"__builtin__\nset\n"):
        assert name in text
    assert "chumpy" not in sys.modules
