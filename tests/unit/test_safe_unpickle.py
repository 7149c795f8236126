"""Restricted unpickling: legacy data loads, anything that could run code is refused unexecuted.

Every malicious payload here would create a marker file if it ran; each test asserts both the
refusal (naming the requested global and the file) and that the marker does not exist.
"""
from __future__ import annotations

import copyreg
import io
import os
import pickle
import subprocess
from collections import OrderedDict

import numpy as np
import pytest
import torch

from models.loading import (ChumpyArray, ModelFileError, NPY_OBJECT_GLOBALS, UnsafePickleError, load_legacy_pickle,
                            load_npy, load_torch_checkpoint, loads_npy, restricted_loads)
from models.loading.legacy_objects import ChumpyConcatenate, ChumpySelect, CscMatrixState
from test_flame_synthetic import LegacyCscMatrix, fake_chumpy, py2_dumps
from pickle_payloads import CallsOnLoad


def payloads(marker):
    return {
        "posix.system": CallsOnLoad(os.system, f"touch {marker}"),
        "builtins.eval": CallsOnLoad(eval, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.Popen": CallsOnLoad(subprocess.Popen, ["touch", str(marker)]),
        "builtins.exec": CallsOnLoad(exec, f"open({str(marker)!r}, 'w').close()"),
    }


@pytest.mark.parametrize("protocol", [0, 2, 4])
@pytest.mark.parametrize("name", ["posix.system", "builtins.eval", "subprocess.Popen", "builtins.exec"])
def test_pickle_calling_outside_the_allow_list_is_refused_and_never_runs(tmp_path, protocol, name):
    marker = tmp_path / "pwned"
    path = tmp_path / "generic_model.pkl"
    # hidden next to legitimate content, as a real attack would be
    path.write_bytes(pickle.dumps({"v_template": np.zeros((3, 3)), "weights": payloads(marker)[name]}, protocol))
    with pytest.raises(UnsafePickleError) as caught:
        load_legacy_pickle(path)
    assert name in str(caught.value) and str(path) in str(caught.value)
    assert caught.value.global_name == name
    assert isinstance(caught.value, pickle.UnpicklingError) and isinstance(caught.value, ModelFileError)
    assert not marker.exists()


def test_python2_builtin_names_are_refused_by_their_python3_name(tmp_path):
    marker = tmp_path / "pwned"
    data = f"c__builtin__\neval\n(Vopen({str(marker)!r}, 'w')\ntR.".encode()
    with pytest.raises(UnsafePickleError, match=r"builtins\.eval"):
        restricted_loads(data, source="py2.pkl")
    assert not marker.exists()


def test_inst_opcode_is_routed_through_the_allow_list(tmp_path):
    marker = tmp_path / "pwned"
    data = f"(S'touch {marker}'\nios\nsystem\n.".encode()  # protocol 0 INST: import and call in one opcode
    with pytest.raises(UnsafePickleError, match=r"os\.system"):
        restricted_loads(data, source="inst.pkl")
    assert not marker.exists()


def test_extension_registry_opcode_is_routed_through_the_allow_list(tmp_path):
    marker = tmp_path / "pwned"
    code = 0x7FFF0
    copyreg.add_extension("os", "system", code)
    try:
        data = (b"\x80\x02" + pickle.EXT4 + code.to_bytes(4, "little")
                + pickle.dumps(f"touch {marker}", 2)[2:-1] + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP)
        with pytest.raises(UnsafePickleError, match=r"os\.system"):
            restricted_loads(data, source="ext.pkl")
    finally:
        copyreg.remove_extension("os", "system", code)
    assert not marker.exists()


def test_reconstructor_only_rebuilds_stand_ins(tmp_path):
    # protocol 0/1 object creation path: copy_reg._reconstructor(cls, base, state)
    bad_base = b"ccopy_reg\n_reconstructor\n(cchumpy.ch\nCh\nc__builtin__\nlist\nNtR."
    with pytest.raises(UnsafePickleError, match=r"builtins\.list"):
        restricted_loads(bad_base, source="recon.pkl")
    bad_class = b"ccopy_reg\n_reconstructor\n(cnumpy\nndarray\nc__builtin__\nobject\nNtR."
    with pytest.raises(ModelFileError, match="stand-in"):
        restricted_loads(bad_class, source="recon.pkl")


def test_build_cannot_rewrite_stand_in_classes():
    # BUILD with slot state on the class object itself would setattr on it
    data = b"\x80\x02cchumpy.ch\nCh\nN}U\x01r\x88s\x86b."
    with pytest.raises(ModelFileError):
        restricted_loads(data, source="build.pkl")
    assert isinstance(ChumpyArray.__dict__["r"], property)
    with pytest.raises(AttributeError):
        ChumpyArray.r = True


def test_persistent_ids_and_non_latin1_codecs_are_refused():
    class WithPid(pickle.Pickler):
        def persistent_id(self, obj):
            return "x" if isinstance(obj, str) and obj == "ref" else None

    buffer = io.BytesIO()
    WithPid(buffer, 2).dump(["ref"])
    with pytest.raises(UnsafePickleError, match="persistent id"):
        restricted_loads(buffer.getvalue(), source="pid.pkl")
    data = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00zlib_\x86R."
    with pytest.raises(UnsafePickleError, match="zlib_"):
        restricted_loads(data, source="codec.pkl")


def test_corrupt_pickle_gives_a_readable_error_naming_the_file(tmp_path):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({"a": np.arange(5)}, 2)[:-20])
    with pytest.raises(ModelFileError, match="generic_model.pkl: not a readable"):
        load_legacy_pickle(path)
    with pytest.raises(ModelFileError, match="not found"):
        load_legacy_pickle(tmp_path / "missing.pkl")


# ----------------------------------------------------------------------------------------------
# legitimate legacy content

def test_numpy_arrays_from_python2_and_python3_pickles_load_exactly():
    arrays = {"f8": np.random.default_rng(0).normal(size=(4, 3)), "u4": np.arange(12, dtype=np.uint32).reshape(3, 4),
              "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)), "scalar": np.float32(2.5),
              "set": {1, 2}, "text": "bs_style"}
    for data in (py2_dumps(arrays), pickle.dumps(arrays, 2), pickle.dumps(arrays, 4), pickle.dumps(arrays, 5)):
        loaded = restricted_loads(data, source="arrays.pkl")
        for key, value in arrays.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(loaded[key], value)
                assert loaded[key].dtype == value.dtype
            else:
                assert loaded[key] == value


def test_chumpy_objects_load_without_chumpy_and_evaluate(tmp_path):
    rng = np.random.default_rng(1)
    base = rng.normal(size=(4, 6))
    with fake_chumpy(tmp_path) as chumpy:
        ch = chumpy.ch.Ch(base)
        content = {
            "ch": ch,
            "select": chumpy.reordering.Select(ch, np.array([5, 0, 7, 7]), (2, 2)),
            "reshape": chumpy.reordering.Reshape(ch, (3, 8)),
            "transpose": chumpy.reordering.transpose(ch, (1, 0)),
            "concat": chumpy.reordering.Concatenate([ch, chumpy.ch.Ch(base * 2)], 0),
        }
        data_py2 = py2_dumps(content)
        data_proto1 = pickle.dumps(content, 1)  # copy_reg._reconstructor path
    with pytest.raises(ImportError):
        import chumpy  # noqa: F401
    for data in (data_py2, data_proto1):
        loaded = restricted_loads(data, source="chumpy.pkl")
        np.testing.assert_array_equal(loaded["ch"].x, base)
        np.testing.assert_array_equal(loaded["ch"].r, base)
        assert isinstance(loaded["select"], ChumpySelect)
        np.testing.assert_array_equal(loaded["select"].r, base.ravel()[[5, 0, 7, 7]].reshape(2, 2))
        np.testing.assert_array_equal(loaded["reshape"].r, base.reshape(3, 8))
        np.testing.assert_array_equal(loaded["transpose"].r, base.T)
        assert isinstance(loaded["concat"], ChumpyConcatenate)
        np.testing.assert_array_equal(np.asarray(loaded["concat"]), np.concatenate([base, base * 2]))
        with pytest.raises(AttributeError):
            _ = loaded["select"].x
    assert "chumpy" not in __import__("sys").modules


def test_other_chumpy_classes_load_inert_and_refuse_evaluation(tmp_path):
    with fake_chumpy(tmp_path) as chumpy:
        data = py2_dumps({"J": chumpy.ch_ops.add(chumpy.ch.Ch(np.ones(3)), chumpy.ch.Ch(np.ones(3)))})
    loaded = restricted_loads(data, source="ops.pkl")["J"]
    assert loaded.legacy_name == "chumpy.ch_ops.add"
    np.testing.assert_array_equal(loaded.state["a"].x, np.ones(3))
    with pytest.raises(ValueError, match=r"chumpy\.ch_ops\.add is a chumpy operation"):
        _ = loaded.r
    with pytest.raises(UnsafePickleError, match=r"chumpyx\.ch\.Ch"):
        restricted_loads(b"\x80\x02cchumpyx.ch\nCh\n)\x81.", source="ops.pkl")


def test_sparse_matrices_load_without_scipy_and_are_validated():
    dense = np.zeros((5, 40))
    dense[[0, 1, 1, 4], [3, 3, 39, 0]] = [0.5, 0.25, 1.0, 2.0]
    loaded = restricted_loads(py2_dumps({"J_regressor": LegacyCscMatrix(dense)}), source="sparse.pkl")["J_regressor"]
    assert isinstance(loaded, CscMatrixState)
    np.testing.assert_array_equal(loaded.toarray(), dense)
    broken = LegacyCscMatrix(dense)
    broken.indptr = broken.indptr[:-1]
    with pytest.raises(ValueError, match="indptr"):
        restricted_loads(py2_dumps(broken), source="sparse.pkl").toarray()


def test_current_scipy_pickles_load_as_well():
    sparse = pytest.importorskip("scipy.sparse")
    dense = np.random.default_rng(2).normal(size=(6, 9)) * (np.random.default_rng(3).random((6, 9)) > 0.6)
    for matrix in (sparse.csc_matrix(dense), sparse.csr_matrix(dense)):
        loaded = restricted_loads(pickle.dumps(matrix, 2), source="scipy.pkl")
        np.testing.assert_array_equal(loaded.toarray(), dense)


# ----------------------------------------------------------------------------------------------
# .npy files

@pytest.mark.parametrize("array", [np.arange(24, dtype=np.float32).reshape(2, 3, 4),
                                   np.asfortranarray(np.arange(6, dtype=">i8").reshape(2, 3)),
                                   np.zeros((0, 3)), np.array(3.5), np.arange(5, dtype=np.uint32)])
def test_numeric_npy_matches_numpy(tmp_path, array):
    path = tmp_path / "a.npy"
    np.save(path, array)
    loaded = load_npy(path)
    np.testing.assert_array_equal(loaded, np.load(path))
    assert loaded.dtype == array.dtype and loaded.shape == array.shape


def test_npy_object_arrays_need_opt_in_and_go_through_the_allow_list(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "landmark_embedding.npy"
    np.save(path, np.array({"static": np.arange(3), "evil": CallsOnLoad(os.system, f"touch {marker}")}),
            allow_pickle=True)
    with pytest.raises(ModelFileError, match="pickled object array"):
        load_npy(path)
    with pytest.raises(UnsafePickleError, match=r"posix\.system") as caught:
        load_npy(path, allow_objects=True)
    assert str(path) in str(caught.value)
    assert not marker.exists()


def test_npy_object_array_with_torch_tensors_loads(tmp_path):
    content = {"idx": torch.arange(6).reshape(2, 3), "bary": torch.rand(2, 3, 3, dtype=torch.float64),
               "np": np.arange(4)}
    path = tmp_path / "lm.npy"
    np.save(path, content, allow_pickle=True)
    loaded = load_npy(path, allow_objects=True).item()
    assert torch.equal(loaded["idx"], content["idx"]) and torch.equal(loaded["bary"], content["bary"])
    np.testing.assert_array_equal(loaded["np"], content["np"])


def test_malicious_torch_storage_inside_npy_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    blob = io.BytesIO()
    torch.save(CallsOnLoad(os.system, f"touch {marker}"), blob, _use_new_zipfile_serialization=False)
    from torch.storage import _load_from_bytes
    data = pickle.dumps(np.array([CallsOnLoad(_load_from_bytes, blob.getvalue())], dtype=object), 3)
    with pytest.raises(UnsafePickleError, match=r"posix\.system"):
        restricted_loads(data, source="lm.npy", allowed=NPY_OBJECT_GLOBALS)
    assert not marker.exists()


def test_truncated_and_foreign_npy_files_are_reported(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.arange(100.0))
    with pytest.raises(ModelFileError, match="truncated"):
        loads_npy(path.read_bytes()[:-8], source="a.npy")
    with pytest.raises(ModelFileError, match="magic"):
        loads_npy(b"PK\x03\x04" + b"\0" * 50, source="a.npy")


# ----------------------------------------------------------------------------------------------
# torch checkpoints

def test_malicious_torch_checkpoint_is_refused_by_weights_only(tmp_path):
    marker = tmp_path / "pwned"
    for legacy in (False, True):
        path = tmp_path / f"deca_model_{legacy}.tar"
        torch.save({"E_flame": {"layers.0.weight": torch.zeros(2)}, "opt": CallsOnLoad(os.system, f"touch {marker}")},
                   path, _use_new_zipfile_serialization=not legacy)
        with pytest.raises(UnsafePickleError, match=r"posix\.system") as caught:
            load_torch_checkpoint(path, what="DECA checkpoint")
        assert str(path) in str(caught.value) and "DECA checkpoint" in str(caught.value)
        assert not marker.exists()


def test_training_checkpoint_extras_load_with_weights_only(tmp_path):
    param = torch.nn.Parameter(torch.randn(3))
    optimiser = torch.optim.Adam([param], lr=1e-4)
    param.sum().backward()
    optimiser.step()
    content = {"E_flame": OrderedDict(w=torch.randn(2, 2)), "opt": optimiser.state_dict(), "global_step": 1000,
               "batch_size": 32}
    for legacy in (False, True):
        path = tmp_path / f"ckpt_{legacy}.tar"
        torch.save(content, path, _use_new_zipfile_serialization=not legacy)
        loaded = load_torch_checkpoint(path)
        assert torch.equal(loaded["E_flame"]["w"], content["E_flame"]["w"])
        assert loaded["global_step"] == 1000 and loaded["opt"]["param_groups"][0]["lr"] == 1e-4


def test_unreadable_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "deca_model.tar"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelFileError, match="deca_model.tar"):
        load_torch_checkpoint(path)
