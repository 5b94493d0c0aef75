"""Human-facing views of a lineage: the per-generation table and PNG plots."""

from __future__ import annotations

from pathlib import Path

from rnn_jax.lineage.record import finished_generations


def _fmt(value, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _teachers(entry: dict) -> str:
    """Which generations taught this one: '-', '0', or '0-2' for an ensemble of 0..2."""
    teachers = entry.get("teachers")
    if teachers is None:  # runs recorded before ensembles existed name only the parent
        return _fmt(entry.get("parent"), "d")
    if not teachers:
        return "-"
    return str(teachers[0]) if len(teachers) == 1 else f"{teachers[0]}-{teachers[-1]}"


def generation_table(record: dict) -> str:
    """A fixed-width table, one row per generation plus the BAN ensembles."""
    has_test = any("test_acc" in g for g in record["generations"])
    key = "test_acc" if has_test else "val_acc"
    header = ["gen", "teacher", "T", "kept ep", "train acc", "val acc"] + (["test acc"] if has_test else []) + [
        f"Δ {key.split('_')[0]} vs gen 0", "time (s)", "status"]
    rows = []
    final = record.get("final_generation")
    base = next((g.get(key) for g in record["generations"] if g["gen"] == 0 and g.get("status") == "done"), None)

    def delta(value) -> str:  # accuracy points against generation 0 (one seed: see multi_seed for noise)
        return "-" if value is None or base is None else f"{(value - base) * 100:+.2f}"

    for g in record["generations"]:
        mark = " *" if g["gen"] == final else ""
        rows.append([
            f"{g['gen']}{mark}", _teachers(g), _fmt(g.get("temperature"), "g"),
            _fmt(None if g.get("best_epoch") is None else g["best_epoch"] + 1, "d"),
            _fmt(g.get("train_acc")), _fmt(g.get("val_acc")),
            *([_fmt(g.get("test_acc"))] if has_test else []),
            "-" if g["gen"] == 0 else delta(g.get(key)),
            _fmt(g.get("time_s"), ".1f"), g.get("status", "?") if g.get("status") != "failed" else "FAILED",
        ])
    for label, ens in (record.get("ensembles") or {}).items():
        rows.append([f"ens {label}", "-", "-", "-", "-", _fmt(ens.get("val_acc")),
                     *([_fmt(ens.get("test_acc"))] if has_test else []), delta(ens.get(key)), "-",
                     f"gens {ens['members']}"])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in rows]
    if final is not None:
        gain = ""
        if final != 0:
            lengths = _epochs(record, 0), _epochs(record, final)
            longer = (f"; generation 0 trained {lengths[0]} epochs, this student {lengths[1]}: part of the gap "
                      "is the longer schedule (tools/multi_seed.py --baseline compute-matched measures a "
                      "label-only model trained longer)") if None not in lengths and lengths[1] > lengths[0] else ""
            gain = f" ({delta(_final_value(record, final, key))} points {key.split('_')[0]} vs gen 0{longer})"
        out.append(f"* final student: generation {final}, chosen on validation{gain}")
    else:
        out.append("no finished generation")
    if record.get("stop_reason"):
        out.append(f"stop: {record['stop_reason']}")
    return "\n".join(out)


def _epochs(record: dict, gen: int) -> int | None:
    """The epochs generation ``gen`` was configured to train (None for records without them)."""
    train = (record.get("config") or {}).get("train") or {}
    if "epochs" not in train:
        return None
    if gen == 0:
        return train["epochs"]
    from rnn_jax.config import STUDENT_EPOCH_FACTOR

    return train.get("student_epochs") or STUDENT_EPOCH_FACTOR * train["epochs"]


def _final_value(record: dict, final: int, key: str):
    return next((g.get(key) for g in record["generations"] if g["gen"] == final), None)


def write_plots(record: dict, run_dir: Path) -> list[Path]:
    """accuracy_per_generation.png and loss_curves.png (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    written = []
    done = finished_generations(record)
    if done:
        fig, ax = plt.subplots(figsize=(6, 4))
        gens = [g["gen"] for g in done]
        for key, label in (("train_acc", "train (clean)"), ("val_acc", "validation"), ("test_acc", "test")):
            if all(key in g for g in done):
                ax.plot(gens, [g[key] for g in done], marker="o", label=label)
        for label, ens in (record.get("ensembles") or {}).items():
            if "val_acc" in ens:
                ax.axhline(ens["val_acc"], linestyle="--", linewidth=1, color="gray")
                ax.annotate(f"ensemble {label} (val)", (gens[0], ens["val_acc"]), fontsize=8,
                            textcoords="offset points", xytext=(0, 3))
        ax.set_xlabel("generation")
        ax.set_ylabel("accuracy")
        ax.set_xticks(gens)
        ax.set_title(f"{record['name']}: accuracy per generation")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = run_dir / "accuracy_per_generation.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    offset = 0
    for g in record["generations"]:
        epochs = g.get("epochs", [])
        xs = [offset + e["epoch"] + 1 for e in epochs]
        ax_loss.plot(xs, [e["train_loss"] for e in epochs], marker=".", label=f"gen {g['gen']} train")
        ax_loss.plot(xs, [e["val_loss"] for e in epochs], linestyle="--", label=f"gen {g['gen']} val CE")
        ax_acc.plot(xs, [e["val_acc"] for e in epochs], marker=".", label=f"gen {g['gen']}")
        offset += len(epochs)
    ax_loss.set(xlabel="epoch (all generations in sequence)", ylabel="loss", title="loss curves")
    ax_acc.set(xlabel="epoch (all generations in sequence)", ylabel="validation accuracy",
               title="validation accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = run_dir / "loss_curves.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)
    return written


def format_table(header: list[str], rows: list[list], style: str = "text") -> str:
    """One table three ways: ``text`` (fixed width, right-aligned), ``markdown`` or ``csv``."""
    cells = [[str(c) for c in row] for row in rows]
    if style == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(cells)
        return buffer.getvalue().rstrip("\n")
    if style == "markdown":
        def line(values: list[str]) -> str:
            return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

        return "\n".join([line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, cells)])
    if style != "text":
        raise ValueError(f"unknown table style {style!r}")
    widths = [max(len(x) for x in col) for col in zip(header, *cells)]
    first = "  ".join(h.rjust(w) for h, w in zip(header, widths))
    return "\n".join([first, "-" * len(first), *("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells)])


def write_confusion_png(confusion, class_names: list[str], path: Path, title: str) -> Path:
    """A confusion matrix people can read: counts in the cells, colour = share of the true class.

    Colouring by row (recall) keeps rare classes visible; the figure grows with the class count
    so names never overlap.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.asarray(confusion)
    n = len(class_names)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape, float), where=rows > 0)
    side = min(22.0, max(5.0, 0.55 * n + 2.5))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class (row)")
    font = 9 if n <= 12 else 7 if n <= 24 else 5
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=font,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), labels=class_names, rotation=45, ha="right", rotation_mode="anchor", fontsize=font + 1)
    ax.set_yticks(range(n), labels=class_names, fontsize=font + 1)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_comparison_png(runs: list[dict], path: Path, split: str = "val") -> Path:
    """Accuracy against GFLOPs per image (left, log scale) and against generation (right).

    Each item of ``runs``: ``label``, ``gflops``, ``acc`` (best generation on ``split``), ``best``
    (bool) and ``per_generation`` (list of (gen, acc)).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_cost, ax_gen) = plt.subplots(1, 2, figsize=(12, 4.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run in enumerate(runs):
        colour = colours[i % len(colours)]
        if run.get("gflops") and run.get("acc") is not None:
            ax_cost.scatter([run["gflops"]], [run["acc"]], s=90 if run.get("best") else 45, color=colour,
                            marker="*" if run.get("best") else "o", zorder=3)
            ax_cost.annotate(run["label"] + (" (best)" if run.get("best") else ""), (run["gflops"], run["acc"]),
                             textcoords="offset points", xytext=(6, 4), fontsize=8)
        gens = run.get("per_generation") or []
        if gens:
            ax_gen.plot([g for g, _ in gens], [a for _, a in gens], marker="o", color=colour, label=run["label"])
    if any(run.get("gflops") for run in runs):
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax_cost.set_xscale("log")
        ax_cost.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 0.01, 0.02, 0.05: plain numbers
        ax_cost.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax_cost.xaxis.set_minor_formatter(NullFormatter())
        ax_cost.margins(x=0.3, y=0.15)  # room for the run names beside the outermost points
    ax_cost.set(xlabel="GFLOPs per image (log scale)", ylabel=f"{split} accuracy (best generation)",
                title=f"{split} accuracy against compute")
    ax_gen.set(xlabel="generation", ylabel=f"{split} accuracy", title=f"{split} accuracy per generation")
    ax_gen.xaxis.get_major_locator().set_params(integer=True)
    for ax in (ax_cost, ax_gen):
        ax.grid(alpha=0.3)
    if any(run.get("per_generation") for run in runs):
        ax_gen.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
