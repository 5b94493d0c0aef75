"""One table over several ``tools/multi_seed.py`` folders: a recipe study at a glance.

    python tools/study_table.py runs/study/*/ --markdown > table.md
    python tools/study_table.py runs/fm-a runs/fm-b --csv study.csv

One row per folder (a setting): seeds, generation 0's accuracy (mean ± std), the paired
difference of every generation, of the final student (chosen on validation) and of the
all-generation ensemble to the same seed's generation 0 (mean and 95% interval, in points),
the final student against each label-only baseline the folder has, and which generation
each seed shipped. Beside the final student's Δ, the **headroom** (rnn_jax.lineage.headroom):
the ensemble of the seeds' generation-0 models and "right in any of them", each in points over
the mean single generation 0 on the same split; near zero, the students had nothing to gain.
Numbers are read from the per-seed ``lineage.json`` files, so a study
still running shows the seeds that finished. ``--final-by val_loss|val_acc`` re-chooses every
seed's final student with that rule (on validation only) instead of the one each run recorded.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from rnn_jax.errors import ConfigError, main_guard  # noqa: E402
from rnn_jax.lineage.headroom import seed_headroom  # noqa: E402
from rnn_jax.lineage.record import choose_final_generation  # noqa: E402
from rnn_jax.lineage.seeds import metric_key, paired_rows  # noqa: E402
from tools.multi_seed import BASELINES  # noqa: E402


def finished(path: Path) -> dict | None:
    """A run's lineage record when every generation it asked for is done, else None."""
    lineage = path / "lineage.json"
    if not lineage.is_file():
        return None
    record = json.loads(lineage.read_text())
    done = [g for g in record["generations"] if g.get("status") == "done"]
    if not done or len(done) < record["config"]["gens"] or record.get("final_generation") is None:
        return None
    return record


def setting_row(folder: Path, final_by: str = "recorded") -> dict | None:
    """The row of one multi_seed folder (None when no seed has finished)."""
    seeds = sorted((p for p in folder.glob("seed_*") if p.name.split("_", 1)[1].isdigit()),
                   key=lambda p: int(p.name.split("_", 1)[1]))
    records, baselines, used = [], {name: [] for name in BASELINES}, []
    for seed_dir in seeds:
        record = finished(seed_dir)
        if record is None:
            continue
        used.append(seed_dir)
        extra = {name: finished(folder / f"{seed_dir.name}-{name}") for name in BASELINES}
        if final_by != "recorded":
            done = [g for g in record["generations"] if g.get("status") == "done"]
            record = {**record, "final_generation": choose_final_generation(done, final_by)}
        records.append(record)
        for name, run in extra.items():
            baselines[name].append(run)
    if not records:
        return None
    # a baseline is compared over the seeds that have it
    complete = {name: runs for name, runs in baselines.items() if any(r is not None for r in runs)}
    key = metric_key(records)
    gen0 = [g[key] for r in records for g in r["generations"] if g["gen"] == 0]
    mean = sum(gen0) / len(gen0)
    std = math.sqrt(sum((x - mean) ** 2 for x in gen0) / (len(gen0) - 1)) if len(gen0) > 1 else 0.0
    row = {"setting": folder.name, "seeds": len(records), "metric": key,
           "gen 0 %": f"{100 * mean:.2f} ± {100 * std:.2f}",
           "final gen per seed": ",".join(str(r["final_generation"]) for r in records)}
    for comparison in paired_rows(records, complete or None):
        row[comparison["comparison"]] = _interval(comparison)
        if comparison["comparison"] == "final student - gen 0":
            row.update(headroom_cells(used, "test" if key == "test_acc" else "val"))
    return row


def headroom_cells(runs: list[Path], split: str) -> dict:
    """The two headroom columns (points over the mean single generation 0; "-" when not computable)."""
    room = seed_headroom(runs, split, verify=True)
    if room is None or not room["comparable"]:
        return {"gen-0 ensemble": "-", "right in any gen 0": "-"}
    return {"gen-0 ensemble": f"{100 * room['ensemble_gain']:+.2f} (of {room['models']})",
            "right in any gen 0": f"{100 * room['right_in_any_gain']:+.2f}"}


def _interval(row: dict) -> str:
    if math.isnan(row["lo"]):
        return f"{100 * row['mean']:+.2f}"
    return f"{100 * row['mean']:+.2f} [{100 * row['lo']:+.2f}, {100 * row['hi']:+.2f}]"


def columns(rows: list[dict]) -> list[str]:
    order = ["setting", "seeds", "gen 0 %"]
    gens = sorted({k for row in rows for k in row if k.startswith("gen ") and k.endswith(" - gen 0")},
                  key=lambda k: int(k.split()[1]))  # every generation's column first, whichever row has it
    order += gens
    for row in rows:
        order += [k for k in row if k not in order and k not in ("metric", "final gen per seed")]
    return order + ["final gen per seed"]


def format_markdown(rows: list[dict]) -> str:
    cols = columns(rows)
    names = [c.replace(" - gen 0", " Δ") for c in cols]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "-")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python tools/study_table.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="tools/multi_seed.py --out folders, one per setting")
    parser.add_argument("--markdown", action="store_true", help="a markdown table (default: the same, plain)")
    parser.add_argument("--csv", default=None, help="also write the rows to this CSV file")
    parser.add_argument("--final-by", choices=("recorded", "val_loss", "val_acc"), default="recorded",
                        help="the final student of each seed: as its run recorded it (default), or "
                             "re-chosen by validation loss or accuracy")
    args = parser.parse_args(argv)
    folders = [Path(f) for f in args.folders]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise ConfigError(f"not a folder: {', '.join(missing)} (give tools/multi_seed.py --out folders)")
    rows = [row for row in (setting_row(f, args.final_by) for f in folders) if row is not None]
    if not rows:
        raise ConfigError("no finished seed in any of these folders (each needs seed_*/lineage.json)")
    print(format_markdown(rows))
    if args.csv:
        cols = columns(rows)
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=cols)
            writer.writeheader()
            writer.writerows([{c: r.get(c, "") for c in cols} for r in rows])
        print(f"wrote {args.csv}")


if __name__ == "__main__":
    main_guard(main)
