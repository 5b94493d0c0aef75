"""Decoded-image cache: decode and resize every photo once, then memory-map uint8 arrays.

JPEG decoding dominates the cost of small-image training (a 1,653-photo set decodes in
about a second, HaGRID's full frames in hours), so every loader goes through
:func:`load_decoded`. One cache *slot* per (data set, folder, size, crop mode, channels)
lives in ``$RNN_JAX_CACHE`` (default ``~/.cache/rnn-jax/decoded``) and holds:

- ``<split>.npy``: uint8 NHWC images, loaded with ``mmap_mode="r"`` (no RAM copy);
- ``<split>.kept.npy``: int64 indices of the requested items that decoded (the rest
  were unreadable and are reported as failures, so labels can be filtered);
- ``manifest.json``: the key (a hash of the ordered file list with sizes and mtimes,
  crop boxes, parameters and :data:`CACHE_VERSION`), shapes and failures.

A slot is written in a temporary folder and moved into place with ``os.replace``, so a
crash never leaves a half-written cache under the real name. A slot whose key, arrays or
shapes do not match is rebuilt, never silently reused.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnn_jax.errors import DataError
from rnn_jax.preprocess import CROP_MODES, crop_square, prepare, read_image, square_box

CACHE_VERSION = 1
ENV_VAR = "RNN_JAX_CACHE"
_JPEG_TAIL = 4096  # bytes searched for the JPEG end-of-image marker
_BATCH = 256  # images handed to the thread pool at a time
_STALE_TMP_S = 24 * 3600  # leftovers of a killed build older than this are removed


@dataclass(frozen=True)
class ImageItem:
    """One image to decode: a file, plus a normalised COCO box when a square hand crop is wanted."""

    path: Path
    box: tuple[float, float, float, float] | None = None
    box_scale: float = 1.5  # side of the square crop / longer side of the box


@dataclass(frozen=True)
class SplitSpec:
    """The images of one split and the square side they are stored at."""

    items: Sequence[ImageItem]
    size: int


@dataclass
class Decoded:
    """What :func:`load_decoded` returns: arrays plus how they were obtained."""

    images: dict[str, np.ndarray]  # split -> uint8 NHWC (a read-only memmap)
    kept: dict[str, np.ndarray]  # split -> indices into SplitSpec.items that decoded
    failures: list[tuple[str, str]]  # (path, reason) of items that did not decode
    path: Path  # the cache slot folder
    reused: bool  # True when nothing was decoded (the cache was valid)
    decoded: int  # number of images decoded by this call
    seconds: float  # wall time spent decoding (0 when reused)
    stats: dict = field(default_factory=dict)

    def note(self) -> dict:
        """The ``Dataset.notes["cache"]`` entry."""
        rate = self.decoded / self.seconds if self.seconds > 0 else None
        return {"path": str(self.path), "reused": self.reused, "decoded": self.decoded,
                "seconds": round(self.seconds, 3),
                "images_per_s": None if rate is None else round(rate, 1)}


def default_cache_dir() -> Path:
    """``$RNN_JAX_CACHE`` when set, else ``~/.cache/rnn-jax/decoded``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rnn-jax" / "decoded"


def default_workers() -> int:
    """Decode threads: cv2 releases the GIL, so one per core can help.

    Measured on 2 shared cores: 1.5x for 100 px JPEGs while the other core was idle, no
    gain (and no loss) when other processes kept both cores busy.
    """
    return max(1, min(8, os.cpu_count() or 1))


def _is_truncated_jpeg(path: Path) -> bool:
    """True for a JPEG without its end-of-image marker (some OpenCV builds decode those as grey)."""
    try:
        with open(path, "rb") as f:
            if f.read(2) != b"\xff\xd8":
                return False
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - _JPEG_TAIL))
            return b"\xff\xd9" not in f.read()
    except OSError:
        return False  # read_image reports unreadable files itself


def decode_item(item: ImageItem, size: int, crop_mode: str, channels: int) -> np.ndarray:
    """Read one file and bring it to ``size x size`` with the shared preprocessing."""
    if _is_truncated_jpeg(item.path):
        raise DataError(f"truncated JPEG {item.path}: no end-of-image marker")
    image = read_image(item.path, channels)
    if item.box is None:
        return prepare(image, size, crop_mode)
    h, w = image.shape[:2]
    left, top, side = square_box(item.box, w, h, item.box_scale)
    return crop_square(image, left, top, side, size)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:48] or "data"


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return -1, -1
    return st.st_size, st.st_mtime_ns


def cache_key(name: str, splits: Mapping[str, SplitSpec], params: Mapping) -> str:
    """Hash of everything the arrays depend on: files (with size+mtime), boxes, sizes, parameters."""
    h = hashlib.sha256()
    h.update(json.dumps({"version": CACHE_VERSION, "name": name, "params": dict(params)},
                        sort_keys=True, default=str).encode())
    for split_name in sorted(splits):
        spec = splits[split_name]
        h.update(f"\0split:{split_name}:{spec.size}:{len(spec.items)}\0".encode())
        for item in spec.items:
            size, mtime = _stat(item.path)
            box = "" if item.box is None else ",".join(f"{v:.6f}" for v in item.box)
            h.update(f"{item.path}|{size}|{mtime}|{box}|{item.box_scale:.4f}\n".encode())
    return h.hexdigest()


def _slot_dir(root: Path, name: str, splits: Mapping[str, SplitSpec], params: Mapping) -> Path:
    """One folder per data set + parameters; the file-level key lives in its manifest."""
    common = os.path.commonpath([str(it.path.parent) for s in splits.values() for it in s.items]
                                or ["."])
    ident = json.dumps({"name": name, "where": common, "params": dict(params),
                        "sizes": {k: v.size for k, v in sorted(splits.items())},
                        "version": CACHE_VERSION}, sort_keys=True, default=str)
    return root / f"{_slug(name)}-{hashlib.sha256(ident.encode()).hexdigest()[:12]}"


def _read_valid(slot: Path, key: str, splits: Mapping[str, SplitSpec],
                channels: int) -> Decoded | None:
    """Open a slot if (and only if) its manifest, key, arrays and shapes all match."""
    try:
        manifest = json.loads((slot / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("version") != CACHE_VERSION or manifest.get("key") != key:
        return None
    images: dict[str, np.ndarray] = {}
    kept: dict[str, np.ndarray] = {}
    try:
        for split_name, spec in splits.items():
            arr = np.load(slot / f"{split_name}.npy", mmap_mode="r", allow_pickle=False)
            idx = np.load(slot / f"{split_name}.kept.npy", allow_pickle=False)
            expected = (len(idx), spec.size, spec.size, channels)
            if arr.dtype != np.uint8 or arr.shape != expected:
                return None
            if len(idx) and (idx.min() < 0 or idx.max() >= len(spec.items)):
                return None
            if manifest.get("counts", {}).get(split_name) != len(idx):
                return None
            images[split_name], kept[split_name] = arr, idx
    except (OSError, ValueError):
        return None
    failures = [tuple(f) for f in manifest.get("failures", [])]
    return Decoded(images, kept, failures, slot, reused=True, decoded=0, seconds=0.0)  # type: ignore[arg-type]


def _decode_all(splits: Mapping[str, SplitSpec], out_dir: Path, crop_mode: str, channels: int,
                workers: int, progress: bool, desc: str,
                decoder: Callable[[ImageItem, int, str, int], np.ndarray]):
    """Decode every split into ``out_dir`` (one .npy per split), streaming through a memmap."""
    from tqdm.auto import tqdm

    total = sum(len(s.items) for s in splits.values())
    failures: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    bar = tqdm(total=total, desc=f"decoding {desc}", unit="img", disable=not progress,
               dynamic_ncols=True, leave=True)

    def work(args: tuple[ImageItem, int]) -> np.ndarray | str:
        item, size = args
        try:
            return decoder(item, size, crop_mode, channels)
        except DataError as exc:
            return str(exc)
        except Exception as exc:  # a broken file must be skipped, whatever the codec raised
            return f"cannot decode {item.path}: {type(exc).__name__}: {exc}"

    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        for split_name, spec in splits.items():
            n, size = len(spec.items), spec.size
            scratch = out_dir / f"{split_name}.scratch.npy"
            buf = np.lib.format.open_memmap(scratch, mode="w+", dtype=np.uint8,
                                            shape=(n, size, size, channels))
            kept: list[int] = []
            for start in range(0, n, _BATCH):  # bounded batches: no million pending futures
                jobs = [(item, size) for item in spec.items[start : start + _BATCH]]
                results = pool.map(work, jobs) if pool else map(work, jobs)
                for i, result in enumerate(results, start):
                    if isinstance(result, str):
                        failures.append((str(spec.items[i].path), result))
                    else:
                        buf[len(kept)] = result
                        kept.append(i)
                bar.update(len(jobs))
            final = out_dir / f"{split_name}.npy"
            if len(kept) == n:
                buf.flush()
                del buf
                os.replace(scratch, final)
            else:  # compact: copy the decoded rows into an array of the right length
                out = np.lib.format.open_memmap(final, mode="w+", dtype=np.uint8,
                                                shape=(len(kept), size, size, channels))
                for start in range(0, len(kept), 4096):
                    stop = min(start + 4096, len(kept))
                    out[start:stop] = buf[start:stop]
                out.flush()
                del out, buf
                scratch.unlink()
            np.save(out_dir / f"{split_name}.kept.npy", np.asarray(kept, dtype=np.int64))
            counts[split_name] = len(kept)
    finally:
        if pool:
            pool.shutdown()
        bar.close()
    return failures, counts


def _slot(name: str, splits: Mapping[str, SplitSpec], crop_mode: str, channels: int,
          cache_dir: str | Path | None, params: Mapping | None) -> tuple[Path, dict, Path]:
    """(cache root, every parameter the arrays depend on, the slot folder), after checking them."""
    if crop_mode not in CROP_MODES:
        raise DataError(f"unknown crop mode {crop_mode!r}; use one of {', '.join(CROP_MODES)}")
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    all_params = {"crop_mode": crop_mode, "channels": channels, **dict(params or {})}
    return root, all_params, _slot_dir(root, name, splits, all_params)


def find_decoded(name: str, splits: Mapping[str, SplitSpec], *, crop_mode: str = "full", channels: int = 3,
                 cache_dir: str | Path | None = None, params: Mapping | None = None) -> Decoded | None:
    """The valid cache of exactly these splits when one was decoded before, else None (decodes nothing;
    stats every file only when the slot folder exists)."""
    _, all_params, slot = _slot(name, splits, crop_mode, channels, cache_dir, params)
    if not (slot / "manifest.json").is_file():
        return None
    return _read_valid(slot, cache_key(name, splits, all_params), splits, channels)


def load_decoded(name: str, splits: Mapping[str, SplitSpec], *, crop_mode: str = "full",
                 channels: int = 3, cache_dir: str | Path | None = None, progress: bool = True,
                 workers: int | None = None, params: Mapping | None = None,
                 decoder: Callable[[ImageItem, int, str, int], np.ndarray] = decode_item,
                 ) -> Decoded:
    """Return decoded uint8 arrays for ``splits``, decoding only when the cache is missing or stale.

    ``params`` are extra values the arrays depend on (e.g. the hand-crop context); they go
    into the key. Unreadable images are left out and listed in ``Decoded.failures``.
    """
    root, all_params, slot = _slot(name, splits, crop_mode, channels, cache_dir, params)
    key = cache_key(name, splits, all_params)
    found = _read_valid(slot, key, splits, channels)
    if found is not None:
        return found

    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{slot.name}-", dir=root))
    except OSError as exc:
        raise DataError(f"cannot write the decoded-image cache in {root} ({exc.strerror}); "
                        f"set {ENV_VAR} or pass cache_dir to a writable folder") from exc
    start = time.perf_counter()
    try:
        failures, counts = _decode_all(splits, tmp, crop_mode, channels,
                                       workers or default_workers(), progress, name, decoder)
        seconds = time.perf_counter() - start
        manifest = {"version": CACHE_VERSION, "key": key, "name": name, "params": all_params,
                    "sizes": {k: v.size for k, v in splits.items()}, "counts": counts,
                    "failures": failures, "seconds": round(seconds, 3),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str))
        _install(tmp, slot)
    except OSError as exc:  # unreadable images never get here: they are skipped and counted
        reason = "no space left on device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise DataError(f"cannot write the decoded-image cache in {root} ({reason}); free some space "
                        f"or set {ENV_VAR} to a folder with room") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = _read_valid(slot, key, splits, channels)
    if result is None:  # another process replaced the slot in between with other data
        raise DataError(f"the decoded-image cache {slot} changed while it was being written; "
                        "run again (or give each run its own cache_dir)")
    result.reused, result.decoded, result.seconds = False, sum(len(s.items) for s in splits.values()), seconds
    return result


def _install(tmp: Path, slot: Path) -> None:
    """Atomically put a finished temporary folder in place of ``slot`` (replacing a stale one)."""
    trash = None
    if slot.exists():
        trash = slot.with_name(f".old-{slot.name}-{os.getpid()}-{time.time_ns()}")
        try:
            os.replace(slot, trash)
        except FileNotFoundError:
            trash = None
    try:
        os.replace(tmp, slot)
    except OSError:
        pass  # a concurrent builder won; the caller re-validates what is there
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def _remove_leftovers(root: Path) -> None:
    """Delete temporary folders of builds that were killed long ago (never a running one)."""
    now = time.time()
    for entry in root.iterdir():
        if entry.name.startswith((".tmp-", ".old-")) and entry.is_dir():
            try:
                if now - entry.stat().st_mtime > _STALE_TMP_S:
                    shutil.rmtree(entry, ignore_errors=True)
            except OSError:
                pass
