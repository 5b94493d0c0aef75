"""The checks of a run's target that need no data, so a CLI can make them before it finds,
announces or decodes any (a bad ``--out``/``--resume``/``--init-from`` used to surface only
after the whole data set had loaded). The driver runs the same checks again."""

from __future__ import annotations

from pathlib import Path

from rnn_jax.config import RunConfig
from rnn_jax.errors import ResumeError
from rnn_jax.lineage.record import LINEAGE_FILE, STARTED_FILE, read_lineage


def check_run_dir(config: RunConfig, run_dir: Path, resume: bool, overwrite: bool) -> dict | None:
    """Refuse an ``--out`` this command cannot use; returns the record ``--resume`` continues
    (its config already checked against ``config``), or None for a fresh run."""
    run_dir = Path(run_dir)
    if (run_dir / LINEAGE_FILE).exists():
        if resume:
            record = read_lineage(run_dir)
            problems = config.compatible_with(RunConfig.from_dict(record["config"]))
            if problems:
                raise ResumeError(f"--resume {run_dir} does not match this command: " + "; ".join(problems))
            return record
        if not overwrite:
            raise ResumeError(f"{run_dir} already holds a run; pass --resume to continue it or choose "
                              f"another --out")
    elif resume and not (run_dir / STARTED_FILE).exists():
        raise ResumeError(f"--resume: {run_dir} holds no run to resume (no {LINEAGE_FILE})")
    return None


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
