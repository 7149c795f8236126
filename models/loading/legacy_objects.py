"""Stand-ins for the library objects found inside legacy model pickles.

FLAME's `generic_model.pkl` stores some arrays as chumpy objects and the joint regressor as a scipy
sparse matrix. Importing chumpy fails on numpy >= 1.24 and running its code is exactly what a safe
loader must avoid, so the restricted unpickler maps those classes onto the stand-ins below: they
accept the pickled state (a plain dict) and compute the numeric value with numpy alone.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np


class _Sealed(type):
    """Metaclass that forbids assigning attributes on the class object.

    A pickle's BUILD opcode with "slot state" calls setattr on whatever object is on the stack;
    were that object one of these classes, a crafted file could rewrite their methods.
    """

    def __setattr__(cls, name: str, value: Any) -> None:
        raise AttributeError(f"{cls.__name__} is a pickle stand-in; its attributes cannot be changed")

    def __delattr__(cls, name: str) -> None:
        raise AttributeError(f"{cls.__name__} is a pickle stand-in; its attributes cannot be deleted")


class PickledState(metaclass=_Sealed):
    """An object rebuilt from a pickle without running its original class: only its state is kept."""

    __slots__ = ("_state",)
    legacy_name: ClassVar[str] = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> PickledState:
        if args or kwargs:
            raise TypeError(f"{cls.legacy_name} is rebuilt from its pickled state only; got constructor arguments")
        obj = object.__new__(cls)
        object.__setattr__(obj, "_state", {})
        return obj

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and (state[0] is None or isinstance(state[0], dict)):
            merged = dict(state[0] or {})  # (instance dict, slot dict), as object.__reduce_ex__ writes
            merged.update(state[1] or {})
            state = merged
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise TypeError(f"{self.legacy_name}: expected a dict of attributes as pickled state, "
                            f"got {type(state).__name__}")
        object.__setattr__(self, "_state", dict(state))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self.legacy_name} stand-in is read-only")

    @property
    def state(self) -> Mapping[str, Any]:
        """The attributes the original object was pickled with."""
        return dict(self._state)

    def _field(self, name: str) -> Any:
        try:
            return self._state[name]
        except KeyError:
            raise ValueError(f"pickled {self.legacy_name} has no {name!r} attribute "
                             f"(it has {sorted(self._state)})") from None

    def __repr__(self) -> str:
        return f"<pickled {self.legacy_name}: {sorted(self._state)}>"


# ----------------------------------------------------------------------------------------------
# chumpy

_MAX_DEPTH = 64  # chumpy graphs in model files are a few levels deep; this only stops cycles
Term = Callable[[str], np.ndarray]  # looks up and evaluates one of the pickled attributes


def _value(term: Any, depth: int) -> np.ndarray:
    if isinstance(term, ChumpyArray):
        return term._evaluate(depth + 1)
    if isinstance(term, PickledState):
        raise ValueError(f"a chumpy term holds a {term.legacy_name}, which is not an array")
    return np.asarray(term)


class ChumpyArray(PickledState):
    """A chumpy `Ch` (an array wrapped for autodiff); `.x` is its stored array, `.r` its value."""

    __slots__ = ()
    legacy_name = "chumpy.ch.Ch"

    def _compute(self, term: Term) -> np.ndarray:
        return term("x")

    def _evaluate(self, depth: int = 0) -> np.ndarray:
        if depth > _MAX_DEPTH:
            raise ValueError(f"chumpy graph deeper than {_MAX_DEPTH} levels (or cyclic) in {self.legacy_name}")
        return np.asarray(self._compute(lambda name: _value(self._field(name), depth)))

    @property
    def r(self) -> np.ndarray:
        """The numeric value, computed as chumpy's `compute_r` would, with numpy only."""
        return self._evaluate()

    @property
    def x(self) -> np.ndarray:
        """The array stored in a plain `Ch` (derived chumpy classes have no `x`)."""
        if type(self) is not ChumpyArray:
            raise AttributeError(f"{self.legacy_name} has no stored array 'x'; use .r")
        return _value(self._field("x"), 0)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        value = self.r
        return value if dtype is None else value.astype(dtype)


class ChumpySelect(ChumpyArray):
    __slots__ = ()
    legacy_name = "chumpy.reordering.Select"

    def _compute(self, term: Term) -> np.ndarray:
        picked = term("a").ravel()[np.asarray(self._field("idxs"))].copy()
        shape = self._state.get("preferred_shape")
        return picked if shape is None else picked.reshape(shape)


class ChumpyReshape(ChumpyArray):
    __slots__ = ()
    legacy_name = "chumpy.reordering.Reshape"

    def _compute(self, term: Term) -> np.ndarray:
        return term("a").reshape(self._field("newshape"))


class ChumpyTranspose(ChumpyArray):
    __slots__ = ()
    legacy_name = "chumpy.reordering.transpose"

    def _compute(self, term: Term) -> np.ndarray:
        return np.ascontiguousarray(np.transpose(term("a"), self._state.get("axes")))


class ChumpyRollaxis(ChumpyArray):
    __slots__ = ()
    legacy_name = "chumpy.reordering.rollaxis"

    def _compute(self, term: Term) -> np.ndarray:
        return np.rollaxis(term("a"), self._field("axis"), self._state.get("start", 0))


class ChumpySwapaxes(ChumpyArray):
    __slots__ = ()
    legacy_name = "chumpy.reordering.swapaxes"

    def _compute(self, term: Term) -> np.ndarray:
        return np.swapaxes(term("a"), self._field("axis1"), self._field("axis2"))


class ChumpyTile(ChumpyArray):
    __slots__ = ()
    legacy_name = "chumpy.reordering.Tile"

    def _compute(self, term: Term) -> np.ndarray:
        return np.tile(term("a"), self._field("reps"))


class ChumpyRepeat(ChumpyArray):
    __slots__ = ()
    legacy_name = "chumpy.reordering.Repeat"

    def _compute(self, term: Term) -> np.ndarray:
        return np.repeat(term("a"), self._field("repeats"), self._state.get("axis"))


class ChumpyRoll(ChumpyArray):
    __slots__ = ()
    legacy_name = "chumpy.reordering.Roll"

    def _compute(self, term: Term) -> np.ndarray:
        return np.roll(term("a"), self._field("shift"), self._state.get("axis"))


class ChumpyRot90(ChumpyArray):
    __slots__ = ()
    legacy_name = "chumpy.reordering.Rot90"

    def _compute(self, term: Term) -> np.ndarray:
        return np.rot90(term("a"), self._field("k"))


class ChumpyDiag(ChumpyArray):
    __slots__ = ()
    legacy_name = "chumpy.reordering.Diag"

    def _compute(self, term: Term) -> np.ndarray:
        return np.diag(term("a"), self._field("k"))


class ChumpyDiagFlat(ChumpyArray):
    __slots__ = ()
    legacy_name = "chumpy.reordering.DiagFlat"

    def _compute(self, term: Term) -> np.ndarray:
        return np.diagflat(term("a"), self._field("k"))


class ChumpyConcatenate(ChumpyArray):
    """chumpy stores the concatenated parts as attributes m0, m1, ... listed in its own `dterms`."""

    __slots__ = ()
    legacy_name = "chumpy.reordering.Concatenate"

    def _compute(self, term: Term) -> np.ndarray:
        names = self._field("dterms")
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{self.legacy_name}: 'dterms' should list attribute names, got {names!r}")
        return np.concatenate([term(n) for n in names], axis=self._field("axis"))


class ChumpyAtleastNd(ChumpyArray):
    __slots__ = ()
    legacy_name = "chumpy.reordering.AtleastNd"

    def _compute(self, term: Term) -> np.ndarray:
        promote = {1: np.atleast_1d, 2: np.atleast_2d, 3: np.atleast_3d}
        ndims = self._field("ndims")
        if ndims not in promote:
            raise ValueError(f"{self.legacy_name}: ndims must be 1, 2 or 3, got {ndims!r}")
        return promote[ndims](term("x"))


class ChumpyUnevaluated(ChumpyArray):
    """Any other chumpy class (an operator node such as `chumpy.ch_ops.add`): its state is kept so
    the rest of the file loads, but its value is not computed, since that would mean re-implementing
    chumpy. FLAME needs none of these for the entries the pack reads."""

    __slots__ = ()
    legacy_name = "chumpy.<other>"

    def _compute(self, term: Term) -> np.ndarray:
        raise ValueError(f"{self.legacy_name} is a chumpy operation this loader does not evaluate "
                         f"(it evaluates Ch and the chumpy.reordering classes)")


_UNEVALUATED: dict[tuple[str, str], type[ChumpyUnevaluated]] = {}
_MAX_NAMED = 256  # a crafted file could name endless classes; past this they share the generic one


def chumpy_stand_in(module: str, name: str) -> type[ChumpyArray] | None:
    """The stand-in class for a chumpy global, or None when `module` is not chumpy."""
    if module != "chumpy" and not module.startswith("chumpy."):
        return None
    known = CHUMPY_CLASSES.get((module, name))
    if known is not None:
        return known
    if (module, name) not in _UNEVALUATED:
        if len(_UNEVALUATED) >= _MAX_NAMED:
            return ChumpyUnevaluated
        _UNEVALUATED[(module, name)] = _Sealed(f"Unevaluated_{name}", (ChumpyUnevaluated,),
                                               {"__slots__": (), "legacy_name": f"{module}.{name}",
                                                "__module__": __name__})
    return _UNEVALUATED[(module, name)]


CHUMPY_CLASSES: dict[tuple[str, str], type[ChumpyArray]] = {
    tuple(cls.legacy_name.rsplit(".", 1)): cls  # type: ignore[misc]
    for cls in (ChumpyArray, ChumpySelect, ChumpyReshape, ChumpyTranspose, ChumpyRollaxis, ChumpySwapaxes,
                ChumpyTile, ChumpyRepeat, ChumpyRoll, ChumpyRot90, ChumpyDiag, ChumpyDiagFlat,
                ChumpyConcatenate, ChumpyAtleastNd)
}


# ----------------------------------------------------------------------------------------------
# scipy.sparse

class SparseMatrixState(PickledState):
    """A compressed sparse matrix (CSC or CSR) rebuilt from its pickled arrays, without scipy.

    scipy pickles these through the default object protocol: a dict with `data`, `indices`,
    `indptr` and the shape (`_shape` in every scipy release; very old ones also wrote `shape`).
    """

    __slots__ = ()
    legacy_name = "scipy.sparse.csc_matrix"
    compressed_axis: ClassVar[int] = 1  # CSC compresses columns

    @property
    def shape(self) -> tuple[int, int]:
        shape = self._state.get("_shape", self._state.get("shape"))
        if shape is None:
            raise ValueError(f"pickled {self.legacy_name} has no shape (attributes {sorted(self._state)})")
        rows, cols = (int(s) for s in shape)
        return rows, cols

    def toarray(self) -> np.ndarray:
        """The dense matrix, after checking that the index arrays are consistent with the shape."""
        data = np.asarray(_value(self._field("data"), 0))
        indices = np.asarray(_value(self._field("indices"), 0)).astype(np.int64, copy=False)
        indptr = np.asarray(_value(self._field("indptr"), 0)).astype(np.int64, copy=False)
        shape = self.shape
        n_compressed, n_other = shape[self.compressed_axis], shape[1 - self.compressed_axis]
        problems = []
        if data.ndim != 1 or indices.shape != data.shape:
            problems.append(f"data {data.shape} and indices {indices.shape} should be equal-length vectors")
        if indptr.shape != (n_compressed + 1,):
            problems.append(f"indptr has shape {indptr.shape}, expected ({n_compressed + 1},)")
        elif indptr[0] != 0 or indptr[-1] != data.size or np.any(np.diff(indptr) < 0):
            problems.append("indptr is not a non-decreasing offset table from 0 to len(data)")
        if indices.size and (indices.min() < 0 or indices.max() >= n_other):
            problems.append(f"indices fall outside [0, {n_other})")
        if problems:
            raise ValueError(f"pickled {self.legacy_name} of shape {shape} is inconsistent: " + "; ".join(problems))
        dense = np.zeros(shape, dtype=data.dtype)
        owner = np.repeat(np.arange(n_compressed), np.diff(indptr))
        index = (indices, owner) if self.compressed_axis == 1 else (owner, indices)
        np.add.at(dense, index, data)  # duplicates add up, as in scipy
        return dense

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        value = self.toarray()
        return value if dtype is None else value.astype(dtype)


class CscMatrixState(SparseMatrixState):
    __slots__ = ()
    legacy_name = "scipy.sparse.csc_matrix"
    compressed_axis = 1


class CsrMatrixState(SparseMatrixState):
    __slots__ = ()
    legacy_name = "scipy.sparse.csr_matrix"
    compressed_axis = 0


SPARSE_CLASSES: dict[tuple[str, str], type[SparseMatrixState]] = {
    # scipy moved the classes from scipy.sparse.csc / .csr to private modules in 1.8
    (module, name): cls
    for cls, name, modules in (
        (CscMatrixState, "csc_matrix", ("scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse")),
        (CsrMatrixState, "csr_matrix", ("scipy.sparse.csr", "scipy.sparse._csr", "scipy.sparse")),
    )
    for module in modules
}


def legacy_reconstructor(cls: Any, base: Any, state: Any) -> PickledState:
    """Stand-in for `copy_reg._reconstructor`, which protocol 0/1 pickles use to create instances.

    The real function calls `base.__new__(cls, state)` and `base.__init__`; here only the
    stand-in classes may be created, from `object`, so this opcode path cannot construct anything else.
    """
    if not (isinstance(cls, type) and issubclass(cls, PickledState)) or base is not object or state is not None:
        raise ValueError(f"copy_reg._reconstructor may only rebuild allowed stand-in classes from object, "
                         f"got cls={cls!r}, base={base!r}")
    return cls.__new__(cls)


def to_dense(value: Any) -> np.ndarray:
    """A numpy array from a pickled array-like: ndarray, chumpy stand-in or sparse stand-in."""
    if isinstance(value, np.ndarray):
        return np.asarray(value)  # also turns a numpy.matrix into a plain array
    if isinstance(value, ChumpyArray):
        return value.r
    if isinstance(value, SparseMatrixState):
        return value.toarray()
    if isinstance(value, (int, float, bool, np.generic, list, tuple)):
        return np.asarray(value)
    raise TypeError(f"expected an array, got {type(value).__name__}")
