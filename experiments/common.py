"""The run-and-report wrapper around the driver that every experiment shares (its flags:
experiments/flags.py; its exit codes: rnn_jax.errors.main_guard)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from experiments.flags import run_config_from_args
from rnn_jax.errors import RnnJaxError, StorageError


def default_out(experiment: str) -> Path:
    return Path("runs") / f"{experiment}-{time.strftime('%Y%m%d-%H%M%S')}"


def _skipped_images_note(dataset) -> str | None:
    skipped = dataset.notes.get("skipped") or {}
    if not skipped.get("count"):
        return None
    reasons = ", ".join(f"{n} {why}" for why, n in sorted(skipped.get("by_reason", {}).items()))
    example = f"; e.g. {skipped['examples'][0]}" if skipped.get("examples") else ""
    return f"NOTE: skipped {skipped['count']} image(s) that could not be used ({reasons}){example}"


def check_before_data(args: argparse.Namespace, out: Path, init_from: str | None = None, config=None):
    """Every check that needs no data: the flags, ``--out``/``--resume``, ``--init-from``.

    Returns the validated RunConfig. A CLI calls it before it finds, announces or decodes
    any data, so a typo costs a second, not a data load."""
    from rnn_jax.lineage.run_folder import RunFolder, check_init_from

    config = config or run_config_from_args(args)
    RunFolder(out).check(config, args.resume, args.overwrite)
    if init_from is not None:
        check_init_from(Path(init_from), config)
    return config


def run_experiment(args: argparse.Namespace, experiment: str, build_data: Callable,
                   init_from: str | None = None, config=None) -> dict:
    """Validate flags, load data, train the lineage, print the table, write plots.

    ``config``: the RunConfig the caller already built and checked (else built here)."""
    from rnn_jax.lineage.driver import run_lineage
    from rnn_jax.lineage.report import generation_table, write_plots
    from rnn_jax.lineage.run_folder import RunFolder

    out = Path(args.out) if args.out else default_out(experiment)
    config = check_before_data(args, out, init_from, config)  # before any slow work
    resume_hint = f"continue with --resume --out {out}"
    mark = None if args.resume else RunFolder(out).mark_started()  # removed again if the run never starts
    try:
        spec, dataset = build_data(args)
    except KeyboardInterrupt:
        print(f"\ninterrupted while loading the data; {resume_hint}", file=sys.stderr)
        raise SystemExit(130) from None
    except BaseException:
        RunFolder.unmark_started(mark)
        raise
    for key, note in dataset.notes.items():
        if key == "demo":
            print(f"NOTE: {note}")
    skipped = _skipped_images_note(dataset)
    if skipped:
        print(skipped)
    started = time.perf_counter()
    try:
        record = run_lineage(config, dataset, out, resume=args.resume, overwrite=args.overwrite,
                             data_spec=spec.to_dict() if spec else None, progress=not args.no_progress,
                             init_from=init_from)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished epochs are saved; {resume_hint}", file=sys.stderr)
        raise SystemExit(130) from None
    except StorageError as exc:
        raise StorageError(f"{exc}; once it can be written, {resume_hint}") from exc
    except RnnJaxError:  # refused before it started (e.g. --batch-size): leave no empty run folder
        if not (out / "lineage.json").exists():
            RunFolder.unmark_started(mark)
        raise
    from rnn_jax.distributed import is_main_process

    if not is_main_process():  # only process 0 prints and writes reports
        return record
    print()
    print(generation_table(record))
    plots = write_plots(record, out)
    print(f"\nrun folder: {out}  ({time.perf_counter() - started:.0f}s)")
    print(f"  lineage.json, metrics.jsonl, {', '.join(p.name for p in plots)}")
    from rnn_jax.lineage.run_report import report_summary, write_run_report

    report, files = write_run_report(out, record, dataset)
    print(f"  {', '.join(p.name for p in files)}\n{report_summary(report)}")
    print(f"  next: python tools/evaluate.py --run {out}   |   python tools/export_onnx.py --run {out}")
    failed = [g for g in record["generations"] if g.get("status") == "failed"]
    if failed:  # the finished generations are usable, but the run did not do what was asked
        print(f"error: generation {failed[0]['gen']} failed: {failed[0].get('stop_reason')}", file=sys.stderr)
        raise SystemExit(1)
    return record
