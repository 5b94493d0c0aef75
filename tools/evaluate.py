"""Re-evaluate every generation of a run, and the BAN ensembles, on its test split.

    python tools/evaluate.py --run runs/fashion_mnist-20261122-120000

Then (re)writes the run's report from its stored logits: report.json, report.md (accuracy,
macro-F1, per-class precision/recall/F1, train-val gap verdict, params, GFLOPs, time),
confusion_matrix*.png and the training-curve plots. Compare runs with tools/compare.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from rnn_jax.errors import main_guard  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python tools/evaluate.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="run folder (holds lineage.json)")
    parser.add_argument("--split", default="test", choices=("test", "val", "train"),
                        help="split to evaluate (default test; val when the data has no test split)")
    parser.add_argument("--data", default=None, help="override the data path stored in the run")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--no-report", action="store_true",
                        help="only re-evaluate; do not rewrite report.json / report.md / the PNGs")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)

    from rnn_jax.api import Lineage

    lineage = Lineage(args.run)
    result = lineage.evaluate(split=args.split, data_path=args.data)
    print(f"run {args.run}: {lineage.record['model']['label'] if 'model' in lineage.record else ''}")
    from rnn_jax.lineage.evaluate import format_evaluation

    print(format_evaluation(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if not args.no_report:
        from rnn_jax.lineage.report import write_plots
        from rnn_jax.lineage.run_report import models_table, report_summary, write_run_report

        plots = write_plots(lineage.record, lineage.dir)
        report, files = write_run_report(lineage.dir, lineage.record, lineage.dataset())
        print(f"\nreport (%, from the stored logits of each generation's best weights):\n{models_table(report)}")
        print(f"{report['fit_thresholds']['text']}\n{report_summary(report)}")
        print(f"wrote {', '.join(p.name for p in [*files, *plots])} in {lineage.dir}")


if __name__ == "__main__":
    main_guard(main)
