"""Flags every experiment shares, and the run-and-report wrapper around the driver."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rnn_jax.errors import RnnJaxError, StorageError


def add_common_flags(parser: argparse.ArgumentParser, *, gens: int, epochs: int | None, model: str | None,
                     size: str | None, batch_size: int | None = 128, lr: float | None = 3e-3,
                     augment: str = "basic", mixup: float = 0.0, teacher: str = "cached",
                     keep_epoch: str = "last") -> None:
    """The engine's flags. A default of None means "from the experiment's preset"; the recipe
    defaults (mixup, teacher, keep_epoch) are each experiment's study winner (docs/distillation.md)."""

    def default(value) -> str:
        return "from --preset" if value is None else str(value)

    g = parser.add_argument_group("lineage")
    g.add_argument("--gens", type=int, default=gens, help=f"generations to train (default {gens})")
    g.add_argument("--epochs", type=int, default=epochs, help=f"epochs per generation (default {default(epochs)})")
    g.add_argument("--student-epochs", type=int, default=None,
                   help="epochs of every generation after 0 (default: twice --epochs, the recipe of "
                        "docs/distillation.md; pass --epochs' value for equal-length generations)")
    g.add_argument("--batch-size", type=int, default=batch_size, help=f"training batch size (default {default(batch_size)})")
    g.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default {default(lr)})")
    g.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw", help="optimizer (default adamw)")
    g.add_argument("--weight-decay", type=float, default=5e-4, help="weight decay (default 5e-4)")
    g.add_argument("--model", default=model, help=f"model name from `python -m rnn_jax.models` (default {default(model)})")
    g.add_argument("--size", default=size, help=f"model size preset: tiny, small, medium, large, xlarge (default {default(size)})")
    g.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                   help="compute dtype; parameters stay float32 (bfloat16 suits recent GPUs)")
    g.add_argument("--conv", default="auto", choices=("auto", "xla", "onednn"),
                   help="who runs the ResNets' convolutions on CPU: auto = oneDNN when its kernel builds here "
                        "(faster; needs a C++ compiler), else XLA (default auto; GPUs always use XLA)")
    g.add_argument("--devices", type=int, default=None,
                   help="data-parallel over this many devices (default: all visible, of every process in a "
                        "multi-process run); --batch-size must divide by it. See docs/distributed.md")
    g.add_argument("--seed", type=int, default=0, help="run seed; generation k uses seed*1000+k (default 0)")
    g.add_argument("--max-train", type=int, default=None, help="cap the training examples (quick runs)")
    g.add_argument("--augment", choices=("none", "basic", "strong"), default=augment,
                   help="augmentation: basic = shift+flip, strong = + colour + cutout (noisy student) "
                        f"(default {augment})")
    g.add_argument("--no-flip", action="store_true", help="no horizontal flips (when left/right changes the class)")
    g.add_argument("--mixup", type=float, default=mixup,
                   help=f"mixup Beta(a, a) on every generation's batches, teacher included (0 = off; default {mixup:g})")
    g.add_argument("--cutmix", type=float, default=0.0,
                   help="CutMix Beta(a, a) likewise (0 = off, default; with --mixup, half the batches each)")
    g.add_argument("--keep-epoch", choices=("best", "last"), default=keep_epoch,
                   help="the weights each generation keeps: best = its epoch with the highest validation "
                        f"accuracy, last = the end of its schedule (default {keep_epoch})")
    d = parser.add_argument_group("distillation")
    d.add_argument("--alpha", type=float, default=0.7, help="weight of the KD term, 0..1 (default 0.7)")
    d.add_argument("--temperature", type=float, default=4.0, help="distillation temperature T > 0 (default 4)")
    d.add_argument("--temperature-end", type=float, default=None, help="final T for linear/cosine schedules")
    d.add_argument("--temperature-schedule", choices=("constant", "linear", "cosine", "step"), default="constant",
                   help="how T changes across generations (default constant)")
    d.add_argument("--label-smoothing", type=float, default=0.0, help="label smoothing for the CE term")
    d.add_argument("--teacher", choices=("cached", "consistent"), default=teacher,
                   help="cached: teacher logits on clean images once per generation (fast); "
                        f"consistent: teacher runs on each augmented, mixed batch (default {teacher})")
    d.add_argument("--teacher-from", choices=("parent", "ensemble"), default="ensemble",
                   help="who teaches generation k: ensemble = the averaged probabilities of generations "
                        "0..k-1 (default); parent = generation k-1 only")
    d.add_argument("--ema-decay", type=float, default=0.0,
                   help="> 0 keeps an EMA (mean teacher) of the weights; it becomes the generation's model")
    d.add_argument("--ps-kd", type=float, default=0.0, metavar="A",
                   help="progressive self-knowledge distillation (PS-KD, Kim et al. 2021), every generation: "
                        "epoch e's label target is (1-a_e)*onehot + a_e*(the model's own prediction of that "
                        "image in epoch e-1), a_e rising linearly to A in the last epoch (paper: 0.8; "
                        "0 = off, default). Not with --mixup/--cutmix")
    d.add_argument("--hint-weight", type=float, default=0.0, metavar="B",
                   help="FitNets feature hints (Romero et al. 2015) for every student: adds B * MSE between a "
                        "learned 1x1 regressor of its last conv stage's features and the newest teacher's "
                        "(0 = off, default). cnn models only; needs --teacher consistent")
    d.add_argument("--teacher-views", type=int, default=0, metavar="K",
                   help="stored views (FKD, Shen & Xing 2021): the cached teacher scores K fixed augmented "
                        "views of every training image once per student; each epoch the student trains on "
                        "one of them, with exactly the teacher's output on it (0 = off, default). Needs "
                        "--teacher cached and --augment basic or strong; costs K teacher passes over the "
                        "training set per student")
    d.add_argument("--dropout", type=float, default=0.0, help="dropout before the classifier (noisy student)")
    d.add_argument("--stochastic-depth", type=float, default=0.0, help="max drop-path rate (noisy student)")
    d.add_argument("--patience", type=int, default=0,
                   help="stop after this many generations without val gain (0 = never, default)")
    d.add_argument("--min-delta", type=float, default=0.0, help="val-accuracy gain that counts as improvement")
    d.add_argument("--final-by", choices=("val_loss", "val_acc"), default="val_loss",
                   help="the final student: the generation with the lowest validation cross-entropy "
                        "(default: less noisy than accuracy) or the highest validation accuracy")
    o = parser.add_argument_group("output")
    o.add_argument("--out", default=None, help="run folder (default runs/<experiment>-<time>)")
    o.add_argument("--resume", action="store_true", help="continue the run in --out; finished generations are kept")
    o.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    o.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    o.add_argument("--debug", action="store_true", help="show full tracebacks on errors")


def run_config_from_args(args: argparse.Namespace):
    from rnn_jax.config import DistillConfig, RunConfig, TrainConfig
    from rnn_jax.distributed import initialize_from_env
    from rnn_jax.models.registry import model_spec

    # join a multi-process run (SLURM / RNN_JAX_* variables) before anything touches a JAX
    # backend: loading the data below may already do so
    initialize_from_env()

    return RunConfig(
        model=model_spec(args.model, args.size, dropout=args.dropout, stochastic_depth=args.stochastic_depth,
                        dtype=args.dtype, conv=args.conv),
        distill=DistillConfig(alpha=args.alpha, temperature=args.temperature,
                              temperature_end=args.temperature_end,
                              temperature_schedule=args.temperature_schedule,
                              label_smoothing=args.label_smoothing, teacher=args.teacher,
                              teacher_from=args.teacher_from,
                              ema_decay=args.ema_decay,
                              teacher_heads=getattr(args, "teacher_heads", "all"),
                              ps_kd=getattr(args, "ps_kd", 0.0),
                              hint_weight=getattr(args, "hint_weight", 0.0),
                              teacher_views=getattr(args, "teacher_views", 0)),
        train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                          weight_decay=args.weight_decay, augment=args.augment, flip=not args.no_flip,
                          max_train=args.max_train, student_epochs=args.student_epochs, mixup=args.mixup, cutmix=args.cutmix,
                          keep_epoch=getattr(args, "keep_epoch", "last")),
        gens=args.gens, seed=args.seed, patience=args.patience, min_delta=args.min_delta,
        final_by=getattr(args, "final_by", "val_loss"),
        devices=getattr(args, "devices", None),
    )


def default_out(experiment: str) -> Path:
    return Path("runs") / f"{experiment}-{time.strftime('%Y%m%d-%H%M%S')}"


def _mark_started(out: Path) -> Path | None:
    """Mark ``out`` as a run being set up, so that one stopped while its data loads (before
    lineage.json exists) can still be continued with --resume. Returns what to remove if the
    data turns out to be unusable: the folder when this call created it, else the marker."""
    from rnn_jax.lineage.record import LINEAGE_FILE, STARTED_FILE, storage_errors

    if (out / LINEAGE_FILE).exists():
        return None
    created = not out.exists()
    with storage_errors(f"the run folder {out}"):
        out.mkdir(parents=True, exist_ok=True)
        (out / STARTED_FILE).touch()
    return out if created else out / STARTED_FILE


def _unmark_started(mark: Path | None) -> None:
    import shutil

    from rnn_jax.lineage.record import STARTED_FILE

    if mark is None:
        return
    if mark.name == STARTED_FILE:
        mark.unlink(missing_ok=True)
    elif mark.is_dir() and {p.name for p in mark.iterdir()} <= {STARTED_FILE}:
        shutil.rmtree(mark, ignore_errors=True)


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
    from rnn_jax.lineage.preflight import check_init_from, check_run_dir

    config = config or run_config_from_args(args)
    check_run_dir(config, out, resume=args.resume, overwrite=args.overwrite)
    if init_from is not None:
        check_init_from(Path(init_from), config)
    return config


def run_experiment(args: argparse.Namespace, experiment: str, build_data: Callable,
                   init_from: str | None = None, config=None) -> dict:
    """Validate flags, load data, train the lineage, print the table, write plots.

    ``config``: the RunConfig the caller already built and checked (else built here)."""
    from rnn_jax.lineage.driver import run_lineage
    from rnn_jax.lineage.report import generation_table, write_plots

    out = Path(args.out) if args.out else default_out(experiment)
    config = check_before_data(args, out, init_from, config)  # before any slow work
    resume_hint = f"continue with --resume --out {out}"
    mark = None if args.resume else _mark_started(out)
    try:
        spec, dataset = build_data(args)
    except KeyboardInterrupt:
        print(f"\ninterrupted while loading the data; {resume_hint}", file=sys.stderr)
        raise SystemExit(130) from None
    except BaseException:
        _unmark_started(mark)
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
            _unmark_started(mark)
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


def main_guard(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    """Run a CLI: user errors become one readable line and exit code 2 (``--debug`` shows tracebacks)."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        main(argv)
    except RnnJaxError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        if debug:
            raise
        print("\ninterrupted", file=sys.stderr)
        raise SystemExit(130) from None
