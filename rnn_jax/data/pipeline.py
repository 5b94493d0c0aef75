"""grain pipelines: seeded shuffle, batch, gather from the in-memory/memmapped arrays, augment.

A split whose images are :class:`rnn_jax.data.stream.StreamedImages` (paths, not arrays) is read the
same way, except that gathering decodes the JPEGs and the whole read (decode, crop, augment) runs in
grain's worker processes (``mp_prefetch``); the batches are the same as from the decoded cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import grain
import numpy as np

from rnn_jax.data.augment import augment_batch
from rnn_jax.data.stream import is_streamed, read_ranges, worker_reads
from rnn_jax.data.types import Split, TrainView


def epoch_seed(seed: int, generation: int, epoch: int) -> int:
    """Distinct, reproducible shuffle/augment seed per (run seed, generation, epoch)."""
    return int(np.random.SeedSequence([seed, generation, epoch]).generate_state(1)[0])


def augment_stored(images: np.ndarray, rng: np.random.Generator, augment: str, flip: bool,
                   train_view: TrainView | None = None) -> np.ndarray:
    """Stored training images -> augmented model inputs: the one random augmentation of training
    (the pipeline's batches, and the fixed teacher views of rnn_jax/distill/views.py)."""
    if getattr(train_view, "augments", False):  # e.g. landmarks: the view owns the augmentation
        return train_view.augment(images, rng, augment, flip)
    images = images if train_view is None else train_view.random(images, rng)
    return augment_batch(images, rng, augment, flip)


def train_batches(split: Split, batch_size: int, seed: int, augment: str = "basic",
                  flip: bool = True, prefetch_threads: int = 2, train_view: TrainView | None = None,
                  shard: grain.sharding.ShardOptions | None = None,
                  images_per_read: int = 64,
                  view_images: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                  ) -> Iterator[dict[str, np.ndarray]]:
    """One epoch of shuffled, augmented, full batches: dicts of ``images``, ``labels``, ``index``.

    Batches hold indices into the split, so cached teacher logits can be looked up per batch.
    The last partial batch is dropped (stable shapes: one compilation).

    ``shard`` (multi-process runs, e.g. ``grain.sharding.ShardByJaxProcess``): every process
    draws the same shuffled global batches of ``batch_size`` and reads, augments and returns
    only its own contiguous ``batch_size / shard_count`` rows, so the global batches are the
    ones a single process would train on.

    ``images_per_read``: grain reads and augments several batches per element (at least one)
    and they are split here: at small batches grain's per-element cost, paid on the 2 cores the
    step needs, was ~10% of the epoch (resnet-medium 64 px batch 8, driver loop: 884 -> 939 img/s
    with 8 batches per read). The batches (which indices train together) are the same for any value.

    ``view_images(stored images, their indices) -> inputs`` replaces the random augmentation
    (and ``train_view``): the fixed teacher views of rnn_jax/distill/views.py, built in grain's
    threads like the augmentation they stand in for.
    """
    images, labels = split.images, split.labels
    shuffle_seed = seed  # identical on every process: they must agree on the global batches
    sharded = shard is not None and shard.shard_count > 1
    if sharded:
        if batch_size % shard.shard_count:
            raise ValueError(f"batch size {batch_size} does not divide by {shard.shard_count} processes")
        per = batch_size // shard.shard_count
        rows = slice(shard.shard_index * per, (shard.shard_index + 1) * per)
        # a different augmentation stream per process (the same one would repeat its draws)
        seed = int(np.random.SeedSequence([seed, shard.shard_index]).generate_state(1)[0])

    rows_per_batch = per if sharded else batch_size  # rows this process reads of each batch
    per_read = 1 if sharded else max(1, images_per_read // batch_size)
    whole = len(split) // batch_size * batch_size  # the last partial batch is dropped

    def gather(indices: np.ndarray) -> dict[str, np.ndarray]:
        # sorted within each batch: sorted reads are kinder to memory-mapped caches
        order = np.sort(indices.reshape(-1, rows_per_batch), axis=1).ravel()
        return {"images": np.asarray(images[order]), "labels": np.asarray(labels[order], np.int32), "index": order}

    def augmented(batch: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        if view_images is not None:
            return {**batch, "images": view_images(batch["images"], batch["index"])}
        return {**batch, "images": augment_stored(batch["images"], rng, augment, flip, train_view)}

    ds = grain.MapDataset.range(len(split)).shuffle(seed=shuffle_seed)
    if sharded:
        ds = ds.batch(batch_size, drop_remainder=True, batch_fn=np.asarray).map(lambda indices: indices[rows])
    else:
        ds = ds[:whole].batch(batch_size * per_read, batch_fn=np.asarray)
    ds = ds.map(gather).random_map(augmented, seed=seed)
    if is_streamed(images):  # decode + augment in worker processes (the element seeds do not change)
        reads = worker_reads(ds, images, prefetch_threads)
    else:
        reads = ds.to_iter_dataset(grain.ReadOptions(num_threads=prefetch_threads, prefetch_buffer_size=4))
    return reads if per_read == 1 else _split_reads(reads, batch_size)


def _split_reads(reads: Iterable[dict[str, np.ndarray]], batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    for read in reads:
        for start in range(0, len(read["index"]), batch_size):
            yield {key: value[start:start + batch_size] for key, value in read.items()}


def eval_batches(images: np.ndarray, batch_size: int,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None,
                 rows: slice | None = None) -> Iterator[tuple[np.ndarray, int]]:
    """Fixed-size batches (the last one padded) so evaluation compiles once; yields (batch, n_valid).

    ``rows`` (multi-process runs): read only this process's rows of every padded global batch;
    ``n_valid`` still counts the valid rows of the whole global batch. Streamed images are decoded
    ahead, in order, by their worker processes.
    """
    n = len(images)
    lo, hi = (0, batch_size) if rows is None else (rows.start, rows.stop)
    size = hi - lo
    starts = range(0, n, batch_size)
    ranges = [(min(start + lo, n), min(start + hi, n)) for start in starts]
    reads = read_ranges(images, ranges) if is_streamed(images) else (images[a:b] for a, b in ranges)
    for start, read in zip(starts, reads, strict=True):
        valid = min(batch_size, n - start)
        batch = np.asarray(read)
        if transform is not None and len(batch):
            batch = transform(batch)
        if not len(batch):  # this process's rows of the last batch are all padding
            batch = _empty_input(images, transform)
        if len(batch) < size:
            batch = np.concatenate([batch, np.zeros((size - len(batch), *batch.shape[1:]), batch.dtype)])
        yield batch, valid


def _empty_input(images: np.ndarray, transform: Callable | None) -> np.ndarray:
    """Zero rows shaped like a model input (the transform may change the image shape)."""
    one = np.asarray(images[:1])
    return (transform(one) if transform is not None else one)[:0]
