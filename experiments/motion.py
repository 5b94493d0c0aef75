"""Dynamic gestures (swipes, zoom, drag/drop, taps, circles, still, no motion) as a born-again lineage.

    python -m experiments.motion --out runs/motion                       # train (real + composed data)
    python -m experiments.motion --export runs/motion --onnx motion.onnx  # ONNX + parity + per-class + latency
    python -m rnn_jax.live --onnx landmarks.onnx --motion motion.onnx    # live, beside a static model

Data (rnn_jax/data/motion.py, docs/motion.md): windows composed from real people's hands (the
HaGRID sample's landmarks: train people train, val people validate and test, split by person;
plus ``keypoint.csv``), sampled at 10-60 frames/s, and the real index-fingertip recordings of
``hand-keypoints/point_history.csv`` (a source-disjoint split by recording).
Features: the motion feature rule of rnn_jax/hands/motion_features.py (pose, rates per second,
the partner hand; user's view).
Model: ``motion`` (rnn_jax/models/motion.py, a window of the last 24 frames carried as state);
``lstm``/``trm``/``lmlp`` also train on the same windows (zero state at each window's start).

``--export RUN`` writes the final student (or ``--gen``) as a stateful per-frame ONNX file behind
the sequence parity gate, then prints per-class accuracy on the held-out real and composed
test windows (held-out people, at 15 and 30 frames/s) for the JAX model on whole windows and for
the ONNX file frame by frame (state carried), their agreement, and the latency per frame on one thread.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from experiments.common import check_before_data, default_out, run_experiment
from experiments.flags import add_common_flags
from rnn_jax.atomic import write_json_atomic
from rnn_jax.errors import main_guard
from rnn_jax.presets import RECIPES

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
DEFAULT_DATA = SHARED / "hand-keypoints"
DEFAULT_HAGRID = SHARED / "hagrid-sample"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.motion", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--data", default=None, metavar="DIR",
                      help=f"the hand-keypoints folder (point_history.csv, keypoint.csv; default {DEFAULT_DATA})")
    data.add_argument("--hagrid", default=None, metavar="DIR",
                      help=f"the HaGRID sample whose people's hands compose the windows (default {DEFAULT_HAGRID} "
                           "when present; 'none': keypoint.csv's hands only)")
    data.add_argument("--per-class", type=int, default=800, metavar="N",
                      help="composed training windows per class (val: a fifth; test: a fifth at each of 15 and "
                           "30 frames/s; default %(default)s)")
    exp = parser.add_argument_group("export (instead of training)")
    exp.add_argument("--export", metavar="RUN", help="export RUN's final student and report (no training)")
    exp.add_argument("--gen", type=int, default=None, help="with --export: this generation instead")
    exp.add_argument("--onnx", default="motion.onnx", metavar="PATH", help="with --export: output (default %(default)s)")
    add_common_flags(parser, **RECIPES["motion"])  # defaults: rnn_jax/presets.py
    return parser


def data_folder(args: argparse.Namespace) -> Path:
    from rnn_jax.errors import DataError

    folder = Path(args.data).expanduser() if args.data else DEFAULT_DATA
    if not (folder / "point_history.csv").is_file():
        raise DataError(f"{folder} has no point_history.csv (give the hand-keypoints folder with --data)")
    return folder.resolve()


def hagrid_folder(args: argparse.Namespace) -> Path | None:
    from rnn_jax.errors import DataError

    if args.hagrid == "none":
        return None
    if args.hagrid is None:
        return DEFAULT_HAGRID.resolve() if DEFAULT_HAGRID.is_dir() else None
    folder = Path(args.hagrid).expanduser()
    if not folder.is_dir():
        raise DataError(f"--hagrid {folder}: no such folder (the HaGRID sample, or 'none')")
    return folder.resolve()


RATES = [0, 1, 2, 3, 4, 5, 6, 9, 16, 17, 18]  # the motion vector's per-second rates (motion_features)


class MotionTrainView:
    """Training-time augmentation of motion features: pose jitter and speed (velocity) scaling."""

    augments = True

    def augment(self, features: np.ndarray, rng: np.random.Generator, level: str, flip: bool) -> np.ndarray:
        if level == "none":
            return features
        x = np.array(features, np.float32)
        present = np.abs(x).sum((-1, -2), keepdims=True) > 0
        strength = 2.0 if level == "strong" else 1.0
        x[..., :2] += rng.normal(0, 0.01 * strength, x[..., :2].shape).astype(np.float32)
        speed = rng.uniform(1 - 0.15 * strength, 1 + 0.15 * strength, (len(x), 1, 1)).astype(np.float32)
        x[..., RATES, 2] *= speed
        return np.where(present, x, 0.0).astype(np.float32)

    def random(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return images

    def clean(self, images: np.ndarray) -> np.ndarray:
        return images


def motion_dataset(folder: Path, per_class: int, seed: int, hagrid: Path | None = None):
    """The engine's Dataset (features [N, 24, 21, 3]) and the held-out sets with their origin."""
    from rnn_jax.data.motion import WINDOW, motion_sets
    from rnn_jax.data.types import Dataset, Split
    from rnn_jax.hands.motion_features import MOTION_CLASSES, feature_spec

    sets = motion_sets(folder, per_class=per_class, seed=seed, hagrid=hagrid)
    splits = {k: Split(v.features(), v.labels.astype(np.int32)) for k, v in sets.items()}
    notes = {"landmarks": {"features": feature_spec(), "sequence_length": WINDOW, "coords": "user view"},
             "motion": {k: v.notes for k, v in sets.items()}}
    return Dataset(f"motion:{folder.name}", MOTION_CLASSES, splits["train"], splits["val"], splits["test"],
                   crop_mode="landmarks", notes=notes, train_view=MotionTrainView()), sets


def per_class_table(labels: np.ndarray, preds: np.ndarray, columns: dict[str, np.ndarray]) -> str:
    """Rows: classes; columns: accuracy % (n) of ``preds`` on each named mask."""
    from rnn_jax.hands.motion_features import MOTION_CLASSES

    lines = ["| class | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for c, cname in enumerate([*MOTION_CLASSES, "all"]):
        cells = []
        for mask in columns.values():
            m = mask & ((labels == c) if cname != "all" else True)
            n = int(m.sum())
            cells.append(f"{100 * np.mean(preds[m] == labels[m]):.1f} ({n})" if n else "–")
        lines.append(f"| {cname} | " + " | ".join(cells) + " |")
    bg = [MOTION_CLASSES.index("still"), MOTION_CLASSES.index("no_motion")]  # neither ever starts an event
    same = (preds == labels) | (np.isin(preds, bg) & np.isin(labels, bg))
    lines.append("| all, still = no_motion | " + " | ".join(
        f"{100 * np.mean(same[m]):.1f} ({int(m.sum())})" if m.any() else "–" for m in columns.values()) + " |")
    return "\n".join(lines)


def onnx_windows(path: Path, feats: np.ndarray, threads: int = 1) -> np.ndarray:
    """The ONNX file frame by frame, state carried, every window from a zero state (batched over windows)."""
    from rnn_jax.runtime.landmark_predictor import LandmarkPredictor

    predictor = LandmarkPredictor.load(path, threads=threads)
    logits = []
    for start in range(0, len(feats), 512):
        chunk = feats[start:start + 512]
        state = predictor.initial_state(len(chunk))
        for t in range(chunk.shape[1]):
            out, state = predictor.step(chunk[:, t], state)
        logits.append(out)
    return np.concatenate(logits)


def latency(path: Path, feats: np.ndarray, calls: int = 3000, repeats: int = 5) -> dict[str, float]:
    """Per frame at batch 1 on one thread (median of rounds, ms): the ONNX step; the feature rule (with a
    partner hand) + step; and the live runtime's whole motion step (MotionModel.step) per hand, two hands
    in view (features, partners, states)."""
    import time

    from rnn_jax.export.landmark_export import measure_step_latency
    from rnn_jax.hands.motion_features import motion_features
    from rnn_jax.live.motion import MotionModel

    rng = np.random.default_rng(0)
    view, prev, other, other_prev = rng.uniform(0, 1, (4, 21, 2))
    result = measure_step_latency(path, feats[0, -1], threads=1, calls=calls, repeats=repeats,
                                  features=lambda _: motion_features(view, prev, 1 / 30, other, other_prev)[None])
    live = MotionModel.load(path, threads=1)
    views = np.stack([view, other])
    rounds = []
    for r in range(repeats):
        t0 = time.perf_counter()
        for i in range(calls // 2):
            live.step([1, 2], views + 0.001 * (i % 2), (r * calls + i) / 30)
        rounds.append((time.perf_counter() - t0) / (calls // 2) / 2 * 1e3)
    return {"step_ms": result["step_ms"], "features_and_step_ms": result["features_and_step_ms"],
            "live_step_per_hand_ms": float(np.median(rounds))}


def export(args: argparse.Namespace) -> dict:
    import rnn_jax
    from rnn_jax.api import Lineage
    from rnn_jax.export.landmark_export import export_landmark_model
    from rnn_jax.hands.motion_features import MOTION_CLASSES, feature_spec
    from rnn_jax.lineage.record import generation_entry
    from rnn_jax.models.registry import count_params
    from rnn_jax.runtime.landmark_predictor import LandmarkInfo

    lineage = Lineage(args.export)
    record = lineage.record
    gen = lineage.final_generation if args.gen is None else args.gen
    model = lineage.load_model(gen, dtype="float32")
    notes = record["data"].get("notes", {}).get("motion_source", {})
    folder = Path(notes.get("data") or data_folder(args))
    per_class = int(notes.get("per_class", args.per_class))
    seed = int(notes.get("seed", record.get("config", {}).get("seed", 0)))
    hagrid = notes.get("hagrid", "unset")
    hagrid = hagrid_folder(args) if hagrid == "unset" else (Path(hagrid) if hagrid else None)
    _, sets = motion_dataset(folder, per_class, seed, hagrid)
    test = sets["test"]
    feats, labels, origin, fps = test.features(), test.labels, test.origin, test.fps
    entry = generation_entry(record, gen) or {}
    layout = (f"[B, last {model.window - 1} frames x {model.embed_dim} embedding], oldest first"
              if hasattr(model, "window") else type(model).__name__)
    info = LandmarkInfo(class_names=MOTION_CLASSES, features=feature_spec(), state_size=int(getattr(model, "state_size", 0)),
                        state_layout=layout, model_name=record.get("model", {}).get("label", ""), generation=int(gen),
                        val_accuracy=float(entry.get("val_acc", float("nan"))), run_name=record.get("name", ""),
                        rnn_jax_version=rnn_jax.__version__)
    stream = feats[np.random.default_rng(0).permutation(len(feats))[:4]].reshape(-1, 21, 3)  # 96 frames, mid-stream
    result = export_landmark_model(model, info, args.onnx, stream, log=print)
    jax_logits = np.concatenate([np.asarray(model(feats[i:i + 512])) for i in range(0, len(feats), 512)])
    onnx_logits = onnx_windows(result.path, feats)
    preds = {"JAX windows": jax_logits.argmax(1), "ONNX frame by frame": onnx_logits.argmax(1)}
    columns = {f"{o} {f:g} fps": (origin == o) & (np.round(fps) == f) for o in ("composed", "real") for f in (15, 30)}
    table = per_class_table(labels, preds["ONNX frame by frame"], columns)
    lat = latency(result.path, feats)
    report = {"run_dir": str(args.export), "generation": gen, "onnx": str(result.path), "params": count_params(model),
              "state_size": info.state_size, "file_bytes": result.file_bytes,
              "parity_stream_frames": result.parity.n, "parity_max_abs_logit_diff": result.parity.max_abs_logit_diff,
              "windows_max_abs_logit_diff": float(np.abs(jax_logits - onnx_logits).max()),
              "windows_top1_agreement": float(np.mean(preds["JAX windows"] == preds["ONNX frame by frame"])),
              "test_acc": {name: float(np.mean(preds["ONNX frame by frame"][m] == labels[m]))
                           for name, m in columns.items() if m.any()},
              "latency_1_thread": lat, "per_class_table": table}
    write_json_atomic(Path(str(result.path) + ".json"), report, indent=2, end="\n")
    print(f"\nheld-out test windows (composed: held-out people's hands), ONNX stepped frame by frame, "
          f"accuracy % (windows), generation {gen}:\n{table}")
    print(f"\nJAX on whole windows vs ONNX frame by frame: max |dlogit| {report['windows_max_abs_logit_diff']:.2e}, "
          f"top-1 agreement {100 * report['windows_top1_agreement']:.2f}% over {len(feats)} windows")
    print(f"latency per frame, batch 1, 1 thread: step {lat['step_ms']:.4f} ms, "
          f"features + step {lat['features_and_step_ms']:.4f} ms, live MotionModel.step "
          f"{lat['live_step_per_hand_ms']:.4f} ms per hand (two hands in view)")
    print(f"wrote {result.path} and {result.path}.json")
    return report


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from rnn_jax.errors import ConfigError
    from rnn_jax.models.registry import LANDMARK_MODELS

    if args.export:
        export(args)
        return
    if args.model not in LANDMARK_MODELS:
        raise ConfigError(f"--model {args.model} takes images; motion models are {', '.join(LANDMARK_MODELS)}")
    if args.cutmix:
        raise ConfigError("--cutmix cuts image rectangles; motion features take --mixup instead")
    if args.per_class < 10:
        raise ConfigError(f"--per-class must be >= 10, got {args.per_class}")
    out = Path(args.out) if args.out else default_out("motion")
    args.out = str(out)
    config = check_before_data(args, out)
    folder = data_folder(args)
    hagrid = hagrid_folder(args)

    def build_data(args: argparse.Namespace):
        dataset, sets = motion_dataset(folder, args.per_class, args.seed, hagrid)
        dataset.notes["motion_source"] = {"data": str(folder), "per_class": args.per_class, "seed": args.seed,
                                          "hagrid": str(hagrid) if hagrid else ""}
        for split, s in sets.items():
            print(f"{split}: {s.notes['real']} real windows {s.notes['real_per_class']} "
                  f"({s.notes['recordings']} recordings) + {s.notes['composed']} composed")
        return None, dataset

    run_experiment(args, "motion", build_data, config=config)


if __name__ == "__main__":
    main_guard(main)
