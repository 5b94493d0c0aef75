"""``tools/live_accuracy.py --images``: class-folder photos (Sign Language Digits style) as a video.

Each photo is held for ``hold`` frames; the live loop's smoothed top class on the settled frames
is scored against the photo's folder, beside the offline accuracy of the same ONNX file on the
same photos (with hands on: on the hand crops / landmarks training makes from the padded photo).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from rnn_jax.errors import DataError

DETECTION_PAD_TEXT = "25% per side with a replicated border"


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


def run(onnx: Path, images: Path, hold: int, settle: int, smoothing: str | None, threshold: float | None,
        stable_frames: int | None, hands: str = "off", hand_models: Path | None = None) -> dict:
    """The photos as a video through the live loop; ``smoothing``, ``threshold``, ``stable_frames``:
    None = the model file's, else the live defaults (:func:`rnn_jax.live.settings.resolve_gesture`)."""
    from rnn_jax.hands.crop import DETECTION_PAD
    from rnn_jax.live import iter_predictions
    from rnn_jax.live.settings import hands_wanted, resolve_gesture
    from rnn_jax.runtime.landmark_predictor import LandmarkPredictor, load_predictor

    predictor = load_predictor(onnx)
    gesture = resolve_gesture(smoothing, threshold, stable_frames, predictor.info)
    smoothing, threshold, stable_frames = gesture.smoothing, gesture.threshold, gesture.stable_frames
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
            "landmark_model": landmark_model, "threshold": threshold, "smoothing": str(smoothing),
            "stable_frames": stable_frames}


def print_result(result: dict) -> None:
    """The human-readable report of :func:`run` (``result`` is what ``--json`` writes)."""
    hold, settle = result["hold"], result["settle"]
    print(f"{result['photos']} photos x {hold} frames = {result['frames']} frames; scored {result['frames_scored']} "
          f"(first {settle} of each photo skipped)")
    if result["hands"]:
        print(f"hands on: photos padded {DETECTION_PAD_TEXT}; {result['photos_without_hand']} photo(s) without a "
              "hand found offline left out")
    print(f"offline accuracy (same ONNX, same photos):        {result['offline_accuracy']:.4f}")
    print(f"live per-frame accuracy (smoothed top class):     {result['live_accuracy']:.4f}")
    print(f"difference (live - offline):                      {result['live_accuracy'] - result['offline_accuracy']:+.4f}")
    print(f"stable gesture shown on {result['stable_coverage']:.1%} of scored frames (threshold "
          f"{result['threshold']:.2f}, {result['stable_frames']} steady frames, smoothing {result['smoothing']}); "
          "correct when shown: "
          f"{result['stable_accuracy_when_shown']:.4f}")
    if result.get("mean_fps"):
        hands_ms = result.get("hands_p50_ms")
        print(f"speed: {result['mean_fps']:.1f} frames/s; p50 per frame: model {result['model_latency_p50_ms']:.3f} ms, "
              f"whole loop {result['loop_p50_ms']:.2f} ms" + (f", hand finding {hands_ms:.2f} ms" if hands_ms else ""))
