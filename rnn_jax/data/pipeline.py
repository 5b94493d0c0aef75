"""grain pipelines: seeded shuffle, batch, gather from the in-memory/memmapped arrays, augment."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grain
import numpy as np

from rnn_jax.data.augment import augment_batch
from rnn_jax.data.types import Split, TrainView


def epoch_seed(seed: int, generation: int, epoch: int) -> int:
    """Distinct, reproducible shuffle/augment seed per (run seed, generation, epoch)."""
    return int(np.random.SeedSequence([seed, generation, epoch]).generate_state(1)[0])


def train_batches(split: Split, batch_size: int, seed: int, augment: str = "basic",
                  flip: bool = True, prefetch_threads: int = 2, train_view: TrainView | None = None
                  ) -> grain.IterDataset:
    """One epoch of shuffled, augmented, full batches: dicts of ``images``, ``labels``, ``index``.

    Batches hold indices into the split, so cached teacher logits can be looked up per batch.
    The last partial batch is dropped (stable shapes: one compilation).
    """
    images, labels = split.images, split.labels

    def gather(indices: np.ndarray) -> dict[str, np.ndarray]:
        order = np.sort(indices)  # sorted reads are kinder to memory-mapped caches
        return {"images": np.asarray(images[order]), "labels": np.asarray(labels[order], np.int32), "index": order}

    def augmented(batch: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        images = batch["images"] if train_view is None else train_view.random(batch["images"], rng)
        return {**batch, "images": augment_batch(images, rng, augment, flip)}

    ds = (grain.MapDataset.range(len(split)).shuffle(seed=seed)
          .batch(batch_size, drop_remainder=True, batch_fn=np.asarray)
          .map(gather).random_map(augmented, seed=seed))
    return ds.to_iter_dataset(grain.ReadOptions(num_threads=prefetch_threads, prefetch_buffer_size=4))


def eval_batches(images: np.ndarray, batch_size: int,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None) -> Iterator[tuple[np.ndarray, int]]:
    """Fixed-size batches (the last one padded) so evaluation compiles once; yields (batch, n_valid)."""
    n = len(images)
    for start in range(0, n, batch_size):
        batch = np.asarray(images[start : start + batch_size])
        if transform is not None:
            batch = transform(batch)
        valid = len(batch)
        if valid < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - valid, *batch.shape[1:]), batch.dtype)])
        yield batch, valid
