"""The pixel-level check of dynamic gestures: videos made from real HaGRID val photos, through the whole live loop.

    python tools/motion_videos.py --motion motion.onnx --out runs/motion-videos            # 15 and 30 fps
    python tools/motion_videos.py --motion motion.onnx --fps 15 --per-gesture 2 --keep-videos
    python tools/motion_videos.py --motion motion.onnx --split tune --per-gesture 6 --out runs/mv-tune
    python tools/motion_videos.py --motion other.onnx --replay runs/mv-tune --out runs/mv-tune-other

Each video: a hand cut from a real HaGRID **val** photo (held-out people; the box enlarged to a
square with its surroundings, edges feathered) pasted on a blurred copy of its photo and moved
along a path (the user's view: "swipe left" moves it to the user's left, i.e. to the right of the
unmirrored camera picture); two photos for the two-hand zoom (the second flipped: the other hand);
for drag-and-drop a fist that moves, then is replaced by an open hand. Each video holds the hand
still for 0.7 s first (the track's minimum age), then the gesture, then 0.6 s still. It is written
at 15 and at 30 frames/s (an AVI that says its rate) and read by ``rnn_jax.live`` with the hand
finder on and the motion model beside the bundled static model. Counted per gesture: videos whose
expected dynamic event fired, and dynamic events that are wrong (any other label).

People: ``--split tune`` uses only the val people of half 0 (the motion model's validation people,
``rnn_jax.data.motion.people_halves``), ``--split report`` only half 1 (its test people), each with
its own random paths (seed, split); choose decoding settings on ``tune``, report ``report``.
``all`` (the default) draws from every val person, as before the split existed.

Every video's hands as the finder reported them (landmarks, presence, track ids, frame times) are
stored under ``OUT/hands``; ``--replay OUT`` runs a (new) motion model and the live decoding
(:class:`rnn_jax.live.motion.MotionModel`, :class:`rnn_jax.live.hand_tracks.HandTracks`) on those
stored hands instead of rendering and finding again: the same events as the live loop (the motion
side never feeds back into the finder), in seconds instead of minutes.

Not rendered: taps, double taps and the one-hand pinch zoom (they need a hand whose fingers move;
still photos cannot show that), and ``no_motion`` (the still video is the negative).
Needs the HaGRID sample (``--hagrid``) and the hand models (``python tools/build_hand_models.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from rnn_jax.data.motion_compose import GROUPS  # noqa: E402
from rnn_jax.errors import DataError, main_guard  # noqa: E402

DEFAULT_HAGRID = REPO / ".." / "shared" / "data" / "hagrid-sample"
DEFAULT_STATIC = REPO / "rnn_jax" / "bundled" / "hagrid_landmarks.onnx"
FRAME = (640, 480)  # width, height
HAND_PX = 190  # the pasted square's side (the hand box is ~60% of it)
HOLD_BEFORE, HOLD_AFTER = 0.7, 0.6
PACE = (0.8, 1.25)  # each video's gesture lasts its script's seconds times a factor drawn in this range


@dataclass(frozen=True)
class Crop:
    image: np.ndarray  # BGR square, the hand with its surroundings
    background: np.ndarray  # the blurred photo, frame-sized
    label: str
    user: str


@dataclass(frozen=True)
class Gesture:
    """One video's script: which hands (group names), what fires, and the motion."""

    name: str
    groups: tuple[str, ...]
    expected: tuple[str, ...]  # dynamic events that should fire (any one of them counts as fired)
    seconds: float


GESTURES = (
    *(Gesture(f"swipe_{d} ({g})", (g,), (f"swipe_{d}",), 0.45) for d in ("left", "right", "up", "down")
      for g in ("open", "one", "two")),
    Gesture("zoom_in (two hands)", ("L", "L"), ("zoom_in",), 0.6),
    Gesture("zoom_out (two hands)", ("L", "L"), ("zoom_out",), 0.6),
    Gesture("drag (fist moves)", ("fist",), ("drag",), 0.8),
    Gesture("drag and drop (fist moves, opens)", ("fist", "open"), ("drop", "drag"), 0.8),
    Gesture("circle_cw (one)", ("one",), ("circle_cw",), 1.0),
    Gesture("circle_ccw (one)", ("one",), ("circle_ccw",), 1.0),
    Gesture("still (any)", ("any",), (), 1.0),
)


SPLITS = ("all", "tune", "report")


def load_crops(root: Path, split: str = "all") -> dict[str, list[Crop]]:
    """Every gesture hand of the annotated val photos of ``split``'s people, as a square crop, by group."""
    from rnn_jax.data.hagrid.prepare import annotated_photos
    from rnn_jax.data.motion import people_halves

    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    photos = annotated_photos(root, "val")
    if split != "all" and photos:
        half = people_halves(np.array([str(ann["user"]) for _, ann in photos]))
        photos = [p for p, h in zip(photos, half) if h == SPLITS.index(split) - 1]
    by_group: dict[str, list[Crop]] = {g: [] for g in (*GROUPS, "any")}
    for path, ann in photos:
        img = cv2.imread(str(path))
        if img is None:
            continue
        h, w = img.shape[:2]
        background = cv2.GaussianBlur(cv2.resize(img, FRAME), (0, 0), 25)
        for box, label in zip(ann["boxes"], ann["labels"]):
            if label == "no_gesture":
                continue
            x, y, bw, bh = box[0] * w, box[1] * h, box[2] * w, box[3] * h
            side = max(bw, bh) * 1.6
            cx, cy = x + bw / 2, y + bh / 2
            x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
            pad = int(side)
            padded = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REFLECT)
            crop = padded[y0 + pad:y0 + pad + int(side), x0 + pad:x0 + pad + int(side)]
            if crop.size == 0:
                continue
            c = Crop(cv2.resize(crop, (HAND_PX, HAND_PX)), background, label, str(ann["user"]))
            by_group["any"].append(c)
            for g, members in GROUPS.items():
                if label in members:
                    by_group[g].append(c)
    if not by_group["any"]:
        raise DataError(f"{root}: no annotated val photo found (the HaGRID sample's hagrid_dataset + "
                        "hagrid_annotations/val)")
    return by_group


FEATHER = None


def _mask() -> np.ndarray:
    global FEATHER
    if FEATHER is None:
        m = np.zeros((HAND_PX, HAND_PX), np.float32)
        cv2.circle(m, (HAND_PX // 2, HAND_PX // 2), int(HAND_PX * 0.47), 1.0, -1)
        FEATHER = cv2.GaussianBlur(m, (0, 0), HAND_PX * 0.06)[..., None]
    return FEATHER


def paste(frame: np.ndarray, crop: np.ndarray, centre: tuple[float, float]) -> None:
    """Blend ``crop`` into ``frame`` (in place) centred at camera pixel ``centre``, clipped at the edges."""
    h, w = frame.shape[:2]
    x0, y0 = int(round(centre[0] - HAND_PX / 2)), int(round(centre[1] - HAND_PX / 2))
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + HAND_PX, w), min(y0 + HAND_PX, h)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    cx0, cy0 = fx0 - x0, fy0 - y0
    a = _mask()[cy0:cy0 + fy1 - fy0, cx0:cx0 + fx1 - fx0]
    region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    part = crop[cy0:cy0 + fy1 - fy0, cx0:cx0 + fx1 - fx0].astype(np.float32)
    frame[fy0:fy1, fx0:fx1] = (region * (1 - a) + part * a).astype(np.uint8)


def smooth(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3 - 2 * u)


def paths(g: Gesture, t: np.ndarray, rng: np.random.Generator, seconds: float | None = None) -> list[np.ndarray]:
    """Per hand: its centre [T, 2] in the **user's view** (pixels, x to the user's right); the gesture
    lasts ``seconds`` (default its script's)."""
    w, h = FRAME
    seconds = g.seconds if seconds is None else seconds
    u = smooth((t - HOLD_BEFORE) / seconds)
    centre = np.array([w / 2 + rng.uniform(-30, 30), h / 2 + rng.uniform(-20, 20)])
    tremor = rng.normal(0, 0.8, (len(t), 2))
    name = g.name.split(" ")[0]
    if name.startswith("swipe"):
        vec = {"swipe_left": (-1, 0), "swipe_right": (1, 0), "swipe_up": (0, -1), "swipe_down": (0, 1)}[name]
        dist = np.array([0.5 * w, 0.42 * h]) * np.abs(vec)
        start = centre - np.array(vec) * dist / 2
        return [start + u[:, None] * np.array(vec) * dist + tremor]
    if name.startswith("zoom"):
        near, far = 200.0, 420.0
        d = near + (far - near) * u if name == "zoom_in" else far + (near - far) * u
        return [centre + np.stack([d / 2, 0 * d], 1) + tremor, centre - np.stack([d / 2, 0 * d], 1) + tremor]
    if name == "drag":
        a = rng.uniform(-np.pi, np.pi)
        vec = 0.35 * h * np.array([np.cos(a), np.sin(a)])
        return [centre - vec / 2 + smooth((t - HOLD_BEFORE) / (seconds * 0.7))[:, None] * vec + tremor]
    if name.startswith("circle"):  # from a random point of the circle (its first arc heads any way)
        sense = 1.0 if name == "circle_cw" else -1.0  # y down: angle up = clockwise on screen
        radius, start = rng.uniform(0.12, 0.18) * h, rng.uniform(-np.pi, np.pi)
        theta = start + sense * 2 * np.pi * 1.1 * np.clip((t - HOLD_BEFORE) / seconds, 0, 1)
        ring = np.stack([np.cos(theta) - np.cos(start), np.sin(theta) - np.sin(start)], 1)
        return [centre + radius * ring + tremor]
    return [centre + np.cumsum(rng.normal(0, 0.3, (len(t), 2)), 0)]


def render(g: Gesture, crops: dict[str, list[Crop]], fps: float, path: Path, rng: np.random.Generator) -> dict:
    """Write one video of ``g`` at ``fps``; returns what it shows."""
    picks = [crops[grp][rng.integers(len(crops[grp]))] for grp in g.groups]
    seconds = g.seconds * rng.uniform(*PACE)
    n = int(round((HOLD_BEFORE + seconds + HOLD_AFTER) * fps))
    t = np.arange(n) / fps
    tracks = paths(g, t, rng, seconds)
    images = [p.image for p in picks]
    if g.name.startswith("zoom"):
        images[1] = cv2.flip(images[1], 1)  # the other hand
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, FRAME)
    if not writer.isOpened():
        raise DataError(f"cannot write {path} (OpenCV's MJPG writer)")
    w = FRAME[0]
    opening = HOLD_BEFORE + seconds * 0.75  # drag and drop: the fist opens after its move
    for k in range(n):
        frame = picks[0].background.copy()
        if len(picks) == 2 and g.name.startswith("drag"):  # one hand: the fist, then the open hand
            s = float(np.clip((t[k] - opening) / 0.15, 0, 1))
            crop = (images[0] * (1 - s) + images[1] * s).astype(np.uint8) if 0 < s < 1 else images[int(s >= 1)]
            paste(frame, crop, (w - tracks[0][k, 0], tracks[0][k, 1]))
        else:
            for img, track in zip(images, tracks):
                paste(frame, img, (w - track[k, 0], track[k, 1]))  # user's view -> camera pixels
        writer.write(frame)
    writer.release()
    return {"gesture": g.name, "fps": fps, "frames": n, "seconds": round(seconds, 3), "photos": [f"{p.label}/{p.user[:8]}" for p in picks]}


def run_video(path: Path, static: Path, motion: Path, threads: int, hand_search: str,
              record: Path | None = None, rules: Any = None) -> dict:
    """``path`` through ``rnn_jax.live`` (finder, static and motion models): its dynamic events started,
    the share of frames with a hand; with ``record``, every frame's hands saved there (:func:`save_hands`)."""
    from rnn_jax.live import iter_predictions
    from rnn_jax.live.motion import MotionModel

    events, frames, with_hand, seen = [], 0, 0, []
    model = MotionModel.load(motion, threads=threads, rules=rules)
    with iter_predictions(static, str(path), hands="on", motion=model, threads=threads,
                          hand_search=hand_search) as stream:
        for rec in stream:
            frames += 1
            with_hand += bool(rec.hands)
            seen.append((rec.index, model.now, [h.hand for h in rec.hands or ()], rec.frame.shape))
            events += [(e.label, e.frame) for e in rec.events if e.dynamic and e.kind == "started"]
    if record is not None:
        save_hands(record, seen)
    return {"started": events, "hand_rate": with_hand / max(frames, 1)}


HAND_FIELDS = ("frame", "time", "landmarks", "presence", "right", "handedness_score", "rect", "track_id", "tracked")


def save_hands(path: Path, seen: list[tuple[int, float, list, tuple]]) -> None:
    """Every frame's hands (as the finder gave them) and time, one row per hand, to an .npz."""
    rows = [(i, t, h) for i, t, hands, _ in seen for h in hands]
    np.savez_compressed(
        path, frames=np.array([i for i, _, _, _ in seen], np.int32), times=np.array([t for _, t, _, _ in seen]),
        shape=np.array(seen[0][3] if seen else (FRAME[1], FRAME[0], 3), np.int32),
        frame=np.array([i for i, _, _ in rows], np.int32), time=np.array([t for _, t, _ in rows]),
        landmarks=np.array([h.landmarks for _, _, h in rows], np.float32).reshape(-1, 21, 3),
        presence=np.array([h.presence for _, _, h in rows], np.float32),
        right=np.array([h.handedness == "right" for _, _, h in rows], bool),
        handedness_score=np.array([h.handedness_score for _, _, h in rows], np.float32),
        rect=np.array([(h.rect.cx, h.rect.cy, h.rect.side, h.rect.angle) for _, _, h in rows], np.float64).reshape(-1, 4),
        track_id=np.array([h.track_id for _, _, h in rows], np.int64),
        tracked=np.array([h.tracked for _, _, h in rows], bool),
        frame_size=np.array([h.frame_size for _, _, h in rows], np.int32).reshape(-1, 2))


def load_hands(path: Path) -> list[tuple[int, float, list, tuple]]:
    """:func:`save_hands`' file -> per frame (index, time, hands, frame shape)."""
    from rnn_jax.hands.finder import Hand
    from rnn_jax.hands.geometry import Rect

    z = np.load(path)
    shape = tuple(int(v) for v in z["shape"])
    by_frame: dict[int, list] = {int(i): [] for i in z["frames"]}
    for k in range(len(z["frame"])):
        by_frame[int(z["frame"][k])].append(Hand(
            z["landmarks"][k].copy(), float(z["presence"][k]), "right" if z["right"][k] else "left",
            float(z["handedness_score"][k]), Rect(*(float(v) for v in z["rect"][k])), int(z["track_id"][k]),
            bool(z["tracked"][k]), tuple(int(v) for v in z["frame_size"][k])))
    return [(int(i), float(t), by_frame[int(i)], shape) for i, t in zip(z["frames"], z["times"])]


def replay_video(seen: list[tuple[int, float, list, tuple]], motion: Any, n_static: int) -> dict:
    """The live loop's motion side on stored hands: ``motion.classify`` then ``HandTracks.update`` per frame
    (as ``rnn_jax.live.loop.PredictionStream``; the static probabilities, which start no dynamic event, are
    zeros). Returns the dynamic events started and the share of frames with a hand."""
    from rnn_jax.live.hand_tracks import HandTracks
    from rnn_jax.live.smoothing import GestureConfig

    motion.reset()
    tracks = HandTracks(tuple(f"c{i}" for i in range(n_static)), GestureConfig(), motion)
    events = []
    for index, t, hands, shape in seen:
        probs = motion.classify(hands, shape, t)
        _, evs = tracks.update([(h, np.zeros(n_static, np.float32)) for h in hands], probs, index, shape)
        events += [(e.label, e.frame) for e in evs if e.dynamic and e.kind == "started"]
    return {"started": events, "hand_rate": sum(bool(h) for _, _, h, _ in seen) / max(len(seen), 1)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python tools/motion_videos.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--motion", type=Path, required=True, help="the motion model (.onnx)")
    p.add_argument("--static", type=Path, default=DEFAULT_STATIC, help="the static model (default: the bundled one)")
    p.add_argument("--hagrid", type=Path, default=DEFAULT_HAGRID, help="the HaGRID sample (val photos)")
    p.add_argument("--fps", type=float, action="append", help="frame rates (repeatable; default 15 and 30)")
    p.add_argument("--per-gesture", type=int, default=2, help="videos per gesture and rate (default %(default)s)")
    p.add_argument("--split", choices=SPLITS, default="all",
                   help="whose val photos: tune = half 0 of the val people, report = half 1 (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--hand-search", default="balanced",
                   help="the finder's search budget, as rnn_jax.live --hand-search (default %(default)s)")
    p.add_argument("--rules", choices=("default", "off"), default="default",
                   help="the live decoding rules (rnn_jax.live.motion_rules): default, or off (the decoding before "
                        "them) (default %(default)s)")
    p.add_argument("--replay", type=Path, default=None,
                   help="a folder of an earlier run: decode its stored hands with --motion (no rendering, no finder)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for results.json and hands/ (and the videos with --keep-videos)")
    p.add_argument("--keep-videos", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for f in (args.motion, args.static):
        if not f.is_file():
            raise DataError(f"{f}: not found")
    if args.per_gesture < 1:
        raise DataError(f"--per-gesture must be >= 1, got {args.per_gesture}")
    out = args.out or Path(tempfile.mkdtemp(prefix="motion-videos-"))
    if args.replay is not None:
        rows, rates = replay(args.replay, args.motion, args.threads, args.static, chosen_rules(args.rules))
    else:
        rows, rates = render_and_run(args, out)
    print(table(rows, rates))
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"rows": rows, "args": {k: str(v) for k, v in vars(args).items()}},
                                                 indent=1))
    print(f"wrote {out / 'results.json'}")
    return 0


def chosen_rules(name: str) -> Any:
    from rnn_jax.live.motion_rules import DEFAULT_RULES, NO_RULES

    return NO_RULES if name == "off" else DEFAULT_RULES


def render_and_run(args: argparse.Namespace, out: Path) -> tuple[list[dict], list[float]]:
    """Render every video, run it through the live loop, store its hands; the rows and the rates."""
    rates = args.fps or [15.0, 30.0]
    crops = load_crops(args.hagrid, args.split)
    rng = np.random.default_rng(args.seed if args.split == "all" else [args.seed, SPLITS.index(args.split)])
    (out / "hands").mkdir(parents=True, exist_ok=True)
    folder = out if args.keep_videos else Path(tempfile.mkdtemp(prefix="motion-videos-"))
    rows, t0 = [], time.perf_counter()
    total = len(GESTURES) * args.per_gesture * len(rates)
    for fps in rates:
        for gi, g in enumerate(GESTURES):
            for k in range(args.per_gesture):
                name = f"{gi:02d}-{k}-{fps:g}fps"
                path = folder / f"{name}.avi"
                row = {"video": name} | render(g, crops, fps, path, rng) | run_video(
                    path, args.static, args.motion, args.threads, args.hand_search, out / "hands" / f"{name}.npz",
                    chosen_rules(args.rules))
                rows.append(score(row, g))
                if not args.keep_videos:
                    path.unlink(missing_ok=True)
                done = len(rows)
                rate = done / (time.perf_counter() - t0)
                print(f"[{done}/{total}] {g.name} @ {fps:g} fps: started {[x for x, _ in row['started']] or '-'} "
                      f"(hand on {100 * row['hand_rate']:.0f}% of frames; {rate:.2f} videos/s, "
                      f"ETA {(total - done) / rate:.0f} s)", flush=True)
    return rows, rates


def replay(folder: Path, motion: Path, threads: int, static: Path, rules: Any = None) -> tuple[list[dict], list[float]]:
    """Decode the stored hands of an earlier run (``folder``) with ``motion``; the rows and the rates."""
    from rnn_jax.live.motion import MotionModel
    from rnn_jax.runtime.landmark_predictor import LandmarkPredictor

    results = folder / "results.json"
    if not results.is_file():
        raise DataError(f"{folder}: no results.json (run this tool with --out {folder} first)")
    old = json.loads(results.read_text())["rows"]
    if not old or "video" not in old[0]:
        raise DataError(f"{results}: made before hands were stored (no 'video' field): render it again")
    n_static = len(LandmarkPredictor.load(static, threads=threads).class_names)
    model = MotionModel.load(motion, threads=threads, rules=rules)
    by_name = {g.name: g for g in GESTURES}
    rows = []
    for r in old:
        hands = folder / "hands" / f"{r['video']}.npz"
        if not hands.is_file():
            raise DataError(f"{hands}: missing (the run in {folder} was cut short?)")
        row = {k: r[k] for k in ("video", "gesture", "fps", "frames", "photos")} | replay_video(
            load_hands(hands), model, n_static)
        rows.append(score(row, by_name[r["gesture"]]))
    return rows, sorted({r["fps"] for r in rows})


def score(row: dict, g: Gesture) -> dict:
    """``row`` with ``fired`` (the expected event started; None for a video that expects none) and ``wrong``."""
    labels = [label for label, _ in row["started"]]
    row["fired"] = bool(set(labels) & set(g.expected)) if g.expected else None
    row["wrong"] = [x for x in labels if x not in g.expected]
    return row


def table(rows: list[dict], rates: list[float]) -> str:
    """Per gesture and rate: expected event fired (videos), wrong events, hand found on frames."""
    head = "| gesture | " + " | ".join(f"{r:g} fps: fired / wrong events / hand %" for r in rates) + " |"
    lines = [head, "|---|" + "---|" * len(rates)]
    for g in GESTURES:
        cells = []
        for r in rates:
            mine = [x for x in rows if x["gesture"] == g.name and x["fps"] == r]
            fired = "–" if not g.expected else f"{sum(x['fired'] for x in mine)}/{len(mine)}"
            wrong = sum(len(x["wrong"]) for x in mine)
            names = sorted({w for x in mine for w in x["wrong"]})
            hand = 100 * np.mean([x["hand_rate"] for x in mine])
            cells.append(f"{fired} / {wrong}{' (' + ', '.join(names) + ')' if names else ''} / {hand:.0f}")
        lines.append(f"| {g.name} | " + " | ".join(cells) + " |")
    for r in rates:
        mine = [x for x in rows if x["fps"] == r]
        expect = [x for x in mine if x["fired"] is not None]
        lines.append(f"\n{r:g} fps: expected events fired in {sum(x['fired'] for x in expect)}/{len(expect)} "
                     f"videos; wrong events {sum(len(x['wrong']) for x in mine)} over {len(mine)} videos")
    return "\n".join(lines)


if __name__ == "__main__":
    main_guard(main)
