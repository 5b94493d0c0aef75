"""Human-facing views of a lineage: the per-generation table and PNG plots."""

from __future__ import annotations

from pathlib import Path

from rnn_jax.lineage.record import finished_generations


def _fmt(value, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def generation_table(record: dict) -> str:
    """A fixed-width table, one row per generation plus the BAN ensembles."""
    has_test = any("test_acc" in g for g in record["generations"])
    header = ["gen", "parent", "T", "best ep", "train acc", "val acc"] + (["test acc"] if has_test else []) + [
        "time (s)", "status"]
    rows = []
    final = record.get("final_generation")
    for g in record["generations"]:
        mark = " *" if g["gen"] == final else ""
        rows.append([
            f"{g['gen']}{mark}", _fmt(g.get("parent"), "d"), _fmt(g.get("temperature"), "g"),
            _fmt(None if g.get("best_epoch") is None else g["best_epoch"] + 1, "d"),
            _fmt(g.get("train_acc")), _fmt(g.get("val_acc")),
            *([_fmt(g.get("test_acc"))] if has_test else []),
            _fmt(g.get("time_s"), ".1f"), g.get("status", "?") if g.get("status") != "failed" else "FAILED",
        ])
    for label, ens in (record.get("ensembles") or {}).items():
        rows.append([f"ens {label}", "-", "-", "-", "-", _fmt(ens.get("val_acc")),
                     *([_fmt(ens.get("test_acc"))] if has_test else []), "-", f"gens {ens['members']}"])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in rows]
    out.append(f"* final student: generation {final}" if final is not None else "no finished generation")
    if record.get("stop_reason"):
        out.append(f"stop: {record['stop_reason']}")
    return "\n".join(out)


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
