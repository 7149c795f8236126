"""Strict key / shape checks: readable diffs naming the file, manifests, converted-file loading."""
from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
import torch

from models.loading import (ModelFileError, StateDictMismatchError, check_state_dict, parse_manifest,
                            read_checked_safetensors, write_safetensors_atomic)

MANIFEST = """\
# demo (owner/repo @ 0123456789ab): Model(arg=1)
# state dict sits under checkpoint["model"]
# total params 123
net.conv.weight (8, 3, 3, 3)
net.conv.bias (8,)
net.bn.num_batches_tracked ()
head.weight (2, 8)
"""


def test_manifest_parsing_with_prefix_and_scalars(tmp_path):
    path = tmp_path / "demo_keys.txt"
    path.write_text(MANIFEST)
    shapes = parse_manifest(path)
    assert shapes == {"net.conv.weight": (8, 3, 3, 3), "net.conv.bias": (8,), "net.bn.num_batches_tracked": (),
                      "head.weight": (2, 8)}
    assert list(parse_manifest(path, prefix="net.")) == ["conv.weight", "conv.bias", "bn.num_batches_tracked"]
    path.write_text(MANIFEST + "garbage line\n")
    with pytest.raises(ModelFileError, match="line 8"):
        parse_manifest(path)


def test_every_shared_manifest_parses():
    folder = Path(os.environ.get(
        "LIKENESS_MANIFESTS", Path(__file__).resolve().parents[3] / "shared" / "manifests"))
    files = sorted(folder.glob("*_keys.txt"))
    if not files:
        pytest.skip(f"no manifests in {folder}")
    counts = {f.name: len(parse_manifest(f)) for f in files}
    assert counts.get("deca_model_keys.txt", 688) == 688
    assert all(n > 0 for n in counts.values())


def test_mismatch_message_lists_missing_unexpected_and_wrong_shapes(tmp_path):
    path = tmp_path / "demo_keys.txt"
    path.write_text(MANIFEST)
    actual = {"net.conv.weight": torch.zeros(8, 3, 5, 5), "net.bn.num_batches_tracked": torch.tensor(0),
              "head.weight": torch.zeros(2, 8), "head.extra": torch.zeros(4)}
    with pytest.raises(StateDictMismatchError) as caught:
        check_state_dict(actual, path, "demo checkpoint", Path("/models/demo.pth"))
    message = str(caught.value)
    assert message.startswith("/models/demo.pth: not a valid demo checkpoint: "
                              "expected 4 tensors (per manifest demo_keys.txt), found 4.")
    assert "missing 1 key(s):\n    net.conv.bias (8,)" in message
    assert "unexpected 1 key(s):\n    head.extra (4,)" in message
    assert "wrong shape for 1 key(s):\n    net.conv.weight: expected (8, 3, 3, 3), found (8, 3, 5, 5)" in message
    error = caught.value
    assert error.missing == ["net.conv.bias"] and error.unexpected == ["head.extra"]
    assert error.mismatched == [("net.conv.weight", (8, 3, 3, 3), (8, 3, 5, 5))]
    assert error.file == "/models/demo.pth"


def test_long_lists_are_truncated_with_counts():
    expected = {f"block.{i}.weight": (4,) for i in range(25)}
    with pytest.raises(StateDictMismatchError) as caught:
        check_state_dict({}, expected, "model", "m.safetensors", limit=10)
    message = str(caught.value)
    assert "missing 25 key(s)" in message and "block.9.weight" in message and "block.10.weight" not in message
    assert "... and 15 more" in message


def test_optional_keys_may_be_absent_but_not_misshaped():
    expected = {"w": (2,), "bn.num_batches_tracked": (), "full": (3,)}
    check_state_dict({"w": (2,)}, expected, "model", "f", optional=["full"], optional_suffixes=["num_batches_tracked"])
    with pytest.raises(StateDictMismatchError, match=r"full: expected \(3,\), found \(4,\)"):
        check_state_dict({"w": (2,), "full": (4,)}, expected, "model", "f", optional=["full"],
                         optional_suffixes=["num_batches_tracked"])
    check_state_dict({"w": (2,), "bn.num_batches_tracked": (), "full": (3,), "more": (1,)}, expected, "model", "f",
                     allow_unexpected=True)


def test_safetensors_written_atomically_and_read_strictly(tmp_path):
    path = tmp_path / "out" / "thing.safetensors"
    tensors = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.tensor(3)}
    read = functools.partial(read_checked_safetensors, converter="scripts/make_thing.py")
    write_safetensors_atomic(path, tensors, {"kind": "thing", "source": {"sha256": "00"}})
    write_safetensors_atomic(path, tensors, {"kind": "thing", "source": {"sha256": "11"}})  # replaces in place
    assert sorted(p.name for p in path.parent.iterdir()) == ["thing.safetensors"]
    loaded, meta = read(path, {"a": (2, 3), "b": ()}, what="thing file", kind="thing")
    assert torch.equal(loaded["a"], tensors["a"]) and meta["source"]["sha256"] == "11"
    with pytest.raises(ModelFileError, match="metadata kind is 'thing', expected 'other'"):
        read(path, {"a": (2, 3), "b": ()}, what="other file", kind="other")
    with pytest.raises(StateDictMismatchError, match=r"a: expected \(3, 2\), found \(2, 3\)"):
        read(path, {"a": (3, 2), "b": ()}, what="thing file", kind="thing")
    with pytest.raises(ModelFileError, match="not found .convert the official files with scripts/make_thing.py"):
        read(tmp_path / "nope.safetensors", {}, what="thing file", kind="thing")
    (tmp_path / "junk.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(ModelFileError, match="junk.safetensors"):
        read(tmp_path / "junk.safetensors", {}, what="thing file", kind="thing")


def test_tensors_sharing_storage_are_written_as_copies(tmp_path):
    base = torch.arange(12.0).reshape(3, 4)
    path = write_safetensors_atomic(tmp_path / "views.safetensors", {"all": base, "rows": base[:2], "col": base[:, 1]},
                                    {"kind": "views"})
    loaded, _ = read_checked_safetensors(path, {"all": (3, 4), "rows": (2, 4), "col": (3,)}, what="views", kind="views",
                                         converter="scripts/make_views.py")
    assert torch.equal(loaded["rows"], base[:2]) and torch.equal(loaded["col"], base[:, 1])


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "thing.safetensors"
    write_safetensors_atomic(path, {"a": torch.zeros(2)}, {"kind": "thing", "n": 1})
    before = path.read_bytes()

    def crash(src, dst):
        assert Path(src).exists() and Path(src).parent == path.parent  # written next to the target first
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_safetensors_atomic(path, {"a": torch.ones(2)}, {"kind": "thing", "n": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thing.safetensors"]
    assert path.read_bytes() == before
