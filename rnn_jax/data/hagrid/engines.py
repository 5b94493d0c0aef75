"""Who runs extraction chunks: this process, the cores of this machine, or a Dask cluster.

Why Dask (the ``[scale]`` extra) and not Ray: extraction is a flat list of independent,
CPU-bound chunks whose results are small arrays (a 500-photo chunk is ~130 KB), which is
exactly ``Client.submit`` + ``as_completed``; Dask is pure-Python wheels on every platform and
Python rnn-jax supports, starts a local cluster in a second, and joins an existing cluster
(``dask scheduler`` / ``dask worker``, SLURM via dask-jobqueue, Kubernetes) by address. Ray
would bring its own object store, a ~100 MB native wheel per platform and a daemon, none of
which a list of chunks needs.

Every engine yields ``(chunk, arrays)`` as chunks finish; the caller writes them (the work
list's claims and files live with the caller, so workers need only read access to the
images, at the same path on every machine).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rnn_jax.data.hagrid.extract import MAX_WORKERS, Chunk, extract_chunk
from rnn_jax.errors import ConfigError


@dataclass(frozen=True)
class SerialEngine:
    """Chunks one after another in this process, with the finder given (tests pass a fake)."""

    finder: object = None
    hand_models: str | None = None
    capacity: int = 1

    def run(self, chunks: Sequence[Chunk], root: Path) -> Iterator[tuple[Chunk, dict]]:
        for chunk in chunks:
            yield chunk, extract_chunk(chunk.kind, str(root), chunk.items, self.finder, self.hand_models)


@dataclass(frozen=True)
class LocalProcessEngine:
    """One process per core (each its own hand finder, one onnxruntime thread), no extra dependency."""

    workers: int
    hand_models: str | None = None

    @property
    def capacity(self) -> int:
        return self.workers

    def run(self, chunks: Sequence[Chunk], root: Path) -> Iterator[tuple[Chunk, dict]]:
        if self.workers <= 1 or len(chunks) <= 1:
            yield from SerialEngine(None, self.hand_models).run(chunks, root)
            return
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from multiprocessing import get_context

        with ProcessPoolExecutor(min(self.workers, len(chunks)), mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(extract_chunk, c.kind, str(root), c.items, None, self.hand_models): c
                       for c in chunks}
            for future in as_completed(futures):
                yield futures[future], future.result()


class DaskEngine:
    """Chunks on a Dask cluster: ``address`` joins a running scheduler; None starts a local
    cluster of ``workers`` single-threaded processes (closed when the run ends)."""

    def __init__(self, address: str | None = None, workers: int | None = None,
                 hand_models: str | None = None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise ConfigError("--engine dask needs Dask: pip install -e '.[scale]' "
                              "(or use --engine local)") from exc
        self.hand_models = hand_models
        self._cluster = None
        if address:
            self.client = Client(address)
        else:
            self._cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            self.client = Client(self._cluster)

    @property
    def worker_count(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    @property
    def capacity(self) -> int:
        return max(1, sum(w.get("nthreads", 1) for w in self.client.scheduler_info().get("workers", {}).values()))

    def run(self, chunks: Sequence[Chunk], root: Path) -> Iterator[tuple[Chunk, dict]]:
        from distributed import as_completed

        futures = {self.client.submit(extract_chunk, c.kind, str(root), c.items, None, self.hand_models,
                                      key=f"rnn-jax-extract-{c.key}", pure=False): c for c in chunks}
        for future in as_completed(futures):
            yield futures[future], future.result()

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


ENGINES = ("local", "dask")


def make_engine(kind: str = "local", workers: int | None = None, address: str | None = None,
                hand_models: str | None = None, finder=None):
    """The engine a command line asks for. ``finder`` (tests) forces the serial engine."""
    if finder is not None:
        return SerialEngine(finder, hand_models)
    if kind not in ENGINES:
        raise ConfigError(f"--engine must be one of {ENGINES}, got {kind!r}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if kind == "dask" or address:
        return DaskEngine(address, workers, hand_models)
    return LocalProcessEngine(workers or default_workers(), hand_models)
