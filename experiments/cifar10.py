"""CIFAR-10 from tensorflow-datasets (the classic born-again benchmark).

    python -m experiments.cifar10 --gens 3 --epochs 30 --model resnet18

Needs tensorflow-datasets with a prepared (or downloadable) 'cifar10'.
"""

from __future__ import annotations

import argparse

from experiments.common import run_experiment
from experiments.flags import add_common_flags
from rnn_jax.data.registry import DataSpec, load_dataset
from rnn_jax.errors import main_guard


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.cifar10", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tfds-dir", default=None, help="tensorflow-datasets data_dir")
    add_common_flags(parser, epochs=30, size="medium")
    return parser


def build_data(args: argparse.Namespace):
    spec = DataSpec("tfds", path=args.tfds_dir, name="cifar10", seed=args.seed)
    return spec, load_dataset(spec)


def main(argv: list[str] | None = None) -> None:
    run_experiment(build_parser().parse_args(argv), "cifar10", build_data)


if __name__ == "__main__":
    main_guard(main)
