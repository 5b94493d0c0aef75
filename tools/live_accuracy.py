"""Does the live loop see what offline evaluation sees? A video check on labelled photos.

    python tools/live_accuracy.py --onnx student.onnx --images ../shared/data/sign-language-digits/val

Builds a video from class-folder photos (each photo held for --hold frames, MJPG .avi),
runs it through the live loop (rnn_jax.live.iter_predictions: same smoothing and threshold
as the live program), and prints the per-frame accuracy of the smoothed top class once the
smoothing has settled (the first --settle frames of each photo are skipped) next to the
offline accuracy of the same ONNX file on the same photos, plus how often the stable
gesture (threshold + steady frames) is shown and how often it is right when shown.
JAX-free: needs only onnxruntime and OpenCV.

Landmark models (from ``experiments.landmarks``) always use the hand finder: offline is the
model on each padded photo's landmarks from a zero state, live carries the state frame to frame.

HaGRID's annotated photos (``--hagrid ROOT``, default split val): each whole photo is
letterboxed into a --frame x --frame frame (what a webcam shows) and held --hold frames; the
live loop runs with hands on. Per settled frame the hand inside the annotated gesture box must
show that gesture (a frame where that hand is not found counts as wrong, and as "hand lost"),
and every hand inside a ``no_gesture`` box must show no gesture (else a false trigger). Beside
it, offline: the same ONNX file on each annotated box (landmarks from the landmark model looking
at the box, or the box's hand crop), with the same temperature and threshold.

    python tools/live_accuracy.py --onnx hagrid.onnx --hagrid ../shared/data/hagrid-sample

With ``--hands on`` the live loop finds the hand in each frame (rnn_jax.hands) and classifies
its crop. Each photo is then padded with a replicated border (as ``--crop hand`` training
does), the offline number is the same ONNX file on the crops training makes (hand found in
the padded photo, :func:`rnn_jax.hands.hand_crop`), and photos where no hand is found
offline are left out of both numbers (counted in the output).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from rnn_jax.errors import DataError, RnnJaxError  # noqa: E402


def labelled_photos(folder: Path, class_names: list[str]) -> list[tuple[Path, int]]:
    """(path, class index) for every photo in ``folder/<class>/``, classes named as in the model."""
    from rnn_jax.data.folders import is_image, natural_key

    pairs = []
    for class_dir in sorted((d for d in folder.iterdir() if d.is_dir()), key=lambda d: natural_key(d.name)):
        if class_dir.name not in class_names:
            raise DataError(f"{class_dir} is not one of the model's classes {class_names}")
        pairs += [(p, class_names.index(class_dir.name)) for p in sorted(class_dir.iterdir()) if is_image(p)]
    if not pairs:
        raise DataError(f"no class folders with images in {folder}")
    return pairs


def write_video(photos: list[tuple[Path, int]], path: Path, hold: int, size: int = 200, fps: float = 30.0,
                pad: float = 0.0) -> None:
    from rnn_jax.hands.crop import pad_for_detection

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size, size))
    for photo, _ in photos:
        image = cv2.imread(str(photo))
        image = pad_for_detection(image, pad) if pad else image
        frame = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        for _ in range(hold):
            writer.write(frame)
    writer.release()


def offline_landmarks(predictor, photos: list[tuple[Path, int]], hand_models: Path | None
                      ) -> tuple[list[tuple[Path, int]], list[str]]:
    """Landmark models: photos where a hand is found (padded as in extraction), and the label the
    model gives each from a zero state (what tools/extract_landmarks.py + training saw)."""
    from rnn_jax.hands import HandFinder, find_hands_in_image, pad_for_detection
    from rnn_jax.preprocess import read_image

    finder = HandFinder.load(hand_models, threads=None)
    kept, labels = [], []
    for path, label in photos:
        hands = find_hands_in_image(finder, pad_for_detection(read_image(path, 3)))
        if hands:
            hand = max(hands, key=lambda h: h.presence)
            probs, _ = predictor.predict(predictor.features(hand.landmarks, hand.handedness))
            kept.append((path, label))
            labels.append(predictor.class_names[int(probs[0].argmax())])
    return kept, labels


def offline_hand_crops(predictor, photos: list[tuple[Path, int]], hand_models: Path | None
                       ) -> tuple[list[tuple[Path, int]], list[str]]:
    """Photos where the hand finder sees a hand (padded as in training), and the labels of their crops."""
    from rnn_jax.hands import HandFinder, find_hands_in_image, hand_crop, pad_for_detection
    from rnn_jax.preprocess import read_image

    finder = HandFinder.load(hand_models, threads=None)
    kept, crops = [], []
    for path, label in photos:
        image = pad_for_detection(read_image(path, predictor.num_channels))
        hands = find_hands_in_image(finder, image)
        if hands:
            kept.append((path, label))
            crops.append(hand_crop(image, max(hands, key=lambda h: h.presence), predictor.input_size))
    probs = predictor.predict(np.stack(crops)) if crops else np.zeros((0, len(predictor.class_names)))
    return kept, [predictor.class_names[i] for i in probs.argmax(axis=1)]


def run(onnx: Path, images: Path, hold: int, settle: int, smoothing: str, threshold: float | None,
        stable_frames: int, hands: str = "off", hand_models: Path | None = None) -> dict:
    from rnn_jax.hands.crop import DETECTION_PAD
    from rnn_jax.live import iter_predictions
    from rnn_jax.live.loop import hands_wanted, resolve_threshold
    from rnn_jax.runtime.landmarks import LandmarkPredictor, load_predictor

    predictor = load_predictor(onnx)
    threshold = resolve_threshold(threshold, predictor.info)
    photos = labelled_photos(images, list(predictor.class_names))
    landmark_model = isinstance(predictor, LandmarkPredictor)
    use_hands = hands_wanted(hands, predictor, hand_models)
    all_photos = len(photos)
    if use_hands:
        find = offline_landmarks if landmark_model else offline_hand_crops
        photos, labels = find(predictor, photos, hand_models)
        offline = [(lbl, 1.0) for lbl in labels]
        if not photos:
            raise DataError(f"the hand finder found no hand in any photo under {images}")
    else:
        offline = predictor.classify_files([p for p, _ in photos])
    truth = np.array([label for _, label in photos])
    offline_acc = float(np.mean([predictor.class_names.index(lbl) == t for (lbl, _), t in zip(offline, truth)]))
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "photos.avi"
        write_video(photos, video, hold, pad=DETECTION_PAD if use_hands else 0.0)
        hits = counted = frames = top_hits = active = 0
        stream = iter_predictions(predictor, video, smoothing=smoothing, threshold=threshold,
                                  stable_frames=stable_frames, hands=use_hands, hand_models=hand_models)
        with stream:
            for record in stream:
                frames += 1
                photo_index, offset = divmod(record.index, hold)
                if offset < settle or photo_index >= len(photos):
                    continue
                counted += 1
                expected = predictor.class_names[truth[photo_index]]
                hits += record.label == expected
                active += record.label is not None
                top_hits += record.top_label == expected
            summary = stream.summary()
    timing = summary.to_dict()
    return {"photos": len(photos), "photos_without_hand": all_photos - len(photos), "hands": use_hands,
            "frames": frames, "frames_scored": counted, "hold": hold, "settle": settle,
            "offline_accuracy": offline_acc, "live_accuracy": top_hits / max(counted, 1),
            "stable_coverage": active / max(counted, 1), "stable_accuracy_when_shown": hits / max(active, 1),
            "mean_fps": timing.get("mean_fps"), "model_latency_p50_ms": timing.get("latency_p50_ms"),
            "loop_p50_ms": timing.get("loop_p50_ms"), "hands_p50_ms": timing.get("hands_p50_ms"),
            "landmark_model": landmark_model, "threshold": threshold}


DETECTION_PAD_TEXT = "25% per side with a replicated border"


def annotated_photos(root: Path, split: str) -> list[tuple[Path, dict]]:
    """(photo, {boxes, labels, user}) of one annotated split of a HaGRID root."""
    from rnn_jax.data.hagrid_parts import _annotated_items, find_parts

    parts = find_parts(root)
    if split not in parts.annotated:
        raise DataError(f"{root} has no annotated '{split}' split (hagrid_annotations/{split}/*.json)")
    items = _annotated_items(*parts.annotated[split])
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
    from rnn_jax.data.hagrid_parts import second_look
    from rnn_jax.hands import HandFinder, hand_crop
    from rnn_jax.preprocess import read_image
    from rnn_jax.runtime.landmarks import LandmarkPredictor

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


def run_hagrid(onnx: Path, root: Path, split: str, hold: int, settle: int, smoothing: str, threshold: float | None,
               stable_frames: int, frame_size: int, hand_models: Path | None = None) -> dict:
    """Annotated HaGRID photos through the live loop with hands on (see the module docstring)."""
    from rnn_jax.live import iter_predictions
    from rnn_jax.live.loop import resolve_threshold
    from rnn_jax.preprocess import letterbox
    from rnn_jax.runtime.landmarks import load_predictor

    predictor = load_predictor(onnx)
    threshold = resolve_threshold(threshold, predictor.info)
    items = annotated_photos(root, split)
    known = set(predictor.class_names)
    gestures = [next((lab for lab in m["labels"] if lab != "no_gesture"), None) for _, m in items]
    offline = offline_annotated(predictor, items, hand_models, threshold)
    per_class: dict[str, list[int]] = {}
    counts = {"gesture_frames": 0, "gesture_right": 0, "gesture_lost": 0, "gesture_wrong": 0,
              "resting_frames": 0, "resting_triggered": 0, "resting_lost": 0, "stray_gesture_frames": 0}
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "photos.avi"
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
        stream = iter_predictions(predictor, video, smoothing=smoothing, threshold=threshold,
                                  stable_frames=stable_frames, hands=True, hand_models=hand_models)
        with stream:
            for record in stream:
                photo, offset = divmod(record.index, hold)
                if offset < settle or photo >= len(items):
                    continue
                hands = list(record.hands or ())
                used = set()
                for box, label in zip(frame_boxes[photo], items[photo][1]["labels"], strict=True):
                    match = next((i for i, h in enumerate(hands) if i not in used and _inside(h.hand, box)), None)
                    if match is not None:
                        used.add(match)
                    shown = None if match is None else hands[match].label
                    if label == "no_gesture":
                        counts["resting_frames"] += 1
                        counts["resting_lost"] += match is None
                        counts["resting_triggered"] += shown is not None
                        continue
                    if label not in known:
                        continue
                    counts["gesture_frames"] += 1
                    right = shown == label
                    counts["gesture_right"] += right
                    counts["gesture_lost"] += match is None
                    counts["gesture_wrong"] += shown is not None and not right
                    per_class.setdefault(label, [0, 0])
                    per_class[label][0] += right
                    per_class[label][1] += 1
                counts["stray_gesture_frames"] += any(h.label is not None for i, h in enumerate(hands) if i not in used)
            summary = stream.summary()
    off_g = [(s, lab) for shown, (_, m) in zip(offline, items, strict=True) for s, lab in zip(shown, m["labels"],
                                                                                              strict=True)]
    gesture_rows = [(s, lab) for s, lab in off_g if lab != "no_gesture" and lab in known]
    resting_rows = [s for s, lab in off_g if lab == "no_gesture"]
    timing = summary.to_dict()
    n_g, n_r = max(counts["gesture_frames"], 1), max(counts["resting_frames"], 1)
    return {"photos": len(items), "people": len({m["user"] for _, m in items}), "hold": hold, "settle": settle,
            "frame": frame_size, "threshold": threshold, "temperature": getattr(predictor.info, "temperature", 1.0),
            **counts,
            "live_gesture_right": counts["gesture_right"] / n_g, "live_gesture_lost": counts["gesture_lost"] / n_g,
            "live_gesture_wrong": counts["gesture_wrong"] / n_g,
            "live_resting_triggered": counts["resting_triggered"] / n_r,
            "offline_gesture_right": float(np.mean([s == lab for s, lab in gesture_rows])) if gesture_rows else None,
            "offline_resting_triggered": float(np.mean([s is not None for s in resting_rows])) if resting_rows else None,
            "offline_gesture_hands": len(gesture_rows), "offline_resting_hands": len(resting_rows),
            "unknown_gesture_photos": sum(1 for g in gestures if g is not None and g not in known),
            "per_class_live": {k: v[0] / v[1] for k, v in sorted(per_class.items())},
            "mean_fps": timing.get("mean_fps"), "model_latency_p50_ms": timing.get("latency_p50_ms"),
            "loop_p50_ms": timing.get("loop_p50_ms"), "hands_p50_ms": timing.get("hands_p50_ms")}


def print_hagrid(result: dict) -> None:
    print(f"{result['photos']} photos of {result['people']} people, each letterboxed into {result['frame']}x"
          f"{result['frame']} and held {result['hold']} frames; first {result['settle']} of each skipped; "
          f"threshold {result['threshold']:.2f}, temperature {result['temperature']:.3g}")
    print(f"{'':38}{'live (hand finder)':>20}{'offline (annotated box)':>26}")
    print(f"{'gesture hands shown right':38}{result['live_gesture_right']:>20.1%}"
          f"{result['offline_gesture_right'] or 0:>26.1%}")
    print(f"{'gesture hands shown wrong gesture':38}{result['live_gesture_wrong']:>20.1%}")
    print(f"{'gesture hand lost (not found)':38}{result['live_gesture_lost']:>20.1%}")
    print(f"{'resting hands shown a gesture':38}{result['live_resting_triggered']:>20.1%}"
          f"{result['offline_resting_triggered'] or 0:>26.1%}")
    print(f"(frames: {result['gesture_frames']} gesture-hand, {result['resting_frames']} resting-hand; offline hands: "
          f"{result['offline_gesture_hands']} gesture, {result['offline_resting_hands']} resting; frames with a gesture "
          f"on a hand outside every box: {result['stray_gesture_frames']})")
    print("per class (live): " + ", ".join(f"{k} {v:.0%}" for k, v in result["per_class_live"].items()))
    if result.get("mean_fps"):
        print(f"speed: {result['mean_fps']:.1f} frames/s; p50 per frame: model {result['model_latency_p50_ms']:.3f} ms, "
              f"hand finding {result['hands_p50_ms'] or 0:.2f} ms, whole loop {result['loop_p50_ms']:.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/live_accuracy.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", required=True, help="exported model")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--images", help="folder of class folders with labelled photos")
    what.add_argument("--hagrid", type=Path, help="HaGRID root with annotated photos (e.g. ../shared/data/hagrid-sample)")
    parser.add_argument("--split", default="val", help="--hagrid: the annotated split (default val)")
    parser.add_argument("--frame", type=int, default=640, help="--hagrid: square frame side (default 640)")
    parser.add_argument("--hold", type=int, default=None, help="frames each photo is shown (default 15; --hagrid 12)")
    parser.add_argument("--settle", type=int, default=None,
                        help="frames skipped after each change (default 8; --hagrid 6)")
    parser.add_argument("--smoothing", default="ema:0.5", help="as in rnn_jax.live (default ema:0.5)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="as in rnn_jax.live (default: the model file's reject threshold, else 0.6)")
    parser.add_argument("--stable-frames", type=int, default=5, help="as in rnn_jax.live (default 5)")
    parser.add_argument("--hands", choices=("auto", "on", "off"), default="auto",
                        help="find the hand in each frame as rnn_jax.live --hands does (default auto: on "
                             "for hand-crop models when the hand models are built)")
    parser.add_argument("--hand-models", type=Path, default=None, help="folder of the hand models")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    hagrid = args.hagrid is not None
    args.hold = args.hold if args.hold is not None else (12 if hagrid else 15)
    args.settle = args.settle if args.settle is not None else (6 if hagrid else 8)
    if args.settle >= args.hold:
        parser.error("--settle must be smaller than --hold")
    if hagrid:
        try:
            result = run_hagrid(Path(args.onnx), args.hagrid, args.split, args.hold, args.settle, args.smoothing,
                                args.threshold, args.stable_frames, args.frame, args.hand_models)
        except RnnJaxError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print_hagrid(result)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
        return 0
    try:
        result = run(Path(args.onnx), Path(args.images), args.hold, args.settle, args.smoothing, args.threshold,
                     args.stable_frames, args.hands, args.hand_models)
    except RnnJaxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{result['photos']} photos x {args.hold} frames = {result['frames']} frames; scored {result['frames_scored']} "
          f"(first {args.settle} of each photo skipped)")
    if result["hands"]:
        print(f"hands on: photos padded {DETECTION_PAD_TEXT}; {result['photos_without_hand']} photo(s) without a "
              "hand found offline left out")
    print(f"offline accuracy (same ONNX, same photos):        {result['offline_accuracy']:.4f}")
    print(f"live per-frame accuracy (smoothed top class):     {result['live_accuracy']:.4f}")
    print(f"difference (live - offline):                      {result['live_accuracy'] - result['offline_accuracy']:+.4f}")
    print(f"stable gesture shown on {result['stable_coverage']:.1%} of scored frames (threshold "
          f"{result['threshold']:.2f}, {args.stable_frames} steady frames); correct when shown: "
          f"{result['stable_accuracy_when_shown']:.4f}")
    if result.get("mean_fps"):
        hands_ms = result.get("hands_p50_ms")
        print(f"speed: {result['mean_fps']:.1f} frames/s; p50 per frame: model {result['model_latency_p50_ms']:.3f} ms, "
              f"whole loop {result['loop_p50_ms']:.2f} ms" + (f", hand finding {hands_ms:.2f} ms" if hands_ms else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
