"""Extract hand landmarks into rnn-jax's landmark format (.npz), JAX-free.

    python tools/extract_landmarks.py --photos ../shared/data/sign-language-digits/train --out landmarks/sld/train.npz
    python tools/extract_landmarks.py --photos ../shared/data/sign-language-digits/val --out landmarks/sld/val.npz
    python tools/extract_landmarks.py --video clip.avi --label wave --person me --out landmarks/wave.npz
    python tools/extract_landmarks.py --hagrid ~/hagrid-sample-30k-384p --out landmarks/hagrid   # no image read

--photos: class folders (<class>/*.jpg); each photo is padded with a replicated border before
the hand finder runs (the rule --crop hand training uses: rnn_jax.hands.pad_for_detection),
and the most confident hand is kept. Photos without a hand are left out and counted.
Person ids: --person-from block:N (photos numbered in blocks of N per person, as in Sign
Language Digits), stem (one person per file), or a fixed --person.
--video: every frame through the tracking hand finder; frames without a hand are counted
(a video where no hand is ever found is an error). --hagrid: HaGRID annotations' landmarks
to train.npz/val.npz(/test.npz) in --out (a folder).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402

from rnn_jax.errors import ConfigError, DataError, main_guard  # noqa: E402


def _progress(done: int, total: int, found: int, start: float, what: str) -> None:
    rate = done / max(time.perf_counter() - start, 1e-9)
    print(f"\r  {what}: {done}/{total}  hands found {found}  ({rate:.0f}/s)", end="", file=sys.stderr, flush=True)


def person_of(path: Path, rule: str, fixed: str | None) -> str:
    """The person id of a photo by ``rule`` (see --person-from)."""
    if fixed:
        return fixed
    if rule == "stem":
        return path.stem
    match = re.fullmatch(r"block:(\d+)", rule)
    if not match:
        raise ConfigError(f"--person-from must be 'stem' or 'block:N', got {rule!r}")
    numbers = re.findall(r"\d+", path.stem)
    if not numbers:
        raise DataError(f"{path}: no number in the file name for --person-from {rule}")
    return f"person-{int(numbers[-1]) // int(match.group(1))}"


def extract_photos(folder: Path, finder, person_rule: str = "block:10", person: str | None = None,
                   progress: bool = True):
    """Class folders -> LandmarkSet (one hand per photo) and counts."""
    from rnn_jax.data.folders import is_image, natural_key
    from rnn_jax.data.landmark_files import LandmarkSet
    from rnn_jax.hands import find_hands_in_image, pad_for_detection
    from rnn_jax.hands.features import handedness_code
    from rnn_jax.preprocess import read_image

    if not folder.is_dir():
        raise DataError(f"--photos {folder} is not a folder")
    classes = sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")),
                     key=lambda d: natural_key(d.name))
    items = [(p, i) for i, d in enumerate(classes) for p in sorted(d.iterdir(), key=lambda p: natural_key(p.name))
             if is_image(p)]
    if not items:
        raise DataError(f"--photos {folder} has no <class>/<image> files")
    rows: dict[str, list] = {"lm": [], "label": [], "person": [], "hand": [], "source": []}
    missed, unreadable, start = [], [], time.perf_counter()
    for n, (path, label) in enumerate(items, 1):
        try:
            image = pad_for_detection(read_image(path, 3))
        except DataError:
            unreadable.append(str(path))
            continue
        hands = find_hands_in_image(finder, image)
        if hands:
            hand = max(hands, key=lambda h: h.presence)
            rows["lm"].append(hand.landmarks)
            rows["label"].append(label)
            rows["person"].append(person_of(path, person_rule, person))
            rows["hand"].append(handedness_code(hand.handedness))
            rows["source"].append(str(path.relative_to(folder)))
        else:
            missed.append(str(path.relative_to(folder)))
        if progress and (n % 25 == 0 or n == len(items)):
            _progress(n, len(items), len(rows["label"]), start, folder.name)
    if progress:
        print(file=sys.stderr)
    if not rows["label"]:
        raise DataError(f"--photos {folder}: no hand found in any of the {len(items)} photos")
    k = len(rows["label"])
    counts = {"photos": len(items), "with_hand": k, "no_hand": len(missed), "unreadable": len(unreadable),
              "no_hand_examples": missed[:5], "seconds": round(time.perf_counter() - start, 1)}
    data = LandmarkSet(np.asarray(rows["lm"], np.float32), np.asarray(rows["label"], np.int32),
                       tuple(d.name for d in classes), np.asarray(rows["person"]), np.asarray(rows["hand"], np.int8),
                       np.full(k, -1, np.int32), np.asarray(rows["source"]), "pixels",
                       {"extracted_from": str(folder), "padding": "pad_for_detection", **counts})
    return data, counts


def extract_video(path: Path, finder, label: str, person: str, progress: bool = True):
    """One video -> LandmarkSet of the frames where a hand was found (frame_index kept)."""
    import cv2

    from rnn_jax.data.landmark_files import LandmarkSet
    from rnn_jax.hands.features import handedness_code

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(f"--video {path}: cannot be opened as a video")
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 0
    rows: dict[str, list] = {"lm": [], "hand": [], "frame": []}
    index, start = 0, time.perf_counter()
    finder.reset()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        hands = finder.find(frame, "bgr")
        if hands:
            hand = max(hands, key=lambda h: h.presence)
            rows["lm"].append(hand.landmarks)
            rows["hand"].append(handedness_code(hand.handedness))
            rows["frame"].append(index)
        index += 1
        if progress and index % 25 == 0:
            _progress(index, max(total, index), len(rows["frame"]), start, path.name)
    cap.release()
    if progress:
        print(file=sys.stderr)
    if index == 0:
        raise DataError(f"--video {path}: no frame could be read")
    if not rows["frame"]:
        raise DataError(f"--video {path}: no hand was found in any of its {index} frames")
    k = len(rows["frame"])
    counts = {"frames": index, "with_hand": k, "no_hand": index - k, "seconds": round(time.perf_counter() - start, 1)}
    data = LandmarkSet(np.asarray(rows["lm"], np.float32), np.zeros(k, np.int32), (label,),
                       np.full(k, person), np.asarray(rows["hand"], np.int8), np.asarray(rows["frame"], np.int32),
                       np.full(k, path.name), "pixels", {"extracted_from": str(path), **counts})
    return data, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/extract_landmarks.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--photos", type=Path, help="class folders of photos")
    src.add_argument("--video", type=Path, help="one video file (all frames get --label)")
    src.add_argument("--hagrid", type=Path, help="HaGRID root: every hand of every layout (annotated landmarks where given, else the hand finder)")
    parser.add_argument("--out", type=Path, required=True,
                        help=".npz file to write (--hagrid: a folder for train/val/test.npz)")
    parser.add_argument("--label", default=None, help="--video: the class of every frame")
    parser.add_argument("--person", default=None, help="person id of every example (default: --person-from)")
    parser.add_argument("--person-from", default="block:10",
                        help="--photos: person ids from file numbers in blocks of N ('block:N', default block:10: "
                             "Sign Language Digits) or one person per file ('stem')")
    parser.add_argument("--hand-models", default=None, help="hand model folder (default $RNN_JAX_HANDS or "
                                                            "~/.cache/rnn-jax/hands)")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    args = parser.parse_args(argv)
    from rnn_jax.data.hagrid.prepare import hagrid_landmark_sets
    from rnn_jax.data.landmark_files import save_landmarks

    if args.hagrid is not None:
        for split, data in hagrid_landmark_sets(args.hagrid, progress=not args.no_progress).items():
            path = save_landmarks(data, args.out / f"{split}.npz")
            print(f"{path}: {len(data)} hands, {len(np.unique(data.person_ids))} people, "
                  f"{len(data.class_names)} classes")
        return 0
    if args.video is not None and not args.label:
        raise ConfigError("--video needs --label (the class of its frames)")
    from rnn_jax.hands import HandFinder

    finder = HandFinder.load(args.hand_models)
    if args.photos is not None:
        data, counts = extract_photos(args.photos, finder, args.person_from, args.person, not args.no_progress)
        what = f"{counts['photos']} photos: hand found in {counts['with_hand']}, no hand in {counts['no_hand']}"
    else:
        data, counts = extract_video(args.video, finder, args.label, args.person or args.video.stem,
                                     not args.no_progress)
        what = f"{counts['frames']} frames: hand found in {counts['with_hand']}, no hand in {counts['no_hand']}"
    if counts.get("unreadable"):
        what += f", unreadable {counts['unreadable']}"
    path = save_landmarks(data, args.out)
    print(f"{path}: {what} ({counts['seconds']} s); {len(np.unique(data.person_ids))} people, "
          f"{len(data.class_names)} classes")
    return 0


if __name__ == "__main__":
    main_guard(main)
