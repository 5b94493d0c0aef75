"""Fashion-MNIST: the engine's standard benchmark.

    python -m experiments.fashion_mnist --gens 3 --epochs 1 --max-train 5000 \
        --data ../shared/data/fashion-mnist --out /tmp/r

Defaults are the recipe that won the distillation study on this data (docs/distillation.md),
kept in rnn_jax/presets.py (RECIPES["fashion_mnist"]).

Without --data the tensorflow-datasets copy is used (it must be prepared or downloadable).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.common import run_experiment
from experiments.flags import add_common_flags
from rnn_jax.data.registry import DataSpec, load_dataset
from rnn_jax.errors import main_guard
from rnn_jax.presets import RECIPES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.fashion_mnist", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None,
                        help="folder with the four IDX files (default: tensorflow-datasets 'fashion_mnist')")
    parser.add_argument("--tfds-dir", default=None, help="tensorflow-datasets data_dir (when --data is absent)")
    add_common_flags(parser, **RECIPES["fashion_mnist"])  # the study's winner (rnn_jax/presets.py)
    return parser


def build_data(args: argparse.Namespace):
    if args.data:
        spec = DataSpec("idx", path=str(Path(args.data).resolve()), name="fashion_mnist", seed=args.seed)
    else:
        spec = DataSpec("tfds", path=args.tfds_dir, name="fashion_mnist", seed=args.seed)
    return spec, load_dataset(spec)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    run_experiment(args, "fashion_mnist", build_data)


if __name__ == "__main__":
    main_guard(main)
