"""Streamed images: decode JPEGs while training, in grain worker processes, instead of a decoded cache.

The decoded cache (:mod:`rnn_jax.data.cache`) pays one decode pass, then every epoch reads uint8
arrays from a memory map: fastest, but it needs ``N x size x size x channels`` bytes of disk (full
HaGRID at 224 px: about 150 GB) and page cache to stay fast. :class:`StreamedImages` holds only the
rows (path, box, crop scale) and decodes a row when it is read, with the very decoder the cache
would have used (:func:`rnn_jax.data.cache.decode_item`, or a loader's own such as
``parts_images.decode_part_item``), so a streamed row equals the cached row pixel for pixel.

It is both a grain ``RandomAccessDataSource`` (``len`` and ``[i]``) and array-like enough for a
:class:`~rnn_jax.data.types.Split` (``shape``, ``dtype``, ``ndim``, ``[slice]``, ``[indices]``,
``np.asarray``), so every reader of ``split.images`` keeps working; the training and evaluation
pipelines (:mod:`rnn_jax.data.pipeline`) see a streamed split and read it through
``grain``'s ``mp_prefetch`` worker processes (``workers``, default one per core, and a read-ahead of
``read_ahead`` elements per worker).

Which one a loader uses: :func:`choose_storage` (``auto``: the cache when its arrays fit in half the
machine's RAM and half the cache folder's free disk, or are already decoded; streaming otherwise).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnn_jax.data.cache import (
    ImageItem,
    SplitSpec,
    _is_truncated_jpeg,
    decode_item,
    default_cache_dir,
    find_decoded,
    load_decoded,
)
from rnn_jax.errors import ConfigError, DataError

STORAGES = ("auto", "cache", "stream")
WORKERS_ENV = "RNN_JAX_STREAM_WORKERS"
READ_AHEAD = 2  # elements (batches) each worker decodes ahead of the training step
Decoder = Callable[[ImageItem, int, str, int], np.ndarray]


def default_stream_workers() -> int:
    """``$RNN_JAX_STREAM_WORKERS`` when set, else one worker process per core this process may use
    (0 = decode in the training process's threads instead of worker processes)."""
    env = os.environ.get(WORKERS_ENV)
    if env:
        try:
            workers = int(env)
        except ValueError:
            raise ConfigError(f"{WORKERS_ENV}={env!r} is not a whole number of worker processes") from None
        if workers < 0:
            raise ConfigError(f"{WORKERS_ENV} must be 0 or more, got {workers}")
        return workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True, eq=False)
class StreamedImages:
    """uint8 NHWC images decoded on read: row ``i`` is ``decoder(item i, size, crop_mode, channels)``.

    Rows are stored compactly (paths relative to ``root`` as bytes, boxes as float64 with NaN for
    "no box", crop scales), so it pickles quickly to grain's worker processes and a million rows
    cost tens of MB, not a million Python objects.
    """

    root: str
    paths: np.ndarray  # bytes, relative to root (os.fsencode)
    boxes: np.ndarray  # float64 [N, 4] normalised COCO boxes; NaN row = no box
    scales: np.ndarray  # float64 [N] crop side / longer box side
    size: int
    crop_mode: str
    channels: int
    decoder: Decoder = decode_item
    workers: int = field(default_factory=default_stream_workers)
    read_ahead: int = READ_AHEAD

    @classmethod
    def from_items(cls, items: Sequence[ImageItem], size: int, crop_mode: str, channels: int,
                   decoder: Decoder = decode_item, workers: int | None = None,
                   read_ahead: int = READ_AHEAD) -> StreamedImages:
        strings = [os.fspath(item.path) for item in items]
        try:  # over the few distinct folders: a million paths share a few dozen
            root = os.path.commonpath({os.path.dirname(s) for s in strings}) if strings else ""
        except ValueError:  # absolute and relative paths mixed: keep them whole
            root = ""
        cut = len(root) + (0 if not root or root.endswith(os.sep) else 1)
        boxes = np.array([item.box if item.box is not None else (np.nan,) * 4 for item in items],
                         np.float64).reshape(len(items), 4)
        return cls(root, np.array([os.fsencode(s[cut:]) for s in strings], dtype=bytes), boxes,
                   np.array([item.box_scale for item in items], np.float64), size, crop_mode, channels,
                   decoder, default_stream_workers() if workers is None else workers, read_ahead)

    # ---- array-like
    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), self.size, self.size, self.channels)

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __len__(self) -> int:
        return len(self.paths)

    def item(self, i: int) -> ImageItem:
        """Row ``i`` as the cache's :class:`ImageItem` (the decoder's input)."""
        box = self.boxes[i]
        path = Path(self.root, os.fsdecode(self.paths[i])) if self.root else Path(os.fsdecode(self.paths[i]))
        return ImageItem(path, None if np.isnan(box[0]) else tuple(float(v) for v in box), float(self.scales[i]))

    def decode(self, i: int) -> np.ndarray:
        item = self.item(i)
        try:
            image = self.decoder(item, self.size, self.crop_mode, self.channels)
        except DataError:
            raise
        except Exception as exc:  # whatever the codec raised: name the file
            raise DataError(f"cannot decode {item.path}: {type(exc).__name__}: {exc}") from exc
        return np.asarray(image, np.uint8).reshape(self.size, self.size, self.channels)

    def __getitem__(self, key):
        """numpy semantics: an integer gives one HWC image, a slice or index array an NHWC batch."""
        if isinstance(key, (int, np.integer)):
            n = len(self)
            if not -n <= key < n:
                raise IndexError(f"index {key} is out of range for {n} streamed images")
            return self.decode(int(key) % n)
        if isinstance(key, slice):
            rows = np.arange(len(self))[key]
        else:
            rows = np.arange(len(self))[np.asarray(key)]
            if rows.ndim != 1:
                raise IndexError("streamed images take one integer, a slice or a 1-d index array")
        out = np.empty((len(rows), self.size, self.size, self.channels), np.uint8)
        for j, i in enumerate(rows):
            out[j] = self.decode(int(i))
        return out

    def __array__(self, dtype=None, copy=None):
        """Every row decoded (threads: cv2 releases the GIL). For whole-split readers such as
        export's calibration; training and evaluation stream instead."""
        out = np.empty(self.shape, np.uint8)
        with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
            for i, image in enumerate(pool.map(self.decode, range(len(self)))):
                out[i] = image
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return (f"StreamedImages({len(self)} rows under {self.root!r}, {self.size}px {self.crop_mode}, "
                f"{self.channels} channels, {self.workers} workers)")


def is_streamed(images) -> bool:
    return isinstance(images, StreamedImages)


def _worker_init(index: int, count: int) -> None:
    """Each grain worker decodes with one OpenCV thread (the workers already use every core) and is
    kept off the accelerator: grain imports JAX there, and a worker that initialised a GPU backend
    would take its memory from the training process."""
    import cv2

    cv2.setNumThreads(1)
    os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ["CUDA_VISIBLE_DEVICES"] = ""


def mp_options(images: StreamedImages):
    """grain's multiprocessing options for a streamed split (``None``: read in threads)."""
    import grain

    if images.workers <= 0:
        return None
    return grain.MultiprocessingOptions(num_workers=images.workers, per_worker_buffer_size=images.read_ahead)


def _grain_flag_workaround() -> None:
    """grain 0.2.x reads the absl flag ``grain_enable_multiprocess_worker_profiling`` when JAX is
    imported, which raises UnparsedFlagAccessError in a program that never parses absl flags
    (google/grain issue 1355, fixed by PR 1361/1362). Marking that one flag present keeps its default,
    as grain itself does for its debug flags (process_prefetch.py)."""
    from absl import flags

    name = "grain_enable_multiprocess_worker_profiling"
    if not flags.FLAGS.is_parsed() and name in flags.FLAGS:
        flags.FLAGS[name].present = True


def worker_reads(ds, images: StreamedImages, threads: int = 2):
    """``ds`` (a grain MapDataset whose elements decode streamed rows) as an IterDataset read by
    ``images.workers`` processes, ``images.read_ahead`` elements ahead each (threads when 0)."""
    import grain

    options = mp_options(images)
    if options is None:
        return ds.to_iter_dataset(grain.ReadOptions(num_threads=max(1, threads), prefetch_buffer_size=4))
    _grain_flag_workaround()
    return ds.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)).mp_prefetch(
        options, worker_init_fn=_worker_init)


def read_ranges(images: StreamedImages, ranges: Sequence[tuple[int, int]]) -> Iterator[np.ndarray]:
    """``images[start:stop]`` for each range, in order, decoded by the worker processes."""
    import grain

    if not ranges:
        return iter(())
    starts = np.asarray(ranges, np.int64).reshape(-1, 2)
    ds = grain.MapDataset.range(len(starts)).map(lambda k: images[int(starts[k, 0]):int(starts[k, 1])])
    return iter(worker_reads(ds, images))


# ----------------------------------------------------------------------------- cache or stream


def decoded_bytes(splits: Mapping[str, SplitSpec], channels: int) -> int:
    """What the decoded cache of ``splits`` would take on disk."""
    return sum(len(s.items) * s.size * s.size * channels for s in splits.values())


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def _free_bytes(folder: Path) -> int:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return 0


def choose_storage(storage: str, need: int, cache_dir: Path, memory: int | None = None,
                   free: int | None = None) -> tuple[str, str]:
    """``(cache|stream, why)``. ``auto`` caches when the decoded arrays fit in half the RAM (so
    every epoch after the first reads them from the page cache) and in half the cache folder's
    free disk; otherwise it streams (each epoch decodes again, in worker processes)."""
    if storage not in STORAGES:
        raise ConfigError(f"image storage must be one of {', '.join(STORAGES)}, got {storage!r}")
    gib = lambda b: f"{b / 2**30:.1f} GiB" if b >= 2**30 else f"{b / 2**20:.1f} MiB"  # noqa: E731
    if storage != "auto":
        return storage, f"--image-storage {storage} (decoded: {gib(need)})"
    memory = _memory_bytes() if memory is None else memory
    free = _free_bytes(cache_dir) if free is None else free
    if need <= memory / 2 and need <= free / 2:
        return "cache", f"auto: decoded {gib(need)} fits in half the RAM ({gib(memory)}) and half the free disk ({gib(free)})"
    limit = "RAM" if need > memory / 2 else "free disk"
    return "stream", (f"auto: decoded {gib(need)} would not fit in half the {limit} "
                      f"(RAM {gib(memory)}, free disk {gib(free)} in {cache_dir})")


@dataclass
class Images:
    """What :func:`load_images` returns, like :class:`rnn_jax.data.cache.Decoded`: per split the
    images (a memmap or :class:`StreamedImages`) and which requested rows they hold."""

    images: dict[str, np.ndarray | StreamedImages]
    kept: dict[str, np.ndarray]
    failures: list[tuple[str, str]]
    storage: str  # "cache" or "stream"
    why: str
    cache: dict | None = None  # the cache's note when cached

    def note(self) -> dict:
        """The ``Dataset.notes["images"]`` entry (and ``notes["cache"]`` when cached)."""
        out = {"storage": self.storage, "why": self.why}
        if self.storage == "stream":
            first = next(iter(self.images.values()))
            out.update(workers=first.workers, read_ahead=first.read_ahead)
        return out

    def describe(self) -> str:
        if self.storage == "cache":
            return f"images: decoded cache ({self.why})"
        first = next(iter(self.images.values()))
        how = (f"{first.workers} grain worker processes, {first.read_ahead} batches read ahead each"
               if first.workers > 0 else "threads of the training process")
        return f"images: streamed from the JPEGs by {how} ({self.why})"


def _readable(item: ImageItem) -> str | None:
    """Why a file cannot be streamed (missing, empty, truncated JPEG), or None; cheap: two small reads."""
    try:
        if item.path.stat().st_size == 0:
            return f"empty file {item.path}"
    except OSError:
        return f"missing file {item.path}"
    if _is_truncated_jpeg(item.path):
        return f"truncated JPEG {item.path}: no end-of-image marker"
    return None


def load_images(name: str, splits: Mapping[str, SplitSpec], *, storage: str = "auto", crop_mode: str = "full",
                channels: int = 3, cache_dir: str | Path | None = None, progress: bool = True,
                params: Mapping | None = None, decoder: Decoder = decode_item,
                workers: int | None = None, announce: bool = True) -> Images:
    """The images of ``splits`` as a decoded cache or streamed (see :func:`choose_storage`); prints
    which one (``announce``). Streamed files that are missing, empty or truncated are left out and
    listed, as the cache lists what it cannot decode; a file that passes that check and still
    fails to decode stops training with its path."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    need = decoded_bytes(splits, channels)
    chosen, why = choose_storage(storage, need, root)
    found = None
    if chosen == "stream" and storage == "auto":  # decoded before (e.g. --image-storage cache): reuse it
        found = find_decoded(name, splits, crop_mode=crop_mode, channels=channels, cache_dir=cache_dir,
                             params=params)
        if found is not None:
            chosen, why = "cache", f"auto: already decoded in {found.path}"
    if chosen == "cache":
        decoded = found or load_decoded(name, splits, crop_mode=crop_mode, channels=channels,
                                        cache_dir=cache_dir, progress=progress, params=params, decoder=decoder)
        out = Images(decoded.images, decoded.kept, decoded.failures, "cache", why, decoded.note())
    else:
        images, kept, failures = {}, {}, []
        with ThreadPoolExecutor(max_workers=8) as pool:
            for split, spec in splits.items():
                reasons = list(pool.map(_readable, spec.items))
                keep = [i for i, r in enumerate(reasons) if r is None]
                failures += [(str(spec.items[i].path), r) for i, r in enumerate(reasons) if r is not None]
                kept[split] = np.asarray(keep, np.int64)
                images[split] = StreamedImages.from_items([spec.items[i] for i in keep], spec.size, crop_mode,
                                                          channels, decoder, workers)
        out = Images(images, kept, failures, "stream", why)
    if announce:
        print(out.describe())
    return out
