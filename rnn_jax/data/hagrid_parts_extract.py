"""HaGRID parts, extraction: the rule per part and the chunked, resumable, parallel landmark extraction.

Rules (see :mod:`rnn_jax.data.hagrid_parts` for the parts): tight crops are padded and searched,
with a second look at the whole crop when the palm model misses; whole photos are searched with
tiles and the **highest** hand is the gesture hand; annotated boxes get a second look each.
Every picture's rows are cached in chunks of ``CHUNK`` under a key of the rule and the files
(:func:`part_key`): an interrupted run resumes, a second run reads the cache. Changing a rule
here means bumping ``RULES_VERSION``. JAX-free (numpy, OpenCV, onnxruntime).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from rnn_jax.atomic import write_json_atomic
from rnn_jax.data.folders import is_image, natural_key
from rnn_jax.errors import DataError

RULES_VERSION = 1  # bump when a rule below changes: the cache key changes with it
CHUNK = 500  # pictures per cached chunk (resume granularity, and the unit handed to a worker process)
MAX_WORKERS = 8  # extraction processes (one per core, one onnxruntime thread each)
BOX_SQUARE = 1.5  # second look: landmark square side / annotated box's longer side


# --------------------------------------------------------------------------- rules
def second_look(finder, image_rgb: np.ndarray, box_px: tuple[float, float, float, float]):
    """The landmark model on a square around a known box: (landmarks, presence, handedness).

    Two passes: an upright square ``BOX_SQUARE`` x the box, then the square the first
    pass's landmarks give (turned along the hand), as tracking does from frame to frame.
    """
    from rnn_jax.hands.geometry import Rect, rect_from_landmarks

    x, y, w, h = box_px
    rect = Rect(x + w / 2, y + h / 2, BOX_SQUARE * max(w, h), 0.0)
    landmarks, presence, right = finder.landmarks_in(image_rgb, rect)
    landmarks2, presence2, right2 = finder.landmarks_in(image_rgb, rect_from_landmarks(landmarks))
    if presence2 >= presence:
        landmarks, presence, right = landmarks2, presence2, right2
    return landmarks, presence, "right" if right >= 0.5 else "left"


def highest_hand(hands):
    """The gesture hand of an unannotated photo: the one whose topmost landmark is highest."""
    return min(hands, key=lambda h: float(h.landmarks[:, 1].min()))


# --------------------------------------------------------------------------- extraction
def class_folder_items(folder: Path) -> list[tuple[Path, str]]:
    """(picture, class) of every image in ``folder/<class>/``, classes and files in natural order."""
    classes = sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")),
                     key=lambda d: natural_key(d.name))
    return [(p, d.name) for d in classes for p in sorted(d.iterdir(), key=lambda p: natural_key(p.name))
            if is_image(p)]


def _extract_one(finder, kind: str, path: Path, meta) -> list[dict]:
    """Rows (one per kept hand) for one picture under the part's rule."""
    from rnn_jax.hands import find_hands_in_image, pad_for_detection
    from rnn_jax.hands.crop import normalised
    from rnn_jax.hands.finder import landmark_box
    from rnn_jax.preprocess import read_image

    try:
        image = read_image(path, 3)
    except DataError:
        return [{"unreadable": True}]
    if kind == "crops":
        padded = pad_for_detection(image)
        hands = find_hands_in_image(finder, padded, tiles=False)
        if hands:
            hand = max(hands, key=lambda h: h.presence)
            lm, hd, how = hand.landmarks, hand.handedness, "finder"
        else:
            h, w = padded.shape[:2]
            pad = (w - image.shape[1]) / 2
            lm, presence, hd = second_look(finder, padded, (pad, pad, image.shape[1], image.shape[0]))
            if presence < finder.config.min_presence:
                return [{"no_hand": True}]
            how = "second_look"
        h, w = padded.shape[:2]
        return [{"lm": lm, "label": meta, "person": f"crop:{path.stem}", "hand": hd, "how": how,
                 "box": normalised(landmark_box(lm), w, h)}]
    if kind == "photos":
        hands = find_hands_in_image(finder, image)
        if not hands:
            return [{"no_hand": True}]
        hand = highest_hand(hands)
        h, w = image.shape[:2]
        return [{"lm": hand.landmarks, "label": meta, "person": f"photo:{path.stem}", "hand": hand.handedness,
                 "how": "finder", "box": normalised(hand.box, w, h), "others": len(hands) - 1}]
    h, w = image.shape[:2]
    rows = []
    for (bx, by, bw, bh), label in zip(meta["boxes"], meta["labels"], strict=True):
        lm, presence, hd = second_look(finder, image, (bx * w, by * h, bw * w, bh * h))
        rows.append({"lm": lm, "label": label, "person": meta["user"], "hand": hd, "how": "annotated_box",
                     "box": (bx, by, bw, bh), "presence": presence})
    return rows


def part_key(kind: str, items: list) -> str:
    """The cache key of one part: its rule (and the finder's settings for photos) and its files' stats."""
    from rnn_jax.hands.finder import FinderConfig

    # whole photos go through the palm search's tiles, so its settings are part of their rule
    finder = f"|{FinderConfig()!r}" if kind == "photos" else ""
    digest = hashlib.sha256(f"{kind}|{RULES_VERSION}{finder}".encode())
    for path, meta in items:
        stat = path.stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{meta if kind != 'annotated' else ''}".encode())
    return digest.hexdigest()[:16]


def _progress(done: int, total: int, start: float, what: str, resumed: int) -> None:
    elapsed = time.perf_counter() - start
    rate = (done - resumed) / max(elapsed, 1e-9)
    speed = "from the cache" if done == resumed else f"{rate:.1f}/s  ETA {(total - done) / max(rate, 1e-9):.0f} s"
    print(f"\r  {what}: {done}/{total} pictures  {speed} ", end="", file=sys.stderr, flush=True)


def _chunk_rows(finder, kind: str, chunk: list, path: Path) -> list[dict]:
    """Extract one chunk and write it atomically (a killed run leaves no half chunk)."""
    part = []
    for item_path, meta in chunk:
        for row in _extract_one(finder, kind, item_path, meta):
            row["source"] = str(item_path)
            if "lm" in row:
                row["lm"] = np.asarray(row["lm"], np.float32).round(3).tolist()
            part.append(row)
    write_json_atomic(path, part)
    return part


_WORKER_FINDER = None


def _worker_chunk(kind: str, chunk: list, path: Path, hand_models: str | None) -> list[dict]:
    """A worker process: its own hand finder (one onnxruntime thread), loaded once."""
    global _WORKER_FINDER
    if _WORKER_FINDER is None:
        from rnn_jax.hands import HandFinder

        _WORKER_FINDER = HandFinder.load(hand_models, threads=1)
    return _chunk_rows(_WORKER_FINDER, kind, chunk, path)


def extract_part(kind: str, items: list, finder, cache: Path, progress: bool = True, workers: int = 1,
                 hand_models: str | None = None) -> tuple[list[dict], dict]:
    """Rows of every kept hand of a part, cached in chunks under ``cache`` (resumable).

    ``workers`` > 1 extracts chunks in that many processes, each with its own hand finder
    (``finder`` is then unused); the rows are the same, in the same order."""
    cache.mkdir(parents=True, exist_ok=True)
    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    paths = [cache / f"chunk_{k:04d}.json" for k in range(len(chunks))]
    parts: dict[int, list[dict]] = {k: json.loads(p.read_text()) for k, p in enumerate(paths) if p.is_file()}
    resumed = sum(len(chunks[k]) for k in parts)
    todo = [k for k in range(len(chunks)) if k not in parts]
    start, done = time.perf_counter(), resumed
    if progress:
        _progress(done, len(items), start, kind, resumed)
    if workers > 1 and len(todo) > 1:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from multiprocessing import get_context

        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_worker_chunk, kind, chunks[k], paths[k], hand_models): k for k in todo}
            for future in as_completed(futures):
                k = futures[future]
                parts[k] = future.result()
                done += len(chunks[k])
                if progress:
                    _progress(done, len(items), start, kind, resumed)
    else:
        for k in todo:
            parts[k] = _chunk_rows(finder, kind, chunks[k], paths[k])
            done += len(chunks[k])
            if progress:
                _progress(done, len(items), start, kind, resumed)
    if progress and chunks:
        print(file=sys.stderr)
    rows = [row for k in range(len(chunks)) for row in parts[k]]
    kept = [r for r in rows if "lm" in r]
    counts = {"pictures": len(items), "hands_kept": len(kept),
              "no_hand": sum(1 for r in rows if r.get("no_hand")),
              "unreadable": sum(1 for r in rows if r.get("unreadable"))}
    for how in ("finder", "second_look", "annotated_box"):
        n = sum(1 for r in kept if r["how"] == how)
        if n:
            counts[f"by_{how}"] = n
    if kind == "photos":
        counts["photos_with_other_hands"] = sum(1 for r in kept if r.get("others"))
    return kept, counts
