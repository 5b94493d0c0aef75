"""Compare finished runs in one table and one chart.

    python tools/compare.py runs/sld_tiny runs/sld_small
    python tools/compare.py 'runs/*' --sort val_acc              # quoted: non-run matches are skipped
    python tools/compare.py 'runs/*' --markdown                  # a table to paste into an issue
    python tools/compare.py runs/sweep-x --csv sweep.csv         # a folder of runs counts as its runs

One row per run: model, size, parameters, GFLOPs per image, generations, best generation
(the final student the run chose on validation), its validation/test accuracy and macro-F1,
the all-generation ensemble's validation accuracy, the train-val gap with its verdict, and
training time. The best run (highest validation accuracy; ties go to fewer GFLOPs) is marked
with *. Test numbers never pick the winner. The chart puts validation accuracy against
GFLOPs per image and against generation.

Numbers come from each run's report.json (written at the end of every run and by
tools/evaluate.py); for an older run without one, the report is rebuilt in memory from the
stored logits (nothing is written into the run folders).
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from rnn_jax.errors import ConfigError, ResumeError, RnnJaxError, main_guard  # noqa: E402
from rnn_jax.lineage.record import LINEAGE_FILE  # noqa: E402

# sort key -> (summary field, descending by default?)
SORT_KEYS = {
    "run": ("run", False), "model": ("model", False), "params": ("params", False),
    "gflops": ("gflops", False), "val_acc": ("val_acc", True), "val_f1": ("val_f1", True),
    "test_acc": ("test_acc", True), "test_f1": ("test_f1", True), "gap": ("gap", False),
    "time": ("time_s", False),
}
CSV_FIELDS = ("best", "run", "path", "data", "model", "size", "params", "gflops", "gens", "best_gen", "val_acc",
              "val_f1", "test_acc", "test_f1", "ensemble_val_acc", "train_acc", "gap", "verdict", "time_s", "seed")


def _is_run(path: Path) -> bool:
    return (path / LINEAGE_FILE).is_file()


def resolve_runs(patterns: list[str]) -> list[Path]:
    """Run folders from paths, globs and folders of runs; a plain path that is no run is an error."""
    runs: list[Path] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = [Path(p) for p in sorted(glob.glob(pattern))]
            found = [p for p in matches if _is_run(p)]
            if not found:
                raise ResumeError(f"{pattern!r} matches no run folder (none of {len(matches)} matches has "
                                  f"{LINEAGE_FILE})")
            runs += found
            continue
        path = Path(pattern)
        if _is_run(path):
            runs.append(path)
        elif path.is_dir() and (children := sorted(p for p in path.iterdir() if _is_run(p))):
            runs += children
        else:
            raise ResumeError(f"{pattern} is not an rnn-jax run: it has no {LINEAGE_FILE} (quote a glob, "
                              f"'runs/*', to skip what is not a run)")
    unique = list(dict.fromkeys(p.resolve() for p in runs))
    return [next(p for p in runs if p.resolve() == u) for u in unique]


def _current_report(run_dir: Path, record: dict) -> dict:
    """report.json when it matches lineage.json; otherwise (older run, resumed since) rebuilt in memory."""
    from rnn_jax.lineage.run_report import (
        build_report,
        model_cost,
        read_report,
        report_is_current,
        run_labels,
    )

    report = read_report(run_dir)
    if report_is_current(report, record):
        return report
    try:
        labels = run_labels(run_dir, record)
    except RnnJaxError as exc:  # data gone: accuracies still come from lineage.json
        print(f"note: {run_dir}: no labels for F1 ({exc})", file=sys.stderr)
        labels = {}
    return build_report(run_dir, record, labels, model_cost(record))


def run_summary(run_dir: Path) -> dict:
    """One comparison row for a run folder (fractions, not percent)."""
    from rnn_jax.lineage.record import finished_generations, read_lineage
    from rnn_jax.lineage.run_report import final_entry

    record = read_lineage(run_dir)
    report = _current_report(run_dir, record)
    final = final_entry(report) or {"splits": {}}
    entry = next((g for g in record["generations"] if g["gen"] == record.get("final_generation")), {})
    ensemble = next((m for m in report["models"] if m["kind"] == "ensemble" and "val" in m["splits"]), None)
    ensemble_acc = ensemble["splits"]["val"]["accuracy"] if ensemble else (
        (record.get("ensembles") or {}).get("all", {}).get("val_acc"))

    def metric(split: str, key: str):
        value = final["splits"].get(split, {}).get(key)
        return entry.get(f"{split}_acc") if value is None and key == "accuracy" else value

    fit = final.get("fit")
    return {
        "run": report["run"], "path": str(run_dir), "data": record["data"].get("name"),
        "fingerprint": record["data"].get("fingerprint"), "model": report["model"]["label"],
        "size": report["model"]["size"], "params": report["model"]["params"],
        "gflops": report["model"]["gflops_per_image"], "gens": len(finished_generations(record)),
        "best_gen": record.get("final_generation"), "val_acc": metric("val", "accuracy"),
        "val_f1": metric("val", "macro_f1"), "test_acc": metric("test", "accuracy"),
        "test_f1": metric("test", "macro_f1"), "ensemble_val_acc": ensemble_acc,
        "train_acc": metric("train", "accuracy"), "gap": None if fit is None else fit["gap"],
        "verdict": None if fit is None else fit["verdict"], "time_s": report["time_s"], "seed": report.get("seed"),
        "per_generation": [(g["gen"], g["val_acc"]) for g in finished_generations(record) if "val_acc" in g],
    }


def best_index(rows: list[dict]) -> int | None:
    """The run with the highest validation accuracy; ties go to fewer GFLOPs."""
    scored = [(r["val_acc"], -(r["gflops"] or 0.0), -i) for i, r in enumerate(rows) if r["val_acc"] is not None]
    return -max(scored)[2] if scored else None


def sort_rows(rows: list[dict], key: str, reverse: bool = False) -> list[dict]:
    """Sorted by ``key`` (accuracy and F1 best first); runs missing the value go last."""
    if key not in SORT_KEYS:
        raise ConfigError(f"--sort must be one of {sorted(SORT_KEYS)}, got {key!r}")
    field, descending = SORT_KEYS[key]
    present = [r for r in rows if r[field] is not None]
    missing = [r for r in rows if r[field] is None]
    return sorted(present, key=lambda r: r[field], reverse=descending != reverse) + missing


def _pct(value) -> str:
    return "-" if value is None else f"{value * 100:.2f}"


def comparison_table(rows: list[dict], style: str = "text") -> str:
    """The comparison as text, markdown (percent, rounded) or csv (raw fractions, every field)."""
    from rnn_jax.lineage.report import format_table

    best = best_index(rows)
    if style == "csv":
        return format_table(list(CSV_FIELDS), [[int(i == best), *("" if r[f] is None else r[f] for f in CSV_FIELDS[1:])]
                                               for i, r in enumerate(rows)], "csv")
    has_test = any(r["test_acc"] is not None for r in rows)
    header = ["run", "model", "size", "params", "GFLOPs", "gens", "best gen", "val acc", "val F1",
              *(["test acc", "test F1"] if has_test else []), "ens val", "gap", "fit", "time (s)"]
    table = []
    for i, r in enumerate(rows):
        table.append([
            r["run"] + (" *" if i == best else ""), r["model"], r["size"], f"{r['params']:,}", f"{r['gflops']:.4f}",
            r["gens"], "-" if r["best_gen"] is None else r["best_gen"], _pct(r["val_acc"]), _pct(r["val_f1"]),
            *([_pct(r["test_acc"]), _pct(r["test_f1"])] if has_test else []), _pct(r["ensemble_val_acc"]),
            "-" if r["gap"] is None else f"{r['gap'] * 100:+.1f}", r["verdict"] or "-", f"{r['time_s']:.0f}",
        ])
    return format_table(header, table, style)


def table_notes(rows: list[dict]) -> list[str]:
    """What a reader needs under the table: the winner, units, thresholds, data mismatches."""
    from rnn_jax.lineage.run_report import threshold_text

    best = best_index(rows)
    notes = ["accuracy and F1 in %, F1 = macro-F1, ens val = all-generation ensemble; "
             "gap in points: " + threshold_text().split(": ", 1)[1]]
    if best is not None:
        notes.insert(0, f"* best run: {rows[best]['run']} (highest validation accuracy of its best generation; "
                        f"ties go to fewer GFLOPs)")
    if len({r["fingerprint"] for r in rows}) > 1:
        notes.append("WARNING: these runs were trained on different data; accuracies are not like-for-like")
    return notes


def write_chart(rows: list[dict], path: Path) -> Path:
    from rnn_jax.lineage.report import write_comparison_png

    best = best_index(rows)
    runs = [{"label": f"{r['run']} ({r['model']})", "gflops": r["gflops"], "acc": r["val_acc"], "best": i == best,
             "per_generation": r["per_generation"]} for i, r in enumerate(rows)]
    return write_comparison_png(runs, path, split="val")


def _write_or_print(text: str, target: str) -> None:
    if target == "-":
        print(text)
    else:
        Path(target).write_text(text + "\n")
        print(f"wrote {target}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python tools/compare.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run folders, globs ('runs/*', quoted) or folders holding runs (e.g. a sweep)")
    parser.add_argument("--sort", default="gflops", choices=sorted(SORT_KEYS),
                        help="row order (default gflops, cheapest first; accuracy and F1 sort best first)")
    parser.add_argument("--reverse", action="store_true", help="reverse the --sort order")
    parser.add_argument("--csv", nargs="?", const="-", default=None, metavar="PATH",
                        help="write the table as CSV (raw fractions, every field) to PATH, or stdout without PATH")
    parser.add_argument("--markdown", nargs="?", const="-", default=None, metavar="PATH",
                        help="write the table as Markdown to PATH, or stdout without PATH")
    parser.add_argument("--chart", default="compare.png", metavar="PNG",
                        help="accuracy-vs-GFLOPs and accuracy-vs-generation chart (default compare.png)")
    parser.add_argument("--no-chart", action="store_true", help="do not write the chart")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main(argv: list[str] | None = None) -> list[dict]:
    args = build_parser().parse_args(argv)
    rows = sort_rows([run_summary(p) for p in resolve_runs(args.runs)], args.sort, args.reverse)
    if "-" not in (args.csv, args.markdown):
        print(comparison_table(rows, "text"))
        print("\n".join(table_notes(rows)))
    if args.markdown:
        notes = "\n".join("- " + note.replace("*", "\\*") for note in table_notes(rows))  # escaped: not a nested bullet
        _write_or_print(f"{comparison_table(rows, 'markdown')}\n\n{notes}", args.markdown)
    if args.csv:
        _write_or_print(comparison_table(rows, "csv"), args.csv)
    if not args.no_chart:
        print(f"chart: {write_chart(rows, Path(args.chart))}", file=sys.stderr if "-" in (args.csv, args.markdown) else sys.stdout)
    return rows


if __name__ == "__main__":
    main_guard(main)
