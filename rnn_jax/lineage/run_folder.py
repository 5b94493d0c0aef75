"""A run folder (``--out``): its layout, lineage.json (the one writer), the started marker and
the checks that decide whether this command may use it.

    runs/demo/
      .rnn-jax-started        while the data loads, before lineage.json exists (--resume works)
      lineage.json            the record (config, data, generations): rewritten atomically
      metrics.jsonl           one line per epoch, a log
      gen_<k>/                checkpoints (best/, resume/) and <split>_logits.npy

The checks that need no data (:meth:`RunFolder.check`, :func:`check_init_from`) run before a
CLI loads any data, and again when the driver opens the folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rnn_jax.atomic import save_npy_atomic
from rnn_jax.config import RunConfig
from rnn_jax.data.types import Dataset, Split
from rnn_jax.distributed import barrier
from rnn_jax.errors import ResumeError
from rnn_jax.lineage.entry import LineageRecord
from rnn_jax.lineage.record import (
    LINEAGE_FILE,
    STARTED_FILE,
    append_metrics,
    new_lineage,
    read_lineage,
    storage_errors,
    write_json_atomic,
)


def gen_dir(run_dir: Path, gen: int) -> Path:
    return Path(run_dir) / f"gen_{gen}"


def describe_data(dataset: Dataset, train: Split) -> dict:
    """What lineage.json records about the data (``--resume`` compares the fingerprint)."""
    return {
        "name": dataset.name,
        "fingerprint": dataset.fingerprint(),
        "class_names": list(dataset.class_names),
        "image_shape": list(dataset.image_shape),
        "crop_mode": dataset.crop_mode,
        "sizes": {"train_used": len(train), **{k: len(v) for k, v in dataset.splits().items()}},
        "notes": dataset.notes,
    }


def check_init_from(source_run: Path, config: RunConfig) -> dict:
    """Refuse an ``--init-from`` run that is missing, unfinished or of another architecture;
    returns its record."""
    source = read_lineage(source_run)
    theirs = RunConfig.from_dict(source["config"]).model
    if (theirs.name, theirs.size) != (config.model.name, config.model.size):
        raise ResumeError(f"--init-from {source_run} trained {theirs.label}; this run asks for "
                          f"{config.model.label}. Pass --model {theirs.name} --size {theirs.size}.")
    if source.get("final_generation") is None:
        raise ResumeError(f"--init-from {source_run} has no finished generation to start from")
    return source


class RunFolder:
    """One run's folder. ``main``: this process writes (process 0 of a multi-process run);
    the others read the same files and wait at the barriers."""

    def __init__(self, path: str | Path, main: bool = True):
        self.path = Path(path)
        self.main = main

    @property
    def lineage_path(self) -> Path:
        return self.path / LINEAGE_FILE

    def gen_dir(self, gen: int) -> Path:
        return gen_dir(self.path, gen)

    def logits_path(self, gen: int, split: str) -> Path:
        return self.gen_dir(gen) / f"{split}_logits.npy"

    # ------------------------------------------------------------------ checks and marker
    def check(self, config: RunConfig, resume: bool, overwrite: bool) -> dict | None:
        """Refuse a folder this command cannot use; the record ``--resume`` continues, or None."""
        if self.lineage_path.exists():
            if resume:
                record = read_lineage(self.path)
                problems = config.compatible_with(RunConfig.from_dict(record["config"]))
                if problems:
                    raise ResumeError(f"--resume {self.path} does not match this command: " + "; ".join(problems))
                return record
            if not overwrite:
                raise ResumeError(f"{self.path} already holds a run; pass --resume to continue it or choose "
                                  f"another --out")
        elif resume and not (self.path / STARTED_FILE).exists():
            raise ResumeError(f"--resume: {self.path} holds no run to resume (no {LINEAGE_FILE})")
        return None

    def mark_started(self) -> Path | None:
        """Mark the folder as a run being set up, so that one stopped while its data loads (before
        lineage.json exists) can still be continued with --resume. Returns what to remove if the
        data turns out to be unusable: the folder when this call created it, else the marker."""
        if self.lineage_path.exists():
            return None
        created = not self.path.exists()
        with storage_errors(f"the run folder {self.path}"):
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / STARTED_FILE).touch()
        return self.path if created else self.path / STARTED_FILE

    @staticmethod
    def unmark_started(mark: Path | None) -> None:
        """Undo :meth:`mark_started` (a folder is removed only while it holds nothing but the marker)."""
        if mark is None:
            return
        if mark.name == STARTED_FILE:
            mark.unlink(missing_ok=True)
        elif mark.is_dir() and {p.name for p in mark.iterdir()} <= {STARTED_FILE}:
            shutil.rmtree(mark, ignore_errors=True)

    # ------------------------------------------------------------------ the record
    def open(self, config: RunConfig, data: dict, resume: bool, overwrite: bool, data_spec: dict | None,
             log: Callable[[str], None] = print) -> LineageRecord:
        """Check, then create or reopen the folder. Every process checks the same files (so
        they raise the same errors); only process 0 changes them, and the others wait for it.

        ``--resume`` of a folder marked as started but with no lineage.json yet (the run was
        stopped while loading its data) starts the run afresh."""
        record = self.check(config, resume, overwrite)
        if record is not None:  # --resume of a run with this config: the data must match too
            if record["data"]["fingerprint"] != data["fingerprint"]:
                raise ResumeError(f"--resume {self.path} does not match this command: data: run was trained on "
                                  f"{record['data']['name']} (fingerprint {record['data']['fingerprint']}), "
                                  f"this is {data['name']} ({data['fingerprint']})")
            record["config"] = config.to_dict()  # gens may grow on resume
            return LineageRecord(record)
        if resume:  # check() found the started marker: stopped while loading its data
            log(f"--resume: {self.path} was stopped before its first epoch; starting it from the beginning")
        barrier("rnn_jax:run_dir_checked")  # process 0 may delete what the others just looked at
        record = LineageRecord(new_lineage(self.path.name, config.to_dict(), data, data_spec))
        if self.main:
            if overwrite and self.path.exists():
                shutil.rmtree(self.path)
            with storage_errors(str(self.path)):
                self.path.mkdir(parents=True, exist_ok=True)
            self.write_record(record)
            (self.path / STARTED_FILE).unlink(missing_ok=True)
        barrier("rnn_jax:run_dir_created")
        return record

    def write_record(self, record: LineageRecord) -> None:
        """The one writer of lineage.json (atomic; process 0 only)."""
        if self.main:
            write_json_atomic(self.lineage_path, record.to_dict())

    def append_metrics(self, row: dict) -> None:
        if self.main:
            append_metrics(self.path, row)

    def save_logits(self, gen: int, split: str, logits: np.ndarray) -> None:
        if self.main:
            save_array(self.logits_path(gen, split), logits.astype(np.float32))


def save_array(path: Path, array: np.ndarray) -> None:
    """Store a logits array atomically; a failed write is one readable StorageError."""
    with storage_errors(str(path)):
        save_npy_atomic(path, array)
