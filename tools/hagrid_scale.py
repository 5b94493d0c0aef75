"""HaGRID at full scale, measured here: a simulated v2 set of N hands, extraction throughput, engines.

    python tools/hagrid_scale.py simulate --hands 1000000 --out runs/hagrid-1m      # read, RSS, epochs
    python tools/hagrid_scale.py throughput --data ../shared/data/hagrid-sample --photos 40   # per core
    python tools/hagrid_scale.py engines --data ../shared/data/hagrid-sample --photos 120    # 1 vs 2 workers

``simulate`` writes HaGRIDv2 annotations (34 gesture files, hand_landmarks on every box, 1.3
hands a photo like the real set) for N hands and no photo at all: the photo's header (its
size, for the aspect) is the only thing the landmark path reads from an image, so the run
replaces the file check and the header read with a fixed 1920x1080 (the header read itself
is timed by ``throughput``). It reports the time to resolve and read (cold, then from the
chunk cache), peak RSS, seconds per epoch of the landmark presets' models, and one
generation end to end (``--epochs`` epochs). ``throughput`` times each extraction rule on
real sample photos on one core and prints the hours 1M photos would take on 2, 16, 64 cores.
``engines`` extracts the same pictures with 1 and 2 local workers and 1- and 2-worker local
Dask clusters, checks the rows are identical and prints the speedup (run it on a quiet machine:
the load average is recorded). Figures go to stdout
and ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402

from rnn_jax.errors import ConfigError, main_guard  # noqa: E402

GESTURES = ("call", "dislike", "fist", "four", "like", "mute", "ok", "one", "palm", "peace", "peace_inverted",
            "rock", "stop", "stop_inverted", "three", "three2", "two_up", "two_up_inverted", "grabbing", "grip",
            "holy", "point", "three3", "timeout", "xsign", "hand_heart", "hand_heart2", "little_finger",
            "middle_finger", "take_picture", "three_gun", "thumb_index", "thumb_index2")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_simulated_v2(root: Path, hands: int, seed: int = 0) -> int:
    """HaGRIDv2 annotations for ``hands`` hands (photos of one hand, ~30% with a no_gesture hand
    too, like the real set), split ~76/9/15 by person like HaGRID; returns the photo count."""
    rng = np.random.default_rng(seed)
    photos = int(round(hands / 1.3))
    second = set(rng.choice(photos, hands - photos, replace=False).tolist())  # photos with a resting hand
    shapes = rng.uniform(0.3, 0.7, (len(GESTURES) + 1, 21, 2))
    for g, ids in zip(GESTURES, np.array_split(np.arange(photos), len(GESTURES)), strict=True):
        pools: dict[str, dict] = {"train": {}, "val": {}, "test": {}}
        n = len(ids)
        gesture_pts = (shapes[GESTURES.index(g)] * 0.1 + rng.uniform(0.1, 0.8, (n, 1, 2))
                       + rng.normal(0, 0.002, (n, 21, 2))).round(5)
        resting_pts = (shapes[-1] * 0.1 + rng.uniform(0.1, 0.8, (n, 1, 2)) + rng.normal(0, 0.002, (n, 21, 2))).round(5)
        for k, i in enumerate(ids.tolist()):
            person = i % max(1, photos // 20)  # ~20 photos a person, spread over the gestures
            pool = "val" if person % 100 < 9 else "test" if person % 100 < 24 else "train"
            hands = [gesture_pts[k]] + ([resting_pts[k]] if i in second else [])
            boxes = [[*pts.min(0).tolist(), *(pts.max(0) - pts.min(0)).round(5).tolist()] for pts in hands]
            labels = [g, "no_gesture"][: len(hands)]
            pools[pool][f"{g}-{i:08d}"] = {"bboxes": boxes, "labels": labels, "user_id": f"u{person:07d}",
                                           "hand_landmarks": [pts.tolist() for pts in hands], "united_bbox": None,
                                           "united_label": None, "meta": {"age": [30.0] * len(labels)}}
        for pool, content in pools.items():
            folder = root / "hagrid_annotations" / pool
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{g}.json").write_text(json.dumps(content))
    (root / "hagrid_dataset").mkdir(exist_ok=True)
    return photos


def simulate(args: argparse.Namespace) -> dict:
    from rnn_jax.data.hagrid import extract, prepare
    from rnn_jax.data.hagrid.engines import SerialEngine

    out = Path(args.out)
    root = out / "hagrid-sim"
    result: dict = {"hands_asked": args.hands}
    if not (root / "hagrid_annotations").is_dir():
        start = time.perf_counter()
        result["photos"] = write_simulated_v2(root, args.hands)
        result["write_annotations_s"] = round(time.perf_counter() - start, 1)
    # no photos on disk: every id is "there", every header says 1920x1080 (see the docstring)
    prepare.index_images = lambda base, skip: _AllThere(base)
    extract.picture_exists = lambda path: True
    extract.image_size = lambda path: (1920, 1080)
    extract.picture_size_bytes = lambda path: 0
    cache = out / "cache"
    result["load_average_1min"] = round(os.getloadavg()[0], 1)
    for label in ("cold", "cached"):
        start, cpu = time.perf_counter(), time.process_time()
        folder = prepare.prepare_landmarks(root, seed=0, cache_dir=cache, progress=not args.no_progress,
                                           engine=SerialEngine(None))
        result[f"resolve_and_read_{label}_s"] = round(time.perf_counter() - start, 1)
        result[f"resolve_and_read_{label}_cpu_s"] = round(time.process_time() - cpu, 1)
        print(json.dumps({k: v for k, v in result.items() if label in k}), flush=True)
        result[f"peak_rss_after_{label}_mb"] = round(peak_rss_mb())
        if label == "cold":
            shutil.rmtree(folder)  # the split files again, from the chunk cache
    report = json.loads((folder / "parts.json").read_text())
    result["hands"] = {s: sum(v.values()) for s, v in report["hands_per_class"].items()}
    result["classes"] = len(report["class_names"])
    result["folder"] = str(folder)
    print(json.dumps(result, indent=1))
    result["training"] = _train_epochs(folder, args, out)
    result["peak_rss_mb"] = round(peak_rss_mb())
    return result


class _AllThere(dict):
    """An image index in which every annotated id has a photo under hagrid_dataset/<gesture>/."""

    def __init__(self, base: Path) -> None:
        super().__init__()
        self.base = Path(base)

    def get(self, image_id, default=None):
        return [os.path.join(self.base, "hagrid_dataset", image_id.rsplit("-", 1)[0], image_id + ".jpg")]


def _train_epochs(folder: Path, args: argparse.Namespace, out: Path) -> dict:
    """Seconds per epoch of each landmark preset's model, and one generation end to end."""
    from rnn_jax.api import DataSpec, RunConfig, TrainConfig, train
    from rnn_jax.config import ModelSpec
    from rnn_jax.presets import PRESETS

    figures = {}
    for name in args.presets.split(","):
        preset = PRESETS[name]
        config = RunConfig(gens=1, model=ModelSpec(preset.model, preset.size),
                           train=TrainConfig(epochs=args.epochs, batch_size=preset.batch_size, lr=preset.lr,
                                             augment="strong", flip=False))
        start, cpu = time.perf_counter(), time.process_time()
        lineage = train(config, DataSpec("landmarks", path=str(folder)), out / f"run-{name}", overwrite=True,
                        progress=not args.no_progress)
        total, total_cpu = time.perf_counter() - start, time.process_time() - cpu
        gen = lineage.generations[0]
        figures[name] = {"model": f"{preset.model}-{preset.size}", "batch": preset.batch_size, "epochs": args.epochs,
                         "generation_end_to_end_s": round(total, 1), "generation_end_to_end_cpu_s": round(total_cpu, 1),
                         "generation_time_s": gen.get("time_s"),
                         "epochs_rows": gen.get("epochs"), "val_acc": gen.get("val_acc")}
        print(json.dumps({name: figures[name]}, indent=1, default=str))
    return figures


def _sample_items(data: Path, photos: int):
    """The first ``photos`` annotated val photos (boxes only), unannotated train photos, and crops."""
    from rnn_jax.data.hagrid import prepare
    from rnn_jax.data.hagrid.extract import Item, class_folder_items
    from rnn_jax.data.hagrid.layout import resolve_layout

    layout = resolve_layout(data)
    reader = prepare.AnnotatedReader(layout)
    annotated = [it for items in reader.items("val") for it in items][:photos]
    out = {"annotated (second look per box)": ("annotated", annotated)}
    if layout.photos:
        every = class_folder_items(layout.photos, layout.root)
        out["photos (search with tiles)"] = ("photos", every[:: max(1, len(every) // photos)][:photos])
    if layout.crops:
        every = class_folder_items(layout.crops, layout.root)
        out["crops (padded search)"] = ("crops", every[:: max(1, len(every) // photos)][:photos])
    header = [Item(it.path, it.label, {**it.annotation, "landmarks": [[[0.5, 0.5]] * 21] * len(it.annotation["boxes"])})
              for it in annotated]
    out["annotated with landmarks (header only)"] = ("annotated", header)
    return layout, out


def throughput(args: argparse.Namespace) -> dict:
    from rnn_jax.data.hagrid.extract import extract_chunk
    from rnn_jax.hands import HandFinder

    layout, parts = _sample_items(Path(args.data), args.photos)
    finder = HandFinder.load(threads=1)
    result = {"load_average_1min": round(os.getloadavg()[0], 1)}
    for name, (kind, items) in parts.items():
        extract_chunk(kind, str(layout.root), items[:2], finder)  # warm-up
        start, cpu = time.perf_counter(), time.process_time()
        extract_chunk(kind, str(layout.root), items, finder)
        wall = (time.perf_counter() - start) / len(items)
        per = (time.process_time() - cpu) / len(items)  # CPU time: what a free core would take, load or not
        result[name] = {"pictures": len(items), "cpu_ms_per_picture": round(per * 1000, 2),
                        "wall_ms_per_picture": round(wall * 1000, 2),
                        "hours_for_1M": {cores: round(per * 1e6 / cores / 3600, 2) for cores in (2, 16, 64)}}
        print(f"{name:<42} {per * 1000:8.2f} CPU ms/picture ({wall * 1000:.1f} ms wall) -> 1M pictures: "
              + ", ".join(f"{h} h on {c} cores" for c, h in result[name]["hours_for_1M"].items()))
    return result


def engines(args: argparse.Namespace) -> dict:
    from rnn_jax.data.hagrid import extract
    from rnn_jax.data.hagrid.engines import DaskEngine, LocalProcessEngine

    layout, parts = _sample_items(Path(args.data), args.photos)
    kind, items = next(v for k, v in parts.items() if k.startswith(args.rule))
    extract.CHUNK = max(1, len(items) // 8)  # 8 chunks: enough to keep 2 workers busy
    result, rows = {"load_average_1min": round(os.getloadavg()[0], 1)}, {}
    tmp = Path(tempfile.mkdtemp(prefix="rnn-jax-engines-"))
    try:
        candidates = [("local, 1 worker", lambda: LocalProcessEngine(1)),  # in this process: no start-up
                      ("local, 2 workers", lambda: LocalProcessEngine(2)),
                      ("dask, 1 worker", lambda: DaskEngine(workers=1)), ("dask, 2 workers", lambda: DaskEngine(workers=2))]
        for name, make in candidates:
            engine = make()
            cache = tmp / name.replace(" ", "").replace(",", "-")
            cache.mkdir()
            chunks = extract.plan_chunks(kind, layout.root, items, cache)
            start = time.perf_counter()
            extract.run_work_list(chunks, layout.root, engine, progress=False)
            seconds = time.perf_counter() - start
            getattr(engine, "close", lambda: None)()
            rows[name] = [extract.load_chunk(c) for c in chunks]
            result[name] = {"seconds": round(seconds, 2), "photos": len(items)}
        reference = rows["local, 1 worker"]
        for name, got in rows.items():  # (the load average above says how free the two cores were)
            same = all(np.array_equal(a["landmarks"], b["landmarks"]) and a["source"].tolist() == b["source"].tolist()
                       for a, b in zip(reference, got, strict=True))
            result[name]["rows_identical_to_1_worker"] = bool(same)
            result[name]["speedup_vs_1_worker"] = round(result["local, 1 worker"]["seconds"] / result[name]["seconds"], 2)
            print(f"{name:<18} {result[name]['seconds']:7.2f} s  x{result[name]['speedup_vs_1_worker']:.2f}  "
                  f"rows identical: {same}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/hagrid_scale.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("simulate", help="a simulated v2 set of N hands: read time, RSS, epochs")
    s.add_argument("--hands", type=int, default=1_000_000)
    s.add_argument("--out", default="runs/hagrid-sim")
    s.add_argument("--epochs", type=int, default=1, help="epochs of the timed generation (default 1)")
    s.add_argument("--presets", default="landmarks,landmarks-gpu", help="landmark presets to time")
    for name in ("throughput", "engines"):
        t = sub.add_parser(name, help="extraction on real photos" + (" per core" if name == "throughput" else
                                                                     ": 1 vs 2 workers, identical rows"))
        t.add_argument("--data", required=True, help="a HaGRID root with annotated val photos")
        t.add_argument("--photos", type=int, default=40)
        if name == "engines":
            t.add_argument("--rule", choices=("annotated", "photos", "crops"), default="photos",
                           help="which rule's pictures to extract (photos: ~0.25 CPU s each, enough work to "
                                "outweigh the workers' start-up)")
    for p in sub.choices.values():
        p.add_argument("--json", default=None, help="also write the figures as JSON")
        p.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.what == "simulate" and args.hands < 100:
        raise ConfigError("--hands must be at least 100")
    result = {"simulate": simulate, "throughput": throughput, "engines": engines}[args.what](args)
    if args.json:
        from rnn_jax.atomic import write_json_atomic

        write_json_atomic(args.json, result, indent=2)
    return 0


if __name__ == "__main__":
    main_guard(main)
