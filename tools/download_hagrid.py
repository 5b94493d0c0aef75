#!/usr/bin/env python3
"""Download HaGRID (the 30k sample, v1 or v2 per-gesture archives) resumably and unpack it safely.

Examples:
    python tools/download_hagrid.py                                  # 30k sample, all gestures
    python tools/download_hagrid.py --subset sample30k --gestures like,palm,fist
    python tools/download_hagrid.py --subset v2 --gestures like,palm --out data/hagrid
    python tools/download_hagrid.py --subset v2 --gestures like --dry-run

An interrupted download resumes where it stopped when you run the same command again.
The URL table lives in rnn_jax/data/download.py (edit it if a host has moved).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from rnn_jax.data import download
except ImportError:  # run from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from rnn_jax.data import download

from rnn_jax.errors import RnnJaxError, main_guard


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Download HaGRID hand-gesture data (resumable, with safe extraction).",
        epilog="Then train with the folder given to --out (the loader detects the layout).")
    p.add_argument("--subset", choices=download.SUBSETS, default="sample30k",
                   help="sample30k: ~30k images at 384p, one archive from Hugging Face "
                        "(default); v1: 2022 release, ~40 GB per gesture; v2: HaGRIDv2 "
                        "(34 classes), ~40 GB per gesture")
    p.add_argument("--gestures", default="",
                   help="comma-separated HaGRID gesture names (default: all of the subset), "
                        "e.g. like,palm,fist")
    p.add_argument("--out", default="data/hagrid", help="destination folder (default: data/hagrid)")
    p.add_argument("--test", action="store_true", help="v1 only: also fetch the 60 GB test set")
    p.add_argument("--no-extract", action="store_true", help="download the archives only")
    p.add_argument("--keep-archives", action="store_true",
                   help="keep the archives after unpacking (default: delete them)")
    p.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds")
    p.add_argument("--dry-run", action="store_true", help="print what would be downloaded and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gestures = [g.strip() for g in args.gestures.split(",") if g.strip()]
    try:
        assets = download.plan(args.subset, gestures, test=args.test)
        if args.dry_run:
            for a in assets:
                size = f"~{a.approx_gb:g} GB" if a.approx_gb else "size unknown"
                print(f"{a.name:24s} {size:>14s}  {a.url}")
            return 0
        download.fetch(assets, args.out, extract=not args.no_extract,
                       keep_archives=args.keep_archives or args.no_extract,
                       progress=not args.quiet, timeout=args.timeout)
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 130
    except RnnJaxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"done: HaGRID ({args.subset}) is in {args.out}")
    return 0


if __name__ == "__main__":
    main_guard(main)
