"""Atomic file writes: the one place rnn-jax writes a file so a crash never leaves half of it.

Every writer follows the same pattern: write a unique hidden temp file beside the
destination (same folder, so the same file system), optionally ``fsync`` it, then
``os.replace`` it into place. A reader sees the old file or the whole new one, never a
partial one, and a failed write removes its temp file. Pure stdlib + numpy (no JAX), so the
live path and the data tools can use it too.

    write_json_atomic(run_dir / "lineage.json", record, indent=2)
    with writing(dest, ".onnx") as tmp:      # any library that writes to a path
        onnx.save_model(proto, str(tmp))
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["publish", "save_npy_atomic", "temp_beside", "write_bytes_atomic", "write_json_atomic",
           "write_text_atomic", "writing"]


def temp_beside(dest: str | Path, suffix: str = "") -> Path:
    """A new, unique, hidden temp file ``.<name>.XXXX.tmp<suffix>`` in ``dest``'s folder.

    ``suffix`` keeps an extension some writers insist on (``.npy`` for ``np.save``,
    ``.npz``, ``.onnx``). The file exists (empty, owner-only) until published or removed.
    """
    dest = Path(dest)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=f".tmp{suffix}")
    os.close(fd)
    return Path(name)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def publish(tmp: str | Path, dest: str | Path, *, keep_mode: bool = False) -> Path:
    """Atomically move a finished temp file to ``dest`` and return ``dest``.

    The file gets the normal umask-based permissions (``temp_beside`` made it owner-only)
    unless ``keep_mode`` (e.g. a linker's output that already has the mode it should keep).
    """
    dest = Path(dest)
    if not keep_mode:
        os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, dest)
    return dest


@contextmanager
def writing(dest: str | Path, suffix: str = "", *, keep_mode: bool = False) -> Iterator[Path]:
    """Yield a temp path beside ``dest``; publish it when the block ends, remove it on error."""
    tmp = temp_beside(dest, suffix)
    try:
        yield tmp
        publish(tmp, dest, keep_mode=keep_mode)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (``fsync`` first, so it survives a power cut too)."""
    with writing(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
    return Path(path)


def write_text_atomic(path: str | Path, text: str, *, fsync: bool = True, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode(encoding), fsync=fsync)


def write_json_atomic(path: str | Path, obj: Any, *, end: str = "", fsync: bool = True,
                      **json_kwargs: Any) -> Path:
    """Write ``json.dumps(obj, **json_kwargs) + end`` to ``path`` atomically.

    ``json_kwargs`` go to :func:`json.dumps` unchanged (``indent``, ``default``...);
    ``end="\\n"`` for files that should finish with a newline. Nothing is written (and the
    old file stays) if ``obj`` cannot be serialised.
    """
    return write_text_atomic(path, json.dumps(obj, **json_kwargs) + end, fsync=fsync)


def save_npy_atomic(path: str | Path, array: np.ndarray) -> Path:
    """``np.save`` ``array`` to ``path`` atomically (never pickled)."""
    with writing(path, ".npy") as tmp:
        np.save(tmp, np.asarray(array), allow_pickle=False)
    return Path(path)
