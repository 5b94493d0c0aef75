"""The image family's input: decoded cache vs JPEGs streamed through grain workers, on real photos.

    python tools/hagrid_stream_bench.py --data ../shared/data/hagrid-sample --size 224 --workers 1 2
    python tools/hagrid_stream_bench.py --crop hand --size 64            # annotated val photos, hand crops
    python tools/hagrid_stream_bench.py --crop parts --size 64           # the sample's 17k training hands
    python tools/hagrid_stream_bench.py --check-parts --size 64          # every hand: streamed == cached

Every row runs in a fresh process (so its peak memory is its own) and reads one training epoch
through :func:`rnn_jax.data.pipeline.train_batches` (shuffle, gather, augment: the pipeline the
trainer uses, without a model):

- ``cache build``: decode every photo once into the decoded cache (what the first run pays);
- ``cache epoch``: one epoch read from that cache's memory map;
- ``stream epoch, W workers``: one epoch decoded from the JPEGs by W grain worker processes
  (``W = 0``: threads of the training process).

It prints images/s, CPU seconds per image (the process and its workers), peak memory of the
process tree (PSS: shared pages counted once) and the disk each way needs, then what that
implies for a full HaGRID (``--full-photos``, default 1,000,000) on 2, 16 and 64 cores. The photo
files are read from the page cache after the first row (as on a machine whose disk keeps up);
the load average is recorded, since other processes share the cores. Figures go to stdout and
``--json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402

from rnn_jax.errors import ConfigError, main_guard  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SMALL_BATCHES = 2  # the short epoch that tells the fixed cost per epoch from the cost per image


def photo_items(root: Path, crop: str, limit: int | None, size: int = 64):
    """``(items, decoder, stored side)``: the sample's whole photos (``photos_train`` and the annotated
    ``hagrid_dataset``) as full frames, or (``hand``) the annotated photos' boxes at the eval crop
    scale, or (``parts``) every training hand of the sample's parts as the image family stores them
    (crops with context at ``hand_train_size(size)``; needs the landmark preparation, cached)."""
    from rnn_jax.data.cache import ImageItem, decode_item
    from rnn_jax.data.hand_crops import HAND_EVAL_SCALE

    items = []
    if crop == "parts":
        from rnn_jax.data.hagrid.parts_images import decode_part_item, parts_specs

        spec = parts_specs(root, size, progress=False)[2]["train"]
        return list(spec.items)[:limit] if limit else list(spec.items), decode_part_item, spec.size
    if crop == "full":
        for folder in ("photos_train", "hagrid_dataset"):
            items += [ImageItem(p) for p in sorted((root / folder).glob("*/*.jpg"))]
    else:
        for ann_file in sorted((root / "hagrid_annotations").glob("*/*.json")):
            for image_id, ann in json.loads(ann_file.read_text()).items():
                path = root / "hagrid_dataset" / ann_file.stem / f"{image_id}.jpg"
                if path.is_file():
                    items += [ImageItem(path, tuple(b), HAND_EVAL_SCALE) for b in ann["bboxes"]]
    if not items:
        raise ConfigError(f"no photos under {root} (expected the sample's photos_train/ or hagrid_dataset/)")
    return (items[:limit] if limit else items), decode_item, size


class TreeMemory:
    """Peak summed PSS (or RSS without psutil's smaps) of this process and its children, sampled."""

    def __init__(self, every_s: float = 0.1) -> None:
        self.peak, self.every_s, self._stop = 0, every_s, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        total = 0
        me = psutil.Process()
        for proc in [me, *me.children(recursive=True)]:
            try:
                info = proc.memory_full_info()
                total += getattr(info, "pss", info.rss)
            except (psutil.Error, OSError):
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.every_s)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def _cpu_s() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _tree_cpu_s() -> float:
    """CPU seconds of this process and its live children (grain's workers, before they exit)."""
    import psutil

    total = _cpu_s()
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def run_row(args: argparse.Namespace) -> dict:
    """One measurement in this (fresh) process; returns its figures."""
    from rnn_jax.data.cache import SplitSpec, load_decoded
    from rnn_jax.data.pipeline import train_batches
    from rnn_jax.data.stream import StreamedImages
    from rnn_jax.data.types import Split

    items, decoder, side = photo_items(Path(args.data), args.crop, args.limit, args.size)
    mode = "full" if args.crop == "full" else "hand"
    spec = {"train": SplitSpec(items, side)}
    labels = np.zeros(len(items), np.int32)
    with TreeMemory() as memory:
        cpu0, t0 = _cpu_s(), time.perf_counter()
        if args.row == "cache-build":
            images = load_decoded("stream-bench", spec, crop_mode=mode, cache_dir=args.cache_dir, progress=False,
                                  decoder=decoder)
            assert not images.reused
            n = len(items)
        else:
            if args.row == "cache-epoch":
                found = load_decoded("stream-bench", spec, crop_mode=mode, cache_dir=args.cache_dir, progress=False,
                                     decoder=decoder)
                assert found.reused
                images = found.images["train"][: args.row_read]
            else:
                images = StreamedImages.from_items(items[: args.row_read], side, mode, 3, decoder=decoder,
                                                   workers=args.row_workers)
            n = 0
            for batch in train_batches(Split(images, labels[: len(images)]), args.batch_size, seed=0, augment="basic"):
                n += len(batch["index"])
        wall = time.perf_counter() - t0
        gc.collect()  # the finished iterator lets its workers go: count their CPU once they are reaped
        time.sleep(0.5)
        cpu = _tree_cpu_s() - cpu0
    return {"images": n, "wall_s": wall, "cpu_s": cpu, "images_per_s": n / wall, "cpu_ms_per_image": 1000 * cpu / n,
            "peak_tree_mb": memory.peak / 2**20,
            "main_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def per_image(small: dict, full: dict) -> dict:
    """Fixed cost per epoch (starting the workers) and the cost of each further image, from an
    epoch of a few images and a whole one: cost = start + images x each (wall and CPU)."""
    dn = full["images"] - small["images"]
    each_cpu = (full["cpu_s"] - small["cpu_s"]) / dn
    each_wall = (full["wall_s"] - small["wall_s"]) / dn
    return {"steady_images_per_s": 1 / each_wall if each_wall > 0 else None,  # None: lost in the noise
            "steady_cpu_ms_per_image": 1000 * each_cpu,
            "start_s": small["wall_s"] - each_wall * small["images"],
            "startup_cpu_s": small["cpu_s"] - each_cpu * small["images"]}


def spawn_row(args: argparse.Namespace, row: str, workers: int = 0, read: int | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--data", args.data, "--size", str(args.size),
           "--crop", args.crop, "--batch-size", str(args.batch_size), "--cache-dir", args.cache_dir,
           "--row", row, "--row-workers", str(workers)] + (["--limit", str(args.limit)] if args.limit else []) \
        + (["--row-read", str(read)] if read else [])
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise RuntimeError(f"row {row} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_parts(root: Path, size: int) -> int:
    """The image family on the sample's parts, every hand: streamed pixels and labels == the cache's.
    Needs the landmark preparation of ``root`` (extracted once, cached). Returns the number of splits
    that differ."""
    from rnn_jax.data.hagrid.parts_images import parts_image_dataset

    cache = tempfile.mkdtemp(prefix="stream-check-")
    try:
        t0 = time.perf_counter()
        cached = parts_image_dataset(root, size, cache_dir=cache, progress=False, storage="cache")
        streamed = parts_image_dataset(root, size, cache_dir=cache, progress=False, storage="stream")
        bad = 0
        for name, split in cached.splits().items():
            other = streamed.splits()[name]
            same = np.array_equal(split.labels, other.labels) and np.array_equal(np.asarray(other.images), split.images)
            bad += not same
            print(f"  {name}: {len(split):,} hands, streamed {'==' if same else '!='} cached (labels and pixels)")
        print(f"  fingerprints {'equal' if cached.fingerprint() == streamed.fingerprint() else 'DIFFER'}; "
              f"{time.perf_counter() - t0:.0f} s")
        return bad
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def implications(rows: dict, n_full: int, size: int, channels: int = 3) -> list[str]:
    """What the measured rates mean for ``n_full`` photos (CPU-bound decode: hours = CPU-s / cores)."""
    cache_gb = n_full * size * size * channels / 1e9
    out = [f"full HaGRID ({n_full:,} photos at {size} px): decoded cache {cache_gb:,.1f} GB on disk, and as much "
           "page cache (RAM) for its epochs to read from memory; streamed: no extra disk"]
    for name, row in rows.items():
        per = row.get("steady_cpu_ms_per_image", row["cpu_ms_per_image"])
        hours = {c: n_full * per / 1000 / c / 3600 for c in (2, 16, 64)}
        what = ("once" if name == "cache build" else "every epoch, memory-mapped" if name == "cache epoch"
                else f"every epoch (and every val/teacher pass), + {row.get('startup_cpu_s', 0):.1f} CPU-s to start")
        out.append(f"  {name}: {per:.2f} CPU-ms a photo -> "
                   + ", ".join(f"{h:.2f} h on {c} cores" for c, h in hours.items()) + f" {what}; "
                   f"peak memory {row['peak_tree_mb']:.0f} MB here")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python tools/hagrid_stream_bench.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "hagrid-sample"),
                        help="the HaGRID sample (photos_train/, hagrid_dataset/ + hagrid_annotations/)")
    parser.add_argument("--size", type=int, default=224, help="stored side in px (default %(default)s: the gpu preset)")
    parser.add_argument("--crop", choices=("full", "hand", "parts"), default="full",
                        help="full: whole photos letterboxed; hand: the annotated photos' boxes; parts: every training "
                             "hand of the sample's parts, stored as the image family stores them (default %(default)s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="streamed rows to run, by worker processes (0 = threads) (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N photos (default: all)")
    parser.add_argument("--full-photos", type=int, default=1_000_000, help="photos of the full set to extrapolate to")
    parser.add_argument("--json", default=None, help="write the rows and the load average here")
    parser.add_argument("--check-parts", action="store_true",
                        help="instead: compare the streamed and cached image family on every hand of the sample's "
                             "parts (crops_train, photos_train, annotated val) at --size, and exit 1 if any differ")
    parser.add_argument("--cache-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--row", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--row-workers", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--row-read", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not Path(args.data).is_dir():
        raise ConfigError(f"--data {args.data} is not a folder (the HaGRID sample lives in ../shared/data)")
    if args.size < 8 or args.batch_size < 1 or any(w < 0 for w in args.workers):
        raise ConfigError("--size must be >= 8, --batch-size >= 1 and --workers >= 0")
    if args.check_parts:
        sys.exit(1 if check_parts(Path(args.data), args.size) else 0)
    if args.row:  # a child: one measurement, JSON on the last line
        print(json.dumps(run_row(args)))
        return

    items, _, side = photo_items(Path(args.data), args.crop, args.limit, args.size)
    n = len(items)
    print(f"{n} {'photos' if args.crop == 'full' else 'hand boxes'} at {side} px ({args.crop}), batch "
          f"{args.batch_size}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    tmp = tempfile.mkdtemp(prefix="stream-bench-")
    args.cache_dir = tmp
    plan = [("cache build", "cache-build", 0), ("cache epoch", "cache-epoch", 0)]
    plan += [(f"stream epoch, {w} worker{'s' * (w != 1)}" if w else "stream epoch, threads", "stream", w)
             for w in args.workers]
    rows: dict[str, dict] = {}
    try:
        for name, row, workers in plan:
            rows[name] = r = spawn_row(args, row, workers)
            if row != "cache-build":  # a short epoch too: the fixed cost per epoch and the cost per image
                small = spawn_row(args, row, workers, read=SMALL_BATCHES * args.batch_size)
                r.update(per_image(small, r))
            print(f"  {name}: {r['images_per_s']:.0f} img/s, {r['cpu_ms_per_image']:.2f} CPU-ms/img, "
                  f"peak {r['peak_tree_mb']:.0f} MB", flush=True)
        cache_mb = sum(f.stat().st_size for f in Path(tmp).rglob("*.npy")) / 2**20
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()
    header = (f"{'row':<24} {'images':>7} {'wall s':>7} {'img/s':>7} {'CPU-ms/img':>10} {'steady img/s':>12} "
              f"{'steady CPU-ms':>13} {'start s':>7} {'start CPU-s':>11} {'peak MB':>8} {'disk MB':>8}")
    print("\n" + header + "\n" + "-" * len(header))
    for name, r in rows.items():
        disk = f"{cache_mb:.0f}" if name.startswith("cache") else "0"
        rate = "-" if r.get("steady_images_per_s") is None else f"{r['steady_images_per_s']:.0f}"
        steady = (f"{rate:>12} {r['steady_cpu_ms_per_image']:>13.2f} {r['start_s']:>7.1f} "
                  f"{r['startup_cpu_s']:>11.1f}" if "steady_cpu_ms_per_image" in r else f"{'-':>12} {'-':>13} {'-':>7} {'-':>11}")
        print(f"{name:<24} {r['images']:>7} {r['wall_s']:>7.1f} {r['images_per_s']:>7.0f} "
              f"{r['cpu_ms_per_image']:>10.2f} {steady} {r['peak_tree_mb']:>8.0f} {disk:>8}")
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores shared with other jobs)\n")
    lines = implications(rows, args.full_photos, side)
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({"photos": n, "size": side, "crop": args.crop,
                                               "batch_size": args.batch_size, "cache_mb": cache_mb, "rows": rows,
                                               "load_average": load, "implications": lines}, indent=1))


if __name__ == "__main__":
    main_guard(main)
