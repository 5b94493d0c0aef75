"""Run one experiment under several seeds and report each generation as mean ± std.

    python tools/multi_seed.py --seeds 0,1,2 --out runs/fm-seeds -- \
        -m experiments.fashion_mnist --data ../shared/data/fashion-mnist --gens 4 --epochs 3

Everything after ``--`` is passed to ``python`` with ``--seed S --out OUT/seed_S`` added;
runs that already finished are reused (``--resume``), so an interrupted sweep continues.

Besides mean ± std per generation it prints the *paired* difference of every generation, the
final student (chosen on validation) and the BAN ensembles to the same seed's generation 0,
with a 95% Student-t interval ("within noise" when it contains 0): on test accuracy, or
validation where the data has no test split. ``--baseline compute-matched`` also trains, per
seed, generation 0 alone for as many epochs as the whole lineage spent
(``OUT/seed_S-compute-matched``), to show whether the lineage beat simply training longer;
``--baseline label-smoothing`` trains generation 0 alone with ``--label-smoothing 0.1``
(``OUT/seed_S-label-smoothing``), the label-only regulariser that explains part of
self-distillation's gains. Both may be given.

Beside the lineage's Δ it prints the **headroom** (rnn_jax.lineage.headroom): on the same split,
the ensemble of the seeds' independently trained generation-0 models and the share of examples
right in any of them, next to the mean single model. When the ensemble is no better than one
model, the students had nothing to gain (a Δ of zero is then no verdict on distillation).
Writes ``OUT/summary.json``, ``OUT/summary.csv`` and ``OUT/paired.csv``.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from rnn_jax.errors import main_guard
from rnn_jax.lineage.headroom import format_headroom, seed_headroom
from rnn_jax.lineage.seeds import format_paired, lineage_epochs, metric_key, paired_rows

BASELINES = ("compute-matched", "label-smoothing")
LABEL_SMOOTHING = 0.1  # the usual strength (Szegedy et al. 2016; PS-KD compares against it)


def aggregate(records: list[dict]) -> list[dict]:
    """Per generation: mean/std of val/test accuracy and wall time over the seeds that reached it."""
    rows = []
    max_gen = max(len(r["generations"]) for r in records)
    for gen in range(max_gen):
        entries = [g for r in records for g in r["generations"] if g["gen"] == gen and g.get("status") == "done"]
        row = {"gen": gen, "seeds": len(entries)}
        for key in ("val_acc", "test_acc", "time_s"):
            values = np.array([e[key] for e in entries if key in e], float)
            if len(values):
                row[f"{key}_mean"], row[f"{key}_std"] = float(values.mean()), float(values.std(ddof=1) if len(values) > 1 else 0.0)
        rows.append(row)
    for label in sorted({k for r in records for k in (r.get("ensembles") or {})}):
        values = np.array([r["ensembles"][label]["test_acc"] for r in records
                           if label in (r.get("ensembles") or {}) and "test_acc" in r["ensembles"][label]], float)
        if len(values):
            rows.append({"gen": f"ensemble {label}", "seeds": len(values), "test_acc_mean": float(values.mean()),
                         "test_acc_std": float(values.std(ddof=1) if len(values) > 1 else 0.0)})
    return rows


def format_rows(rows: list[dict]) -> str:
    def cell(row: dict, key: str, scale: float = 100.0, digits: int = 2) -> str:
        if f"{key}_mean" not in row:
            return "-"
        return f"{row[f'{key}_mean'] * scale:.{digits}f} ± {row[f'{key}_std'] * scale:.{digits}f}"

    lines = [f"{'generation':<16} {'seeds':>5} {'val acc %':>16} {'test acc %':>16} {'time/gen (s)':>16}"]
    for row in rows:
        lines.append(f"{row['gen']!s:<16} {row['seeds']:>5} {cell(row, 'val_acc'):>16} {cell(row, 'test_acc'):>16} "
                     f"{cell(row, 'time_s', 1.0, 0):>16}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit("usage: python tools/multi_seed.py --seeds 0,1,2 --out DIR -- -m experiments.X [flags]")
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="python tools/multi_seed.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--out", required=True, help="folder for the per-seed runs and the summary")
    parser.add_argument("--baseline", choices=("none", *BASELINES), action="append", default=[],
                        help="label-only baselines per seed (repeatable): compute-matched = generation 0 "
                             "alone for the lineage's total epochs; label-smoothing = generation 0 with "
                             f"--label-smoothing {LABEL_SMOOTHING} (default none)")
    args = parser.parse_args(argv[:split])
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.exit(2, f"error: --seeds must be comma-separated integers, got {args.seeds!r}\n")
    command = argv[split + 1 :]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = [b for b in dict.fromkeys(args.baseline) if b != "none"]
    records, baselines = [], {name: [] for name in wanted}
    for seed in seeds:
        records.append(_run(command, seed, out / f"seed_{seed}"))
        for name in wanted:
            baselines[name].append(_run([*command, *baseline_flags(name, records[-1])], seed,
                                        out / f"seed_{seed}-{name}"))
    rows = aggregate(records)
    paired = paired_rows(records, baselines or None)
    room = seed_headroom([out / f"seed_{seed}" for seed in seeds], split_of(records), verify=True)
    print("\n" + format_rows(rows))
    print("\n" + format_paired(paired))
    print("\n" + format_headroom(room))
    (out / "summary.json").write_text(json.dumps({"command": command, "seeds": args.seeds, "rows": rows,
                                                  "baselines": wanted, "paired": paired, "headroom": room},
                                                 indent=2))
    _write_csv(out / "summary.csv", rows)
    _write_csv(out / "paired.csv", [{k: v for k, v in r.items() if k != "diffs"} for r in paired])
    print(f"\nwrote {out / 'summary.json'}, {out / 'summary.csv'} and {out / 'paired.csv'}")


def split_of(records: list[dict]) -> str:
    """The split the paired differences are on (test when every run has one, else val)."""
    return "test" if metric_key(records) == "test_acc" else "val"


def baseline_flags(name: str, lineage: dict) -> list[str]:
    """Flags appended to the lineage's own command for a baseline run (appended flags win)."""
    if name == "compute-matched":
        return ["--gens", "1", "--epochs", str(lineage_epochs(lineage))]
    return ["--gens", "1", "--label-smoothing", str(LABEL_SMOOTHING)]


def _run(command: list[str], seed: int, run: Path) -> dict:
    """One seed's run (argparse takes the last of repeated flags, so appended flags win)."""
    extra = ["--seed", str(seed), "--out", str(run)] + (["--resume"] if (run / "lineage.json").exists() else [])
    print(f"== seed {seed}: python {' '.join(command + extra)}", flush=True)
    result = subprocess.run([sys.executable, *command, *extra])
    if result.returncode != 0:
        raise SystemExit(f"seed {seed} failed with exit code {result.returncode} ({run})")
    return json.loads((run / "lineage.json").read_text())


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}, key=str))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main_guard(main)
