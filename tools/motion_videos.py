"""The pixel-level check of dynamic gestures: videos made from real HaGRID val photos, through the whole live loop.

    python tools/motion_videos.py --motion motion.onnx --out runs/motion-videos            # 15 and 30 fps
    python tools/motion_videos.py --motion motion.onnx --fps 15 --per-gesture 2 --keep-videos

Each video: a hand cut from a real HaGRID **val** photo (held-out people; the box enlarged to a
square with its surroundings, edges feathered) pasted on a blurred copy of its photo and moved
along a path (the user's view: "swipe left" moves it to the user's left, i.e. to the right of the
unmirrored camera picture); two photos for the two-hand zoom (the second flipped: the other hand);
for drag-and-drop a fist that moves, then is replaced by an open hand. Each video holds the hand
still for 0.7 s first (the track's minimum age), then the gesture, then 0.6 s still. It is written
at 15 and at 30 frames/s (an AVI that says its rate) and read by ``rnn_jax.live`` with the hand
finder on and the motion model beside the bundled static model. Counted per gesture: videos whose
expected dynamic event fired, and dynamic events that are wrong (any other label).

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


def load_crops(root: Path) -> dict[str, list[Crop]]:
    """Every gesture hand of the annotated val photos, as a square crop, by group."""
    from rnn_jax.data.hagrid.prepare import annotated_photos

    by_group: dict[str, list[Crop]] = {g: [] for g in (*GROUPS, "any")}
    for path, ann in annotated_photos(root, "val"):
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


def paths(g: Gesture, t: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Per hand: its centre [T, 2] in the **user's view** (pixels, x to the user's right)."""
    w, h = FRAME
    u = smooth((t - HOLD_BEFORE) / g.seconds)
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
        return [centre - vec / 2 + smooth((t - HOLD_BEFORE) / (g.seconds * 0.7))[:, None] * vec + tremor]
    if name.startswith("circle"):
        sense = 1.0 if name == "circle_cw" else -1.0  # y down: angle up = clockwise on screen
        theta = sense * 2 * np.pi * 1.1 * np.clip((t - HOLD_BEFORE) / g.seconds, 0, 1)
        return [centre + 0.16 * h * np.stack([np.cos(theta) - 1, np.sin(theta)], 1) + tremor]
    return [centre + np.cumsum(rng.normal(0, 0.3, (len(t), 2)), 0)]


def render(g: Gesture, crops: dict[str, list[Crop]], fps: float, path: Path, rng: np.random.Generator) -> dict:
    """Write one video of ``g`` at ``fps``; returns what it shows."""
    picks = [crops[grp][rng.integers(len(crops[grp]))] for grp in g.groups]
    n = int(round((HOLD_BEFORE + g.seconds + HOLD_AFTER) * fps))
    t = np.arange(n) / fps
    tracks = paths(g, t, rng)
    images = [p.image for p in picks]
    if g.name.startswith("zoom"):
        images[1] = cv2.flip(images[1], 1)  # the other hand
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, FRAME)
    if not writer.isOpened():
        raise DataError(f"cannot write {path} (OpenCV's MJPG writer)")
    w = FRAME[0]
    opening = HOLD_BEFORE + g.seconds * 0.75  # drag and drop: the fist opens after its move
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
    return {"gesture": g.name, "fps": fps, "frames": n, "photos": [f"{p.label}/{p.user[:8]}" for p in picks]}


def run_video(path: Path, static: Path, motion: Path, threads: int, hand_search: str) -> dict:
    from rnn_jax.live import iter_predictions
    from rnn_jax.live.motion import MotionModel

    events, frames, with_hand = [], 0, 0
    model = MotionModel.load(motion, threads=threads)
    with iter_predictions(static, str(path), hands="on", motion=model, threads=threads,
                          hand_search=hand_search) as stream:
        for rec in stream:
            frames += 1
            with_hand += bool(rec.hands)
            events += [(e.label, e.frame) for e in rec.events if e.dynamic and e.kind == "started"]
    return {"started": events, "hand_rate": with_hand / max(frames, 1)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python tools/motion_videos.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--motion", type=Path, required=True, help="the motion model (.onnx)")
    p.add_argument("--static", type=Path, default=DEFAULT_STATIC, help="the static model (default: the bundled one)")
    p.add_argument("--hagrid", type=Path, default=DEFAULT_HAGRID, help="the HaGRID sample (val photos)")
    p.add_argument("--fps", type=float, action="append", help="frame rates (repeatable; default 15 and 30)")
    p.add_argument("--per-gesture", type=int, default=2, help="videos per gesture and rate (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--hand-search", default="balanced",
                   help="the finder's search budget, as rnn_jax.live --hand-search (default %(default)s)")
    p.add_argument("--out", type=Path, default=None, help="folder for results.json (and the videos with --keep-videos)")
    p.add_argument("--keep-videos", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for f in (args.motion, args.static):
        if not f.is_file():
            raise DataError(f"{f}: not found")
    if args.per_gesture < 1:
        raise DataError(f"--per-gesture must be >= 1, got {args.per_gesture}")
    rates = args.fps or [15.0, 30.0]
    crops = load_crops(args.hagrid)
    rng = np.random.default_rng(args.seed)
    out = args.out or Path(tempfile.mkdtemp(prefix="motion-videos-"))
    out.mkdir(parents=True, exist_ok=True)
    folder = out if args.keep_videos else Path(tempfile.mkdtemp(prefix="motion-videos-"))
    rows, t0 = [], time.perf_counter()
    total = len(GESTURES) * args.per_gesture * len(rates)
    for fps in rates:
        for gi, g in enumerate(GESTURES):
            for k in range(args.per_gesture):
                path = folder / f"{gi:02d}-{k}-{fps:g}fps.avi"
                row = render(g, crops, fps, path, rng) | run_video(path, args.static, args.motion, args.threads,
                                                                     args.hand_search)
                labels = [label for label, _ in row["started"]]
                row["fired"] = bool(set(labels) & set(g.expected)) if g.expected else None
                row["wrong"] = [x for x in labels if x not in g.expected]
                rows.append(row)
                if not args.keep_videos:
                    path.unlink(missing_ok=True)
                done = len(rows)
                rate = done / (time.perf_counter() - t0)
                print(f"[{done}/{total}] {g.name} @ {fps:g} fps: started {labels or '-'} "
                      f"(hand on {100 * row['hand_rate']:.0f}% of frames; {rate:.2f} videos/s, "
                      f"ETA {(total - done) / rate:.0f} s)", flush=True)
    print(table(rows, rates))
    (out / "results.json").write_text(json.dumps({"rows": rows, "args": {k: str(v) for k, v in vars(args).items()}},
                                                 indent=1))
    print(f"wrote {out / 'results.json'}")
    return 0


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
