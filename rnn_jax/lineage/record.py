"""lineage.json: the run's config, data fingerprint, versions and per-generation metrics.

Always written atomically (temp file + rename) so a kill never leaves half a file.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from rnn_jax.errors import ResumeError

LINEAGE_FILE = "lineage.json"
METRICS_FILE = "metrics.jsonl"
FORMAT_VERSION = 1
_LIBRARIES = ("rnn-jax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "numpy")


def write_json_atomic(path: Path, obj: Any) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, default=_json_default)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def append_metrics(run_dir: Path, row: dict) -> None:
    """One JSON object per epoch, appended (metrics.jsonl is a log, not the source of truth)."""
    with open(Path(run_dir) / METRICS_FILE, "a") as f:
        f.write(json.dumps(row, default=_json_default) + "\n")
