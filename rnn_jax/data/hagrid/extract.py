"""HaGRID landmark extraction: the rule per part, chunks cached by content, a shared work list, shards.

Rules (one per kind of picture; :mod:`.prepare` says which part is which):

- ``crops`` (tight hand crops): padded and searched; when the palm model misses, a second look
  at the whole crop (the known box).
- ``photos`` (unannotated whole photos): searched with tiles; the gesture hand is the one
  reaching **highest** in the frame (right on 30 of 30 two-hand val photos, docs/hagrid.md).
- ``annotated`` (photos with HaGRID boxes): a box whose annotation carries 21 landmarks uses
  them, placed in frame pixels with the photo's true aspect (only the image header is read);
  a box without them gets a second look of the landmark model around the box.

Why chunks keyed by content: extraction is the slow part (~40 ms a photo on one core), so it
is cut into chunks of ``CHUNK`` pictures, each cached as one ``.npz`` of arrays under a key
made of the rule (``RULES_VERSION``), each picture's path *relative to the root*, its size and
its annotation. A cache copied to another machine, or a dataset moved to another path, is
reused; an interrupted run resumes at the first missing chunk. Two runs (or the processes of a
multi-host job, or ``--shard K/N`` jobs) on one cache share the work list: a chunk is
claimed by an exclusive ``.claim`` file before it is worked on, so no chunk is done twice, and
a claim older than ``CLAIM_TIMEOUT_S`` is taken over (its owner died). JAX-free.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rnn_jax.atomic import writing
from rnn_jax.data.folders import is_image, natural_key
from rnn_jax.data.hagrid.annotations import box_landmarks, landmarks_in_pixels
from rnn_jax.errors import DataError

RULES_VERSION = 2  # bump when a rule below changes: every chunk key changes with it
CHUNK = 500  # pictures per cached chunk (resume granularity, and the unit handed to a worker)
MAX_WORKERS = 8  # local extraction processes (one per core, one onnxruntime thread each)
BOX_SQUARE = 1.5  # second look: landmark square side / annotated box's longer side
CLAIM_TIMEOUT_S = 900.0  # a claim this old is abandoned (a chunk takes ~30 s on one core)
NO_HAND, UNREADABLE, MISSING = "no_hand", "unreadable", "missing"


@dataclass(frozen=True)
class Item:
    """One picture to extract: its path relative to the root and what the part knows of it
    (``label`` for crops and photos; ``annotation`` for annotated photos)."""

    path: str
    label: str = ""
    annotation: dict | None = None  # boxes, labels, user, landmarks (normalised [21, 2] lists or None)

    def digest(self) -> str:
        return json.dumps([self.label, self.annotation], sort_keys=True, separators=(",", ":"))


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


def picture_exists(path: Path) -> bool:
    return path.is_file()


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) as :func:`rnn_jax.preprocess.read_image` would decode it, from the header
    only (Pillow; EXIF rotations by 90 degrees swap the sides, as OpenCV's decode does)."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112) in (5, 6, 7, 8):
                w, h = h, w
            return int(w), int(h)
    except ImportError:  # no Pillow (a base install): decode once
        from rnn_jax.preprocess import read_image

        h, w = read_image(path, 3).shape[:2]
        return int(w), int(h)
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc}") from exc


def _row(lm, label, person, hand, how, box, source, presence=1.0, z_known=True, others=0) -> dict:
    return {"landmarks": np.asarray(lm, np.float32), "label": label, "person": person, "hand": hand, "how": how,
            "box": np.asarray(box, np.float32), "source": source, "presence": float(presence),
            "z_known": bool(z_known), "others": int(others)}


def extract_picture(get_finder: Callable, kind: str, root: Path, item: Item) -> list[dict] | str:
    """Rows (one per kept hand) of one picture under its part's rule, or a status string
    (``no_hand``, ``unreadable``, ``missing``). ``get_finder()`` loads the finder only when needed."""
    from rnn_jax.hands.crop import normalised
    from rnn_jax.preprocess import read_image

    path = root / item.path
    if not picture_exists(path):
        return MISSING
    ann = item.annotation
    if ann is not None:
        ann = {**ann, "landmarks": box_landmarks(ann["landmarks"])}  # None where absent or malformed
    if kind == "annotated" and ann is not None and all(lm is not None for lm in ann["landmarks"]):
        try:  # every box has annotated landmarks: only the header is read
            w, h = image_size(path)
        except DataError:
            return UNREADABLE
        return [_row(landmarks_in_pixels(np.asarray(lm), w, h), label, ann["user"], ann["hands"][i], "annotation",
                     box, item.path, z_known=False)
                for i, (lm, box, label) in enumerate(zip(ann["landmarks"], ann["boxes"], ann["labels"], strict=True))]
    try:
        image = read_image(path, 3)
    except DataError:
        return UNREADABLE
    finder = get_finder()
    if kind == "crops":
        from rnn_jax.hands import find_hands_in_image, pad_for_detection
        from rnn_jax.hands.finder import landmark_box

        padded = pad_for_detection(image)
        hands = find_hands_in_image(finder, padded, tiles=False)
        if hands:
            hand = max(hands, key=lambda hd: hd.presence)
            lm, handed, how, presence = hand.landmarks, hand.handedness, "finder", hand.presence
        else:
            pad = (padded.shape[1] - image.shape[1]) / 2
            lm, presence, handed = second_look(finder, padded, (pad, pad, image.shape[1], image.shape[0]))
            if presence < finder.config.min_presence:
                return NO_HAND
            how = "second_look"
        h, w = padded.shape[:2]
        return [_row(lm, item.label, f"crop:{Path(item.path).stem}", handed, how,
                     normalised(landmark_box(lm), w, h), item.path, presence)]
    if kind == "photos":
        from rnn_jax.hands import find_hands_in_image

        hands = find_hands_in_image(finder, image)
        if not hands:
            return NO_HAND
        hand = highest_hand(hands)
        h, w = image.shape[:2]
        return [_row(hand.landmarks, item.label, f"photo:{Path(item.path).stem}", hand.handedness, "finder",
                     normalised(hand.box, w, h), item.path, hand.presence, others=len(hands) - 1)]
    assert ann is not None
    h, w = image.shape[:2]
    rows = []
    for i, ((bx, by, bw, bh), label) in enumerate(zip(ann["boxes"], ann["labels"], strict=True)):
        if ann["landmarks"][i] is not None:
            rows.append(_row(landmarks_in_pixels(np.asarray(ann["landmarks"][i]), w, h), label, ann["user"],
                             ann["hands"][i], "annotation", (bx, by, bw, bh), item.path, z_known=False))
            continue
        lm, presence, handed = second_look(finder, image, (bx * w, by * h, bw * w, bh * h))
        rows.append(_row(lm, label, ann["user"], handed, "annotated_box", (bx, by, bw, bh), item.path, presence))
    return rows


# --------------------------------------------------------------------------- chunks
def rows_to_arrays(rows: list[dict], statuses: list[str]) -> dict[str, np.ndarray]:
    """One chunk's rows as arrays (what a chunk file holds), plus each status's count."""
    n = len(rows)
    arrays = {
        "landmarks": np.stack([r["landmarks"] for r in rows]).astype(np.float32) if n
        else np.zeros((0, 21, 3), np.float32),
        "box": np.stack([r["box"] for r in rows]).astype(np.float32) if n else np.zeros((0, 4), np.float32),
        "presence": np.asarray([r["presence"] for r in rows], np.float32),
        "z_known": np.asarray([r["z_known"] for r in rows], bool),
        "others": np.asarray([r["others"] for r in rows], np.int16),
    }
    for key in ("label", "person", "hand", "how", "source"):
        arrays[key] = np.asarray([str(r[key] or "") for r in rows], dtype=str) if n else np.zeros(0, "<U1")
    for status in (NO_HAND, UNREADABLE, MISSING):
        arrays[f"n_{status}"] = np.asarray(statuses.count(status), np.int64)
    return arrays


def extract_chunk(kind: str, root: str, items: Sequence[Item], finder=None,
                  hand_models: str | None = None) -> dict[str, np.ndarray]:
    """Extract one chunk (in whatever process runs it) and return its arrays. Without ``finder``,
    one is loaded on first need and kept for the process's next chunks."""
    rows, statuses = [], []

    def get_finder():
        return finder if finder is not None else _process_finder(hand_models)

    for item in items:
        got = extract_picture(get_finder, kind, Path(root), item)
        if isinstance(got, str):
            statuses.append(got)
        else:
            rows.extend(got)
    return rows_to_arrays(rows, statuses)


_PROCESS_FINDERS: dict = {}  # one hand finder per worker process (loading takes ~0.2 s)


def _process_finder(hand_models: str | None):
    if hand_models not in _PROCESS_FINDERS:
        from rnn_jax.hands import HandFinder

        _PROCESS_FINDERS[hand_models] = HandFinder.load(hand_models, threads=1)
    return _PROCESS_FINDERS[hand_models]


@dataclass(frozen=True)
class Chunk:
    """One unit of work: a slice of a part's pictures and the file that caches it."""

    kind: str
    index: int
    items: tuple[Item, ...]
    key: str
    path: Path
    size: int = 0  # pictures in the chunk (kept when the items are dropped)

    @property
    def claim(self) -> Path:
        return self.path.with_suffix(".claim")

    def done(self) -> Chunk:
        """The same chunk without its items (what a merge needs; a 1M-photo plan stays small)."""
        return replace(self, items=())


def chunk_key(kind: str, root: Path, items: Sequence[Item], annotations: str | None = None) -> str:
    """Content key of one chunk: rule version, the finder's settings where the rule searches with
    tiles (photos), each picture's relative path and size, and what is known of it: its label, or
    for annotated photos the SHA-256 of the annotation file they come from (``annotations``; an
    edited file re-extracts its gesture). No absolute path, no file time: a cache moves between
    machines."""
    from rnn_jax.hands.finder import FinderConfig

    finder = f"|{FinderConfig()!r}" if kind == "photos" else ""
    digest = hashlib.sha256(f"{kind}|{RULES_VERSION}{finder}|{annotations}".encode())
    base = str(root) + os.sep
    for item in items:
        known = item.label if annotations else item.digest()
        digest.update(f"|{item.path}|{picture_size_bytes(base + item.path)}|{known}".encode())
    return digest.hexdigest()[:20]


def picture_size_bytes(path: str | Path) -> int:
    """The file's size for the content key (-1 when absent: a later download changes the key)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def plan_chunks(kind: str, root: Path, items: Sequence[Item], cache: Path,
                annotations: str | None = None) -> list[Chunk]:
    """The part's pictures cut into chunks of ``CHUNK``, each with its content key and file
    (``annotations``: the digest of the annotation file the items come from)."""
    chunks = []
    for k, start in enumerate(range(0, len(items), CHUNK)):
        part = tuple(items[start : start + CHUNK])
        key = chunk_key(kind, root, part, annotations)
        chunks.append(Chunk(kind, k, part, key, cache / f"{kind}-{key}.npz", len(part)))
    return chunks


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'K/N' (1 <= K <= N) -> (K, N); None stays None. ValueError with the rule otherwise."""
    if text is None:
        return None
    try:
        k, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like K/N (e.g. 2/8), got {text!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def in_shard(chunk_number: int, shard: tuple[int, int] | None) -> bool:
    """Chunk ``chunk_number`` (counted over every part) belongs to shard K of N when number % N == K - 1."""
    return shard is None or chunk_number % shard[1] == shard[0] - 1


# --------------------------------------------------------------------------- the shared work list
def try_claim(chunk: Chunk, timeout_s: float = CLAIM_TIMEOUT_S) -> bool:
    """Claim a chunk for this process (exclusive file create); a claim older than ``timeout_s``
    is taken over. False when someone else holds it (or it is already done)."""
    if chunk.path.is_file():
        return False
    for _ in range(2):
        try:
            fd = os.open(chunk.claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                age = time.time() - chunk.claim.stat().st_mtime
            except FileNotFoundError:
                continue  # released meanwhile: try again
            if age <= timeout_s:
                return False
            chunk.claim.unlink(missing_ok=True)  # abandoned: take it over
            continue
        with os.fdopen(fd, "w") as f:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}, f)
        return not chunk.path.is_file()
    return False


def save_chunk(chunk: Chunk, arrays: dict[str, np.ndarray]) -> None:
    """Write a chunk atomically (a killed run leaves no half file), then release its claim."""
    with writing(chunk.path, ".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    chunk.claim.unlink(missing_ok=True)


def load_chunk(chunk: Chunk) -> dict[str, np.ndarray]:
    with np.load(chunk.path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


# --------------------------------------------------------------------------- running the work list
class Progress:
    """One stderr line with pictures done, rate and ETA."""

    def __init__(self, total: int, done: int, what: str, enabled: bool) -> None:
        self.total, self.done, self.resumed, self.what, self.enabled = total, done, done, what, enabled
        self.start = time.perf_counter()
        self.show()

    def add(self, n: int) -> None:
        self.done += n
        self.show()

    def show(self) -> None:
        if not self.enabled:
            return
        rate = (self.done - self.resumed) / max(time.perf_counter() - self.start, 1e-9)
        speed = (f"{rate:.1f}/s  ETA {(self.total - self.done) / rate:.0f} s" if rate > 0
                 else "from the cache" if self.done == self.total else "starting")
        print(f"\r  {self.what}: {self.done}/{self.total} pictures  {speed} ", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.total:
            print(file=sys.stderr)


def run_work_list(chunks: Sequence[Chunk], root: Path, engine, progress: bool = True, wait: bool = True,
                  poll_s: float = 1.0, timeout_s: float = CLAIM_TIMEOUT_S, what: str = "extracting") -> dict:
    """Do every chunk of ``chunks`` not yet cached, sharing the work with other runs on the same cache.

    ``engine`` runs chunks (:mod:`.engines`). With ``wait``, chunks claimed by another run are
    waited for (and taken over when their claim goes stale), so on return every chunk is on
    disk; without it (a shard job) they are left to their owner. Returns counts for the report."""
    total = sum(c.size for c in chunks)
    done_chunks = [c for c in chunks if c.path.is_file()]
    bar = Progress(total, sum(c.size for c in done_chunks), what, progress)
    pending = [c for c in chunks if not c.path.is_file()]
    counts = {"chunks": len(chunks), "cached": len(done_chunks), "extracted_here": 0, "by_others": 0}
    try:
        batch = max(1, 2 * int(getattr(engine, "capacity", 1)))  # claim what the engine can start soon
        while pending:
            mine: list[Chunk] = []
            for c in pending:  # claim a batch at a time: a second run on the cache gets the rest
                if len(mine) == batch:
                    break
                if try_claim(c, timeout_s):
                    mine.append(c)
            if mine:
                for chunk, arrays in engine.run(mine, root):
                    save_chunk(chunk, arrays)
                    counts["extracted_here"] += 1
                    bar.add(chunk.size)
                pending = [c for c in pending if c not in mine]
                continue
            others = [c for c in pending if not c.path.is_file()]
            counts["by_others"] += sum(1 for c in pending if c.path.is_file())
            if not others or not wait:
                break
            time.sleep(poll_s)
            finished = [c for c in others if c.path.is_file()]
            counts["by_others"] += len(finished)
            bar.add(sum(c.size for c in finished))
            pending = [c for c in others if not c.path.is_file()]
    except BaseException:
        for c in pending:  # release what this run claimed but did not finish (others may take it)
            if c.claim.is_file() and not c.path.is_file():
                try:
                    if json.loads(c.claim.read_text()).get("pid") == os.getpid():
                        c.claim.unlink(missing_ok=True)
                except (OSError, ValueError):
                    pass
        raise
    finally:
        bar.close()
    counts["missing"] = sum(1 for c in chunks if not c.path.is_file())
    return counts


def class_folder_items(folder: Path, root: Path) -> list[Item]:
    """Every image in ``folder/<class>/`` (classes and files in natural order), relative to ``root``."""
    classes = sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")),
                     key=lambda d: natural_key(d.name))
    return [Item(str(p.relative_to(root)), d.name) for d in classes
            for p in sorted(d.iterdir(), key=lambda p: natural_key(p.name)) if is_image(p)]
