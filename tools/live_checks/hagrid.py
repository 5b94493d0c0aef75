"""``tools/live_accuracy.py --hagrid ROOT``: HaGRID's annotated photos, letterboxed, through the live loop.

Hands on. Per settled frame the hand inside the annotated gesture box must show that gesture
(a frame where that hand is not found counts as wrong, and as "hand lost"), and every hand
inside a ``no_gesture`` box must show no gesture (else a false trigger). A resting hand the
finder does not find cannot trigger: it is counted apart ("resting hand lost"), and the
false-trigger rate is over the resting hands that were found. Beside it, offline: the same
ONNX file on each annotated box, with the same temperature and threshold.

With ``halves`` every count is also kept per half of the split's people
(:func:`tools.live_checks.halves.person_half`), for choices made on one half and reported on the other.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from rnn_jax.errors import DataError
from rnn_jax.hands import HandFinder
from tools.live_checks.halves import person_half


def annotated_photos(root: Path, split: str) -> list[tuple[Path, dict]]:
    """(photo, {boxes, labels, user}) of one annotated split of a HaGRID root."""
    from rnn_jax.data.hagrid.prepare import annotated_photos as read_annotated

    items = read_annotated(root, split)
    if not items:
        raise DataError(f"the '{split}' annotations under {root} match no photo on disk")
    return items


def letterboxed_boxes(shape: tuple[int, ...], frame: int, boxes) -> list[tuple[float, float, float, float]]:
    """Annotated normalised boxes -> pixel boxes (x0, y0, x1, y1) in the letterboxed frame."""
    h, w = shape[:2]
    scale = frame / max(h, w)
    ox, oy = (frame - round(w * scale)) // 2, (frame - round(h * scale)) // 2
    return [(bx * w * scale + ox, by * h * scale + oy, (bx + bw) * w * scale + ox, (by + bh) * h * scale + oy)
            for bx, by, bw, bh in boxes]


def _inside(hand, box, margin: float = 0.2) -> bool:
    x0, y0, x1, y1 = box
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    cx, cy = hand.landmarks[:, 0].mean(), hand.landmarks[:, 1].mean()
    return x0 - mx <= cx <= x1 + mx and y0 - my <= cy <= y1 + my


def offline_annotated(predictor, items, hand_models: Path | None, threshold: float) -> list[list[str | None]]:
    """Per photo, per annotated box: the gesture the model shows (None = no gesture) on the box."""
    from rnn_jax.calibration import shown_gestures
    from rnn_jax.data.hagrid.extract import second_look
    from rnn_jax.hands import hand_crop
    from rnn_jax.preprocess import read_image
    from rnn_jax.runtime.landmark_predictor import LandmarkPredictor

    finder = HandFinder.load(hand_models, threads=None)
    names = list(predictor.class_names)
    reject = names.index("no_gesture") if "no_gesture" in names else None
    out = []
    for path, meta in items:
        image = read_image(path, 3)
        h, w = image.shape[:2]
        shown = []
        for box in meta["boxes"]:
            if isinstance(predictor, LandmarkPredictor):
                landmarks, _, handedness = second_look(finder, image, (box[0] * w, box[1] * h, box[2] * w, box[3] * h))
                probs, _ = predictor.predict(predictor.features(landmarks, handedness))
            else:
                probs = predictor.predict(hand_crop(image, tuple(box), predictor.input_size)[None])
            k = int(shown_gestures(probs, threshold, reject)[0])
            shown.append(None if k < 0 else names[k])
        out.append(shown)
    return out


class ReplayFinder(HandFinder):
    """A hand finder whose first pass over a video records the hands of every frame; later
    passes (after :meth:`replay`) play them back, so a threshold sweep pays for hand finding
    once. The classifier and the smoothing run for real on every pass."""

    def __init__(self, finder: HandFinder) -> None:
        super().__init__(finder.palm_session, finder.landmark_session, finder.config, finder.face_session)
        self.frames: list[list] = []
        self.position: int | None = None  # None: recording

    def find(self, frame, colour: str = "bgr", tiles: str = "turn"):
        if self.position is None:
            hands = super().find(frame, colour, tiles)
            self.frames.append(hands)
            return hands
        hands = self.frames[self.position]
        self.position += 1
        return hands

    def replay(self) -> None:
        self.position = 0


def _photo_video(items, frame_size: int, hold: int, video: Path) -> list[list[tuple[float, float, float, float]]]:
    """Write the photos, letterboxed and each held ``hold`` frames, as an MJPG video; their boxes in it."""
    from rnn_jax.preprocess import letterbox

    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (frame_size, frame_size))
    frame_boxes = []
    for path, meta in items:
        image = cv2.imread(str(path))
        if image is None:
            raise DataError(f"{path} cannot be read as an image")
        frame_boxes.append(letterboxed_boxes(image.shape, frame_size, meta["boxes"]))
        frame = letterbox(image, frame_size)
        for _ in range(hold):
            writer.write(frame)
    writer.release()
    return frame_boxes


def _zero_counts() -> dict:
    return {"gesture_frames": 0, "gesture_right": 0, "gesture_lost": 0, "gesture_wrong": 0,
            "resting_frames": 0, "resting_triggered": 0, "resting_lost": 0, "stray_gesture_frames": 0}


def on_screen(stream, source=None, frames: int | None = None):
    """(file position, the record on screen) for every frame of the file. Without ``source`` every
    frame has its record; with a :class:`~rnn_jax.live.sources.PacedSource` that drops frames (a camera
    whose loop fell behind), a frame the loop never saw shows the last record until the next, and the
    frames up to ``frames`` at the end that the loop never reached show the last one."""
    last, position = None, -1
    for record in stream:
        now = record.index if source is None else source.index
        for skipped in range(position + 1, now):
            yield skipped, last
        last, position = record, now
        yield now, record
    if last is not None and frames is not None:
        for skipped in range(position + 1, frames):
            yield skipped, last


def _score(shown, items, frame_boxes, hold: int, settle: int, known: set[str],
           groups: list[str] | None = None) -> tuple[dict, dict, dict]:
    """Per settled frame (``shown``: (file position, record on screen) pairs, :func:`on_screen`): is the
    gesture box's hand shown right, wrong, lost; does a resting hand trigger (or is it lost). Returns
    (counts, per-class [right, frames], counts per group of ``groups`` (one group name per photo; empty
    without))."""
    per_class: dict[str, list[int]] = {}
    counts = _zero_counts()
    by_group = {g: _zero_counts() for g in sorted(set(groups or ()))}
    for index, record in shown:
        photo, offset = divmod(index, hold)
        if offset < settle or photo >= len(items):
            continue
        targets = [counts] + ([by_group[groups[photo]]] if groups else [])
        hands = list(record.hands or ())
        used = set()
        for box, label in zip(frame_boxes[photo], items[photo][1]["labels"], strict=True):
            match = next((i for i, h in enumerate(hands) if i not in used and _inside(h.hand, box)), None)
            if match is not None:
                used.add(match)
            shown = None if match is None else hands[match].label
            if label == "no_gesture":
                for c in targets:
                    c["resting_frames"] += 1
                    c["resting_lost"] += match is None
                    c["resting_triggered"] += shown is not None
                continue
            if label not in known:
                continue
            right = shown == label
            for c in targets:
                c["gesture_frames"] += 1
                c["gesture_right"] += right
                c["gesture_lost"] += match is None
                c["gesture_wrong"] += shown is not None and not right
            per_class.setdefault(label, [0, 0])
            per_class[label][0] += right
            per_class[label][1] += 1
        stray = any(h.label is not None for i, h in enumerate(hands) if i not in used)
        for c in targets:
            c["stray_gesture_frames"] += stray
    return counts, per_class, by_group


def _rates(counts: dict) -> dict:
    """Shares of gesture-hand frames; resting hands: triggered among those found, lost among all."""
    n_g, n_r = max(counts["gesture_frames"], 1), counts["resting_frames"]
    found = n_r - counts["resting_lost"]
    return {"live_gesture_right": counts["gesture_right"] / n_g, "live_gesture_lost": counts["gesture_lost"] / n_g,
            "live_gesture_wrong": counts["gesture_wrong"] / n_g,
            # None: no resting hand was found, so no false-trigger rate (and nothing to choose a threshold on)
            "live_resting_triggered": counts["resting_triggered"] / found if found else None,
            "live_resting_lost": counts["resting_lost"] / n_r if n_r else None}


def run_hagrid(onnx: Path, root: Path, split: str, hold: int, settle: int, smoothing: str | None,
               threshold: float | None, stable_frames: int | None, frame_size: int, hand_models: Path | None = None,
               sweep: tuple[float, ...] = (), halves: bool = False, finder: ReplayFinder | None = None,
               hand_search: str | None = None, pace: float | None = None, finder_waits: bool = False) -> dict:
    """Annotated HaGRID photos through the live loop with hands on (see the module docstring).

    ``sweep``: thresholds to replay the same frames at (hands found once, then played back):
    the result's ``sweep`` row per threshold gives right / wrong / lost / resting triggered.
    ``halves``: the same figures per half of the people (``by_half``, and in each sweep row).
    ``finder``: a :class:`ReplayFinder` that already saw these frames (another model on the same
    photos, same ``frame_size`` and ``hold``) plays its hands back instead of finding them again.
    ``smoothing``, ``threshold``, ``stable_frames``: None = the model file's, else the live defaults
    (:func:`rnn_jax.live.settings.resolve_gesture`, as rnn_jax.live); ``hand_search``: the finder's
    search mode (``--hand-search``; None = rnn_jax.live's default). ``pace``: the video is handed over
    at this many frames/s, as a camera's: frames that come while the loop is busy are lost, and the
    screen shows the last result until the next (the finder runs as live: a frame never waits for a
    search beside the loop; the figures depend on the machine and its load); None = as fast as the
    loop goes, each frame waiting for its search (the same figures every run). ``finder_waits``: with
    ``pace``, frames wait for their searches all the same (to compare)."""
    from rnn_jax.live import iter_predictions
    from rnn_jax.live.settings import DEFAULT_HAND_SEARCH, make_finder, resolve_gesture
    from rnn_jax.live.sources import PacedSource, open_source
    from rnn_jax.runtime.landmark_predictor import load_predictor

    predictor = load_predictor(onnx)
    gesture = resolve_gesture(smoothing, threshold, stable_frames, predictor.info)
    smoothing, threshold, stable_frames = gesture.smoothing, gesture.threshold, gesture.stable_frames
    items = annotated_photos(root, split)
    known = set(predictor.class_names)
    gestures = [next((lab for lab in m["labels"] if lab != "no_gesture"), None) for _, m in items]
    groups = [person_half(m["user"]) for _, m in items] if halves else None
    offline = offline_annotated(predictor, items, hand_models, threshold)
    if finder is None:
        finder = ReplayFinder(make_finder(True, predictor, hand_models, hand_search=hand_search or DEFAULT_HAND_SEARCH,
                                          live=pace is not None and not finder_waits))
    elif finder.frames:
        finder.replay()
    sweep_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "photos.avi"
        frame_boxes = _photo_video(items, frame_size, hold, video)
        source = open_source(video) if pace is None else PacedSource(open_source(video), pace, drop=True)
        with source, iter_predictions(predictor, source, smoothing=smoothing, threshold=threshold,
                                      stable_frames=stable_frames, hands=finder) as stream:
            shown = on_screen(stream, source if pace is not None else None, len(items) * hold)
            counts, per_class, by_group = _score(shown, items, frame_boxes, hold, settle, known, groups)
            summary = stream.summary()
        dropped = getattr(source, "dropped", 0)
        for candidate in sweep:
            finder.replay()
            with iter_predictions(predictor, video, smoothing=smoothing, threshold=candidate,
                                  stable_frames=stable_frames, hands=finder) as stream:
                swept, _, swept_groups = _score(on_screen(stream), items, frame_boxes, hold, settle, known, groups)
            sweep_rows.append({"threshold": candidate, **_rates(swept),
                               **({"by_half": {g: _rates(c) for g, c in swept_groups.items()}} if halves else {})})
    off_g = [(s, lab) for shown, (_, m) in zip(offline, items, strict=True) for s, lab in zip(shown, m["labels"],
                                                                                              strict=True)]
    gesture_rows = [(s, lab) for s, lab in off_g if lab != "no_gesture" and lab in known]
    resting_rows = [s for s, lab in off_g if lab == "no_gesture"]
    timing = summary.to_dict()
    return {"photos": len(items), "people": len({m["user"] for _, m in items}), "hold": hold, "settle": settle,
            "frame": frame_size, "threshold": threshold, "temperature": getattr(predictor.info, "temperature", 1.0),
            "smoothing": str(smoothing), "stable_frames": stable_frames,
            **counts, **_rates(counts),
            "offline_gesture_right": float(np.mean([s == lab for s, lab in gesture_rows])) if gesture_rows else None,
            "offline_resting_triggered": float(np.mean([s is not None for s in resting_rows])) if resting_rows else None,
            "offline_gesture_hands": len(gesture_rows), "offline_resting_hands": len(resting_rows),
            "unknown_gesture_photos": sum(1 for g in gestures if g is not None and g not in known),
            "per_class_live": {k: v[0] / v[1] for k, v in sorted(per_class.items())},
            "pace": pace, "frames_dropped": dropped, "mean_fps": timing.get("mean_fps"), "model_latency_p50_ms": timing.get("latency_p50_ms"),
            "loop_p50_ms": timing.get("loop_p50_ms"), "hands_p50_ms": timing.get("hands_p50_ms"),
            "sweep": sweep_rows,
            **({"by_half": {g: {**c, **_rates(c), "people": len({m["user"] for (_, m), h in zip(items, groups)
                                                                 if h == g})}
                            for g, c in by_group.items()}} if halves else {})}


def store_threshold(onnx: Path, threshold: float, smoothing: str, stable_frames: int) -> None:
    """Write ``threshold`` into the model file's ``reject_threshold`` together with the smoothing and
    stable frames it was chosen under (what rnn_jax.live uses by default: one is never used without
    the others unless the user says so).

    Edits the file's metadata directly (:mod:`.onnx_props`): the base install has no ``onnx``."""
    import json

    from rnn_jax.live.smoothing import SmoothingConfig
    from rnn_jax.runtime.metadata import LIVE_KEYS, PREFIX
    from tools.live_checks.onnx_props import set_props

    values = (round(float(threshold), 4), str(SmoothingConfig.parse(str(smoothing))), int(stable_frames))
    set_props(onnx, {PREFIX + key: json.dumps(value) for key, value in zip(LIVE_KEYS, values, strict=True)},
              addable=tuple(PREFIX + key for key in LIVE_KEYS[1:]))  # files exported before these keys existed


def cross_fitted(sweep_rows: list[dict], max_false_trigger: float) -> dict:
    """Per half: the live threshold chosen on the *other* half's sweep rows (smallest within
    ``max_false_trigger``) and this half's figures at it. None where no threshold keeps the rate."""
    from rnn_jax.calibration import smallest_threshold_within
    from tools.live_checks.halves import HALVES, other

    out = {}
    for half in HALVES:
        rates = {row["threshold"]: row["by_half"][other(half)]["live_resting_triggered"] for row in sweep_rows
                 if other(half) in row["by_half"] and row["by_half"][other(half)]["live_resting_triggered"] is not None}
        chosen = smallest_threshold_within(rates, max_false_trigger) if rates else None
        row = next((r for r in sweep_rows if r["threshold"] == chosen), None)
        out[half] = {"chosen_on": other(half), "threshold": chosen,
                     "why_none": None if chosen is not None else ("no resting hand found there" if not rates
                                                                  else "no threshold keeps the target there"),
                     **(row["by_half"].get(half, {}) if row is not None else {})}
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def print_hagrid(result: dict) -> None:
    print(f"{result['photos']} photos of {result['people']} people, each letterboxed into {result['frame']}x"
          f"{result['frame']} and held {result['hold']} frames; first {result['settle']} of each skipped; "
          f"threshold {result['threshold']:.2f}, temperature {result['temperature']:.3g}, smoothing "
          f"{result['smoothing']}, {result['stable_frames']} stable frames")
    print(f"{'':38}{'live (hand finder)':>20}{'offline (annotated box)':>26}")
    print(f"{'gesture hands shown right':38}{result['live_gesture_right']:>20.1%}"
          f"{result['offline_gesture_right'] or 0:>26.1%}")
    print(f"{'gesture hands shown wrong gesture':38}{result['live_gesture_wrong']:>20.1%}")
    print(f"{'gesture hand lost (not found)':38}{result['live_gesture_lost']:>20.1%}")
    print(f"{'resting hands (found) shown a gesture':38}{_pct(result['live_resting_triggered']):>20}"
          f"{result['offline_resting_triggered'] or 0:>26.1%}")
    print(f"{'resting hand lost (not found)':38}{_pct(result['live_resting_lost']):>20}")
    print(f"(frames: {result['gesture_frames']} gesture-hand, {result['resting_frames']} resting-hand; offline hands: "
          f"{result['offline_gesture_hands']} gesture, {result['offline_resting_hands']} resting; frames with a gesture "
          f"on a hand outside every box: {result['stray_gesture_frames']})")
    print("per class (live): " + ", ".join(f"{k} {v:.0%}" for k, v in result["per_class_live"].items()))
    if result.get("pace"):
        print(f"paced at {result['pace']:g} frames/s as a camera: {result['frames_dropped']} frames came while the loop "
              "was busy and were never seen (the screen showed the last result)")
    if result.get("sweep"):
        print(f"\nthe same frames replayed (hands found once) at each threshold:\n{'threshold':>10}{'right':>9}"
              f"{'wrong':>9}{'lost':>9}{'resting (found) shown a gesture':>34}")
        for row in result["sweep"]:
            print(f"{row['threshold']:>10.2f}{row['live_gesture_right']:>9.1%}{row['live_gesture_wrong']:>9.1%}"
                  f"{row['live_gesture_lost']:>9.1%}{_pct(row['live_resting_triggered']):>34}")
    if result.get("by_half"):
        print(f"\nper half of the people (fixed rule: tools/live_checks/halves.py), at threshold {result['threshold']:.2f}:")
        for half, c in result["by_half"].items():
            print(f"  {half}: {c['people']} people, right {c['live_gesture_right']:.1%}, wrong {c['live_gesture_wrong']:.1%}, "
                  f"lost {c['live_gesture_lost']:.1%}; resting (found) shown a gesture {_pct(c['live_resting_triggered'])}, "
                  f"resting lost {_pct(c['live_resting_lost'])} ({c['gesture_frames']} gesture / {c['resting_frames']} "
                  "resting frames)")
    for half, c in (result.get("cross_fitted") or {}).items():
        if c["threshold"] is None:
            print(f"  cross-fitted {half}: no threshold chosen on half {c['chosen_on']} ({c['why_none']})")
            continue
        print(f"  cross-fitted {half}: threshold {c['threshold']:.2f} chosen on half {c['chosen_on']} -> on {half}: right "
              f"{c['live_gesture_right']:.1%}, wrong {c['live_gesture_wrong']:.1%}, lost {c['live_gesture_lost']:.1%}; "
              f"resting (found) shown a gesture {_pct(c['live_resting_triggered'])}, resting lost {_pct(c['live_resting_lost'])}")
    if result.get("mean_fps"):
        print(f"speed: {result['mean_fps']:.1f} frames/s; p50 per frame: model {result['model_latency_p50_ms']:.3f} ms, "
              f"hand finding {result['hands_p50_ms'] or 0:.2f} ms, whole loop {result['loop_p50_ms']:.2f} ms")
