"""A size sweep: one experiment, the same data and seed, several model sizes, then one table.

    python -m experiments.sweep                                  # hagrid (or its demo data): tiny,small,medium
    python -m experiments.sweep --sizes tiny,small --data ../shared/data/sign-language-digits --gens 2 --epochs 3
    python -m experiments.sweep --experiment landmarks --model lstm --sizes tiny,small --data data/sld-landmarks
    python -m experiments.sweep --experiment fashion_mnist --sizes tiny,small,medium \\
        --data ../shared/data/fashion-mnist --max-train 5000

Every flag the sweep does not know goes to the experiment unchanged (see e.g.
`python -m experiments.hagrid --help`); the sweep adds --size S and --out OUT/<model>-<S>, so
every run sees the same data, seed and schedule and only the size differs. The sizes and their
parameters and GFLOPs per image: `python -m rnn_jax.models`. A size whose folder already holds
a run is continued with --resume (finished generations are kept), so an interrupted sweep
picks up where it stopped. Ends with the tools/compare.py table, OUT/compare.png,
OUT/compare.csv and OUT/compare.md.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import time
from pathlib import Path

from rnn_jax.errors import ConfigError, main_guard
from rnn_jax.models.registry import PRESETS, SIZES

EXPERIMENTS = ("hagrid", "fashion_mnist", "cifar10", "landmarks")
_OWNED_FLAGS = ("--size",)  # the sweep sets it per run (--out and --model are the sweep's own flags)


def parse_sizes(text: str) -> list[str]:
    sizes = [s.strip() for s in text.split(",") if s.strip()]
    known = list(dict.fromkeys([*SIZES, *(s for p in PRESETS.values() for s in p if s != "default")]))
    unknown = [s for s in sizes if s not in known]
    if not sizes or unknown:
        raise ConfigError(f"--sizes takes a comma list from {', '.join(known)}; got {text!r}")
    return list(dict.fromkeys(sizes))


def run_argv(passthrough: list[str], size: str, out: Path) -> list[str]:
    """The experiment's argv for one size; --resume when the folder already holds a run."""
    argv = [*passthrough, "--size", size, "--out", str(out)]
    if (out / "lineage.json").is_file() and "--resume" not in argv and "--overwrite" not in argv:
        argv.append("--resume")
    return argv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.sweep", description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", choices=EXPERIMENTS, default="hagrid", help="which experiment (default %(default)s)")
    parser.add_argument("--sizes", default="tiny,small,medium",
                        help=f"comma list of size presets from {', '.join(SIZES)} (default %(default)s; "
                             f"see `python -m rnn_jax.models`)")
    parser.add_argument("--model", default="resnet",
                        help="architecture with size presets: resnet, vit, mlp (default %(default)s)")
    parser.add_argument("--out", default=None, help="sweep folder, one run per size inside "
                                                    "(default runs/sweep-<experiment>-<time>)")
    parser.add_argument("--sort", default="gflops", help="row order of the final table (see tools/compare.py)")
    return parser


def load_experiment(name: str):
    """The experiment module (its ``main(argv)`` trains one run)."""
    return importlib.import_module(f"experiments.{name}")


def _load_compare():
    path = Path(__file__).resolve().parents[1] / "tools" / "compare.py"
    spec = importlib.util.spec_from_file_location("rnn_jax_tools_compare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    args, passthrough = build_parser().parse_known_args(argv)
    sizes = parse_sizes(args.sizes)
    if args.model not in PRESETS or "default" in PRESETS[args.model]:
        sized = sorted(name for name, presets in PRESETS.items() if "default" not in presets)
        raise ConfigError(f"--model {args.model} has no size presets to sweep; choose from {', '.join(sized)}")
    owned = [f for f in passthrough if f.split("=")[0] in _OWNED_FLAGS]
    if owned:
        raise ConfigError(f"the sweep sets --size for each run; drop {' '.join(owned)} and use --sizes")
    compare = _load_compare()
    if args.sort not in compare.SORT_KEYS:
        raise ConfigError(f"--sort must be one of {', '.join(sorted(compare.SORT_KEYS))}, got {args.sort!r}")
    out = Path(args.out) if args.out else Path("runs") / f"sweep-{args.experiment}-{time.strftime('%Y%m%d-%H%M%S')}"
    experiment = load_experiment(args.experiment)
    runs = []
    for i, size in enumerate(sizes):
        run_dir = out / f"{args.model}-{size}"
        print(f"\n=== sweep {i + 1}/{len(sizes)}: {args.model} {size} -> {run_dir} ===")
        experiment.main(run_argv([*passthrough, "--model", args.model], size, run_dir))
        runs.append(str(run_dir))
    print(f"\n=== sweep {out}: {len(runs)} sizes ===")
    compare.main([*runs, "--sort", args.sort, "--chart", str(out / "compare.png"), "--csv", str(out / "compare.csv"),
                  "--markdown", str(out / "compare.md")])


if __name__ == "__main__":
    main_guard(main)
