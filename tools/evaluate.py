"""Re-evaluate every generation of a run, and the BAN ensembles, on its test split.

    python tools/evaluate.py --run runs/fashion_mnist-20261122-120000
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from experiments.common import main_guard  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python tools/evaluate.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="run folder (holds lineage.json)")
    parser.add_argument("--split", default="test", choices=("test", "val", "train"),
                        help="split to evaluate (default test; val when the data has no test split)")
    parser.add_argument("--data", default=None, help="override the data path stored in the run")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
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


if __name__ == "__main__":
    main_guard(main)
