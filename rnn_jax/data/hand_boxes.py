"""Hand boxes for photos that have none (plain class folders): found once with rnn_jax.hands.

``--crop hand`` on class folders runs the palm + landmark models over every photo (padded
with a replicated border, see :func:`rnn_jax.hands.pad_for_detection`) and keeps the box of
the most confident hand. Boxes are stored beside the decoded cache
(``<cache>/hand-boxes/<name>-<hash>.json``, keyed by each file's size and mtime, the model
files and the padding), so the detector runs once per photo; photos without a hand are
left out of training and counted. The crops themselves go through the same rule as the
live loop (:func:`rnn_jax.hands.hand_crop` on the padded photo).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnn_jax.atomic import write_json_atomic
from rnn_jax.data.cache import ImageItem, default_cache_dir
from rnn_jax.errors import DataError
from rnn_jax.hands.crop import DETECTION_PAD, Box, hand_crop, pad_for_detection
from rnn_jax.preprocess import read_image

BOXES_VERSION = 1


def _models_fingerprint(model_dir: str | Path | None) -> str:
    from rnn_jax.hands.models import model_paths

    h = hashlib.sha256()
    for path in model_paths(model_dir):
        st = path.stat()
        h.update(f"{path.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _file_key(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}|{st.st_mtime_ns}"


def find_boxes(name: str, paths: Sequence[Path], *, pad: float = DETECTION_PAD,
               cache_dir: str | Path | None = None, model_dir: str | Path | None = None,
               progress: bool = True) -> tuple[list[Box | None], dict]:
    """A normalised box (of the padded photo) per path, or None where no hand was found.

    Returns (boxes, note); the note says how many photos had no hand and where the boxes live.
    Raises :class:`rnn_jax.hands.HandModelsMissing` (one line naming the build command) when
    the hand models are not built.
    """
    from rnn_jax.hands.finder import HandFinder, find_hands_in_image

    finder = HandFinder.load(model_dir, threads=None)  # all cores: this is a batch job
    root = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / "hand-boxes"
    ident = json.dumps({"v": BOXES_VERSION, "name": name, "pad": pad, "models": _models_fingerprint(model_dir),
                        "finder": finder.config.__dict__}, sort_keys=True)
    store = root / f"{name}-{hashlib.sha256(ident.encode()).hexdigest()[:12]}.json"
    try:
        known = json.loads(store.read_text())["boxes"]
    except (OSError, ValueError, KeyError, TypeError):
        known = {}
    boxes: list[Box | None] = []
    fresh = 0
    start = time.perf_counter()
    from tqdm.auto import tqdm

    for path in tqdm(paths, desc=f"finding hands {name}", unit="img", disable=not progress, dynamic_ncols=True):
        key = str(path)
        try:
            stamp = _file_key(path)
        except OSError:
            boxes.append(None)  # the decoder reports missing files itself
            continue
        entry = known.get(key)
        if entry is None or entry.get("stamp") != stamp:
            try:
                image = pad_for_detection(read_image(path, 3), pad)
            except DataError:
                boxes.append(None)
                continue
            hands = find_hands_in_image(finder, image)
            best = max(hands, key=lambda h: h.presence) if hands else None
            entry = {"stamp": stamp, "box": list(best.normalised_box()) if best else None,
                     "presence": round(best.presence, 4) if best else None}
            known[key] = entry
            fresh += 1
        boxes.append(tuple(entry["box"]) if entry["box"] is not None else None)  # type: ignore[arg-type]
    if fresh:
        root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(store, {"ident": json.loads(ident), "boxes": known})
    missing = [str(p) for p, b in zip(paths, boxes) if b is None]
    note = {"found": len(paths) - len(missing), "no_hand": len(missing), "examples_no_hand": missing[:5],
            "detected_now": fresh, "seconds": round(time.perf_counter() - start, 2), "pad": pad,
            "store": str(store)}
    return boxes, note


def decode_padded_hand(item: ImageItem, size: int, crop_mode: str, channels: int) -> np.ndarray:
    """Cache decoder: pad the photo as the detector saw it, then the one hand-crop rule."""
    if item.box is None:
        raise DataError(f"no hand box for {item.path}")
    image = read_image(item.path, 3)
    crop = hand_crop(pad_for_detection(image, DETECTION_PAD), item.box, size, item.box_scale)
    if channels == 1:
        import cv2

        return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[..., None]
    return crop
