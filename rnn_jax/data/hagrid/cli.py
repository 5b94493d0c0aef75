"""Extraction flags shared by ``experiments.hagrid`` and the standalone extract command.

    python -m rnn_jax.data.hagrid --data ~/hagrid                       # every chunk, this machine's cores
    python -m rnn_jax.data.hagrid --data ~/hagrid --shard 3/8           # one machine of eight
    python -m rnn_jax.data.hagrid --data ~/hagrid --scheduler tcp://head:8786   # a Dask cluster
    python -m rnn_jax.data.hagrid --data ~/hagrid --merge --seed 0      # the split files, after the shards

Shards split the work list by chunk (chunk number % N == K - 1 over every part); jobs that
share a cache folder (``--cache`` on a shared filesystem) also share the work list, so a
chunk is never extracted twice. Without ``--shard`` the run waits for chunks that another
run is extracting and then merges; ``--merge`` only merges (one clear error when a chunk is
missing). JAX-free: extraction machines need only the base install (+ ``[scale]`` for Dask).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rnn_jax.errors import ConfigError, main_guard


def add_extraction_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("HaGRID landmark extraction")
    g.add_argument("--engine", choices=("local", "dask"), default="local",
                   help="who extracts: local = one process per core of this machine; dask = a Dask cluster "
                        "(--scheduler) or a local Dask cluster (pip install -e '.[scale]') (default %(default)s)")
    g.add_argument("--workers", type=int, default=None,
                   help="extraction processes (default: one per core, at most 8)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a running Dask scheduler to extract on (implies --engine dask); workers must see "
                        "the data at the same path")


def engine_from_args(args: argparse.Namespace):
    from rnn_jax.data.hagrid.engines import make_engine

    return make_engine(args.engine, workers=args.workers, address=args.scheduler)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rnn_jax.data.hagrid", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="HaGRID root (any layout)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="extraction cache (default $RNN_JAX_CACHE/../hagrid-parts or ~/.cache/rnn-jax/"
                             "hagrid-parts); put it on a shared filesystem to share work between machines")
    parser.add_argument("--shard", default=None, metavar="K/N", help="extract only shard K of N (no merge)")
    parser.add_argument("--merge", action="store_true", help="only merge the chunks into split files")
    parser.add_argument("--seed", type=int, default=0, help="balancing seed of the split files (default 0)")
    parser.add_argument("--json", type=Path, default=None, help="write the run's counts and timing as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")
    add_extraction_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from rnn_jax.data.hagrid.extract import parse_shard
    from rnn_jax.data.hagrid.layout import resolve_layout
    from rnn_jax.data.hagrid.prepare import (
        default_extraction_cache,
        describe,
        extract_layout,
        prepare_landmarks,
    )

    args = build_parser().parse_args(argv)
    try:
        shard = parse_shard(args.shard)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if shard and args.merge:
        raise ConfigError("--merge and --shard exclude each other: merge once every shard has finished")
    layout = resolve_layout(args.data)
    print(layout.describe())
    base = args.cache or default_extraction_cache()
    start = time.perf_counter()
    if args.merge:  # every chunk must be there already: one clear error naming a missing one
        from rnn_jax.data.hagrid.prepare import extraction_chunks

        for _, chunks in extraction_chunks(layout, base / "chunks"):
            missing = [c for c in chunks if not c.path.is_file()]
            if missing:
                raise ConfigError(f"chunk {missing[0].path.name} ({missing[0].kind}) is not extracted yet: run "
                                  "every shard (or this command without --merge) first")
    engine = engine_from_args(args)
    try:
        if shard:
            _, counts = extract_layout(layout, base / "chunks", engine, shard, progress=not args.no_progress)
            summary = {"shard": args.shard, **counts}
        else:
            folder = prepare_landmarks(args.data, seed=args.seed, cache_dir=base, progress=not args.no_progress,
                                       engine=engine)
            print(describe(folder))
            summary = json.loads((folder / "parts.json").read_text())["counts"] | {"folder": str(folder)}
    finally:
        getattr(engine, "close", lambda: None)()
    summary["seconds"] = round(time.perf_counter() - start, 2)
    print(" ".join(f"{k}={v}" for k, v in summary.items() if not isinstance(v, dict)))
    if args.json:
        from rnn_jax.atomic import write_json_atomic

        write_json_atomic(args.json, summary, indent=2)
    return 0


if __name__ == "__main__":
    main_guard(main)
