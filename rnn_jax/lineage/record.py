"""lineage.json: the run's config, data fingerprint, versions and per-generation metrics.

Always written atomically (temp file + rename) so a kill never leaves half a file. A write
that fails (disk full, no permission) raises :class:`~rnn_jax.errors.StorageError`, one
readable line, and leaves the previous file as it was.
"""

from __future__ import annotations

import contextlib
import errno
import json
import platform
import signal
import sys
import threading
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from rnn_jax import atomic
from rnn_jax.errors import ResumeError, StorageError

LINEAGE_FILE = "lineage.json"
METRICS_FILE = "metrics.jsonl"
# put in --out by the CLIs before the data loads and removed once lineage.json exists: a run
# killed in between (while decoding its images) can still be continued with --resume
STARTED_FILE = ".rnn-jax-started"
FORMAT_VERSION = 1
_LIBRARIES = ("rnn-jax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "numpy")


_NO_SPACE = ("no space left on device", "enospc", "disk quota exceeded")


def is_out_of_space(exc: BaseException) -> bool:
    """True for a full disk, whether it arrives as OSError or as another library's wrapper."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return True
    return any(text in str(exc).lower() for text in _NO_SPACE)


def storage_error(what: str, exc: BaseException) -> StorageError:
    """The one-line error for a failed write of ``what``."""
    reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc).splitlines()[0]
    if is_out_of_space(exc):
        reason = "no space left on device"
    return StorageError(f"cannot write {what} ({reason}); what was saved before it is intact")


@contextlib.contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """Turn an OSError (or an out-of-space error of any type) inside the block into a StorageError."""
    try:
        yield
    except OSError as exc:
        raise storage_error(what, exc) from exc
    except Exception as exc:
        if is_out_of_space(exc):
            raise storage_error(what, exc) from exc
        raise


@contextlib.contextmanager
def uninterrupted(note: str = "finishing the save before stopping") -> Iterator[None]:
    """Hold Ctrl-C until the block's writes are done, then stop as usual (KeyboardInterrupt).

    Keeps one epoch's checkpoints and record together when the user presses Ctrl-C; a second
    Ctrl-C stops at once (safe too: resume copes with a kill at any moment, it just redoes the
    epoch). Only the main thread can handle signals; elsewhere the block runs unprotected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed: list[int] = []
    previous = signal.getsignal(signal.SIGINT)

    def hold(signum, frame):
        if pressed:
            raise KeyboardInterrupt
        pressed.append(signum)
        try:
            print(f"\nCtrl-C: {note} (press again to stop at once)", file=sys.stderr, flush=True)
        except (OSError, RuntimeError):  # stderr busy or closed: holding the signal is what matters
            pass

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed:
        if callable(previous):
            previous(signal.SIGINT, None)
        elif previous == signal.SIG_DFL:
            raise KeyboardInterrupt


def write_json_atomic(path: Path, obj: Any) -> None:
    """lineage.json's format (indent 2, numpy scalars as numbers), written atomically."""
    with storage_errors(str(path)):
        atomic.write_json_atomic(path, obj, indent=2, default=_json_default)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        import jax

        versions["devices"] = ", ".join(sorted({d.platform for d in jax.devices()}))
    except Exception:  # noqa: BLE001 - versions are informational only
        pass
    return versions


def new_lineage(name: str, config: dict, data: dict, data_spec: dict | None) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": config,
        "data": data,
        "data_spec": data_spec,
        "versions": library_versions(),
        "generations": [],
        "final_generation": None,
        "stop_reason": None,
        "ensembles": {},
    }


def read_lineage(run_dir: Path) -> dict:
    """Load a run's lineage.json with a clear error when it is missing or unreadable."""
    path = Path(run_dir) / LINEAGE_FILE
    if not path.is_file():
        raise ResumeError(f"{run_dir} is not an rnn-jax run: it has no {LINEAGE_FILE}")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResumeError(f"{path} is corrupt ({exc}); the checkpoints beside it are intact") from None
    if record.get("format_version", 0) > FORMAT_VERSION:
        raise ResumeError(f"{path} was written by a newer rnn-jax; upgrade to read it")
    return record


def generation_entry(record: dict, gen: int) -> dict | None:
    for entry in record["generations"]:
        if entry["gen"] == gen:
            return entry
    return None


def finished_generations(record: dict) -> list[dict]:
    return [g for g in record["generations"] if g.get("status") == "done"]


def choose_final_generation(done: list[dict], by: str = "val_loss") -> int:
    """The generation shipped as the final student, chosen on validation.

    ``by="val_loss"``: the lowest validation cross-entropy (ties: higher accuracy, then the
    earlier generation). ``"val_acc"``: the highest validation accuracy (ties: lower
    cross-entropy, then earlier). Records without a validation loss fall back to accuracy.
    """
    if by == "val_loss" and all("val_loss" in g for g in done):
        best = min(done, key=lambda g: (g["val_loss"], -g["val_acc"], g["gen"]))
    else:
        best = max(done, key=lambda g: (g["val_acc"], -g.get("val_loss", float("inf")), -g["gen"]))
    return best["gen"]


def append_metrics(run_dir: Path, row: dict) -> None:
    """One JSON object per epoch, appended (metrics.jsonl is a log, not the source of truth)."""
    path = Path(run_dir) / METRICS_FILE
    with storage_errors(str(path)), open(path, "a") as f:
        f.write(json.dumps(row, default=_json_default) + "\n")
