"""Scale-out with JAX's own sharding: one ``Mesh`` with a ``data`` axis over every device of
every process.

Why ``jax.sharding`` and not ``pmap``: the train step stays the *same* jitted function. The
batch arrives sharded along ``data``, parameters and optimizer state arrive replicated, and
XLA inserts the gradient all-reduce (and the cross-device BatchNorm statistics) itself, so the
numbers equal a one-device run up to floating-point reordering.

Multi-host: :func:`initialize_from_env` joins the cluster described by the environment
(SLURM under ``srun``, or the ``RNN_JAX_*`` variables below) before anything touches a JAX
backend. Each process then feeds only its own rows of every global batch, and only process 0
writes files (:func:`is_main_process`).

Environment variables (see docs/distributed.md):

``RNN_JAX_COORDINATOR``    ``host:port`` of process 0's coordinator service
``RNN_JAX_NUM_PROCESSES``  how many processes take part
``RNN_JAX_PROCESS_ID``     this process's rank, ``0 .. N-1``
``RNN_JAX_DISTRIBUTED``    ``0`` never initialise (e.g. a one-process job inside a SLURM
                           allocation); ``1`` initialise with JAX's own cluster detection
                           (Open MPI, Cloud TPU, ...) when nothing else is set
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rnn_jax.errors import ConfigError

PyTree = Any
DATA_AXIS = "data"
ENV_COORDINATOR = "RNN_JAX_COORDINATOR"
ENV_NUM_PROCESSES = "RNN_JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "RNN_JAX_PROCESS_ID"
ENV_SWITCH = "RNN_JAX_DISTRIBUTED"
_OFF, _ON = ("0", "false", "no", "off"), ("1", "true", "yes", "on")
_SLURM_VARS = ("SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_STEP_NODELIST")


def cluster_from_env(environ: Mapping[str, str] | None = None) -> dict | None:
    """Keyword arguments for ``jax.distributed.initialize``, or None for a one-process run.

    Explicit ``RNN_JAX_*`` variables win over SLURM; a SLURM job step with one task (or an
    ``salloc`` shell outside ``srun``) stays a plain one-process run.
    """
    env = os.environ if environ is None else environ
    switch = env.get(ENV_SWITCH, "").strip().lower()
    if switch in _OFF:
        return None
    ours = (ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID)
    if any(name in env for name in ours):
        missing = [name for name in ours if not env.get(name)]
        if missing:
            raise ConfigError(f"multi-process run: {', '.join(missing)} not set (all of {', '.join(ours)} "
                              f"are needed; see docs/distributed.md)")
        try:
            count, rank = int(env[ENV_NUM_PROCESSES]), int(env[ENV_PROCESS_ID])
        except ValueError:
            raise ConfigError(f"{ENV_NUM_PROCESSES} and {ENV_PROCESS_ID} must be integers, got "
                              f"{env[ENV_NUM_PROCESSES]!r} and {env[ENV_PROCESS_ID]!r}") from None
        if count < 1 or not 0 <= rank < count:
            raise ConfigError(f"{ENV_PROCESS_ID}={rank} must be in 0..{ENV_NUM_PROCESSES}-1 "
                              f"({ENV_NUM_PROCESSES}={count})")
        if ":" not in env[ENV_COORDINATOR]:
            raise ConfigError(f"{ENV_COORDINATOR} must be host:port, got {env[ENV_COORDINATOR]!r}")
        if count == 1:
            return None
        return {"coordinator_address": env[ENV_COORDINATOR], "num_processes": count, "process_id": rank}
    if all(name in env for name in _SLURM_VARS) and int(env["SLURM_NTASKS"]) > 1:
        return {"cluster_detection_method": "slurm"}  # JAX reads the SLURM_* variables itself
    if switch in _ON:
        return {}
    return None


def initialize_from_env() -> bool:
    """Join the cluster the environment describes (idempotent); True when this run is multi-process.

    Must run before the first JAX computation: ``jax.distributed.initialize`` refuses later.
    """
    if jax.distributed.is_initialized():
        return True
    kwargs = cluster_from_env()
    if kwargs is None:
        return False
    try:
        jax.distributed.initialize(**kwargs)
    except RuntimeError as exc:
        raise ConfigError(f"could not join the multi-process run ({exc}); call "
                          f"rnn_jax.distributed.initialize_from_env() before any JAX computation") from exc
    return True


def is_main_process() -> bool:
    """Process 0 alone writes lineage.json, metrics, plots and logs."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """All processes wait here (a no-op in a one-process run): e.g. after process 0 wrote a file
    the others are about to read."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def replicate(tree: PyTree, sharding: NamedSharding | None) -> PyTree:
    """Put every leaf of ``tree`` on every device of ``sharding`` (identity when it is None).

    With several processes each one builds its own copy from host memory (the values are the
    same everywhere: same seeds, same checkpoint), so no cross-host transfer is needed.
    """
    if sharding is None:
        return tree
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def put(leaf):
        if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(put(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
        if isinstance(leaf, jax.Array) and leaf.sharding == sharding:
            return leaf
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(put, tree)


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where arrays live for one run: a single device (``mesh is None``: the plain, unchanged
    path) or a ``data``-axis mesh (batch sharded, state replicated)."""

    mesh: Mesh | None = None

    @property
    def num_devices(self) -> int:
        return 1 if self.mesh is None else self.mesh.size

    @property
    def process_count(self) -> int:
        return 1 if self.mesh is None else jax.process_count()

    @property
    def process_index(self) -> int:
        return 0 if self.mesh is None else jax.process_index()

    @property
    def replicated(self) -> NamedSharding | None:
        """Parameters, optimizer state, metrics and eval logits."""
        return None if self.mesh is None else NamedSharding(self.mesh, PartitionSpec())

    @property
    def data_sharding(self) -> NamedSharding | None:
        """Batch inputs (images, labels, teacher logits): rows split along the ``data`` axis."""
        return None if self.mesh is None else NamedSharding(self.mesh, PartitionSpec(DATA_AXIS))

    def local_rows(self, global_rows: int) -> slice:
        """This process's rows of a global batch (processes own contiguous blocks of the mesh)."""
        per = global_rows // self.process_count
        return slice(self.process_index * per, (self.process_index + 1) * per)

    def eval_batch_size(self, requested: int) -> int:
        """``requested`` rounded up to a multiple of the device count (padding is dropped anyway)."""
        return math.ceil(requested / self.num_devices) * self.num_devices

    def shard_options(self):
        """grain's shard of the data for this process, or None when there is one process."""
        if self.process_count == 1:
            return None
        import grain

        return grain.sharding.ShardByJaxProcess(drop_remainder=True)

    def batch(self, local: np.ndarray, dtype=None) -> jax.Array:
        """This process's rows of a batch -> one global array sharded along ``data``.

        One device: exactly ``jnp.asarray`` (no extra copy, no extra dispatch per step).
        """
        if self.mesh is None:
            return jnp.asarray(local, dtype)
        return jax.make_array_from_process_local_data(self.data_sharding, np.asarray(local, dtype))

    def replicate(self, tree: PyTree) -> PyTree:
        return replicate(tree, self.replicated)

    def describe(self) -> dict:
        devices = [jax.devices()[0]] if self.mesh is None else list(self.mesh.devices.flat)
        return {"devices": self.num_devices, "processes": self.process_count,
                "platform": devices[0].platform, "mesh_axis": None if self.mesh is None else DATA_AXIS}


def make_placement(devices: int | None = None) -> Placement:
    """The mesh for ``--devices`` (None: every visible device of every process).

    With several processes ``devices`` counts all of them and must divide by the process
    count: each process contributes its first ``devices / processes`` local devices.
    """
    everything = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    processes = jax.process_count()
    if devices is None:
        chosen = everything
    else:
        if devices < 1:
            raise ConfigError(f"--devices must be >= 1, got {devices}")
        if devices > len(everything):
            raise ConfigError(f"--devices {devices}: only {len(everything)} {everything[0].platform} "
                              f"device(s) are visible")
        if devices % processes:
            raise ConfigError(f"--devices {devices} must be a multiple of the {processes} processes "
                              f"(each process uses the same number of its devices)")
        per = devices // processes
        chosen = [d for p in range(processes) for d in [x for x in everything if x.process_index == p][:per]]
    if len(chosen) == 1 and processes == 1:
        return Placement(None)
    return Placement(Mesh(np.array(chosen), (DATA_AXIS,)))


def check_batch_size(batch_size: int, placement: Placement) -> None:
    """The global batch is split evenly over the devices: say so clearly when it cannot be."""
    n = placement.num_devices
    if batch_size % n:
        lower, upper = (batch_size // n) * n, (batch_size // n + 1) * n
        hint = f"--batch-size {upper}" + (f" or {lower}" if lower else "")
        raise ConfigError(f"--batch-size {batch_size} does not divide by the {n} devices of this run; "
                          f"use {hint}, or --devices to use fewer devices")
