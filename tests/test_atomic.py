"""rnn_jax.atomic: a write either lands whole under its name or leaves nothing behind."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from rnn_jax.atomic import (
    publish,
    save_npy_atomic,
    temp_beside,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
    writing,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_temp_beside_is_hidden_unique_and_keeps_the_suffix(tmp_path: Path) -> None:
    dest = tmp_path / "student.onnx"
    a, b = temp_beside(dest, ".onnx"), temp_beside(dest, ".onnx")
    assert a != b and a.parent == tmp_path and a.name.startswith(".student.onnx.") and a.name.endswith(".tmp.onnx")
    assert temp_beside(dest).name.endswith(".tmp") and not dest.exists()


def test_publish_replaces_with_normal_permissions(tmp_path: Path) -> None:
    dest = tmp_path / "x.txt"
    dest.write_text("old")
    tmp = temp_beside(dest)
    tmp.write_text("new")
    assert publish(tmp, dest) == dest and dest.read_text() == "new" and not tmp.exists()
    assert _mode(dest) == 0o666 & ~_umask()


def test_publish_can_keep_the_mode(tmp_path: Path) -> None:
    tmp = temp_beside(tmp_path / "lib.so")
    os.chmod(tmp, 0o700)
    publish(tmp, tmp_path / "lib.so", keep_mode=True)
    assert _mode(tmp_path / "lib.so") == 0o700


def test_writers_round_trip(tmp_path: Path) -> None:
    write_bytes_atomic(tmp_path / "b", b"\x00\x01")
    write_text_atomic(tmp_path / "t", "héllo", fsync=False)
    write_json_atomic(tmp_path / "j.json", {"a": (1, 2)}, indent=2, end="\n")
    save_npy_atomic(tmp_path / "a.npy", np.arange(4, dtype=np.float32))
    assert (tmp_path / "b").read_bytes() == b"\x00\x01" and (tmp_path / "t").read_text("utf-8") == "héllo"
    assert (tmp_path / "j.json").read_text() == json.dumps({"a": [1, 2]}, indent=2) + "\n"
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.arange(4, dtype=np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "b", "j.json", "t"]  # no temp left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    dest = tmp_path / "r.json"
    dest.write_text("{}")
    with pytest.raises(TypeError):
        write_json_atomic(dest, {"x": object()})
    with pytest.raises(RuntimeError), writing(dest, ".json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert dest.read_text() == "{}" and [p.name for p in tmp_path.iterdir()] == ["r.json"]
