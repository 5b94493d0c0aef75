"""Data-parallel and multi-process training with JAX's own sharding.

The multi-device tests run in subprocesses: ``--xla_force_host_platform_device_count`` and
``jax.distributed.initialize`` only take effect before JAX starts its backend.

Tolerance between a one-device and a two-device (or two-process) run of the same lineage:
losses agree to ``rtol=1e-3`` and accuracies to within one validation image. Measured: ~1e-6
with XLA's convolutions; with oneDNN's (the CPU default), whose kernel gradients are summed per
batch slice and so in another order on two devices, every number within 1e-6 except two
metrics of the first epoch (val loss 3.9e-4, train KL 5.8e-5). A wrong split moves them by far more.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from rnn_jax.config import RunConfig, TrainConfig
from rnn_jax.data.pipeline import eval_batches, train_batches
from rnn_jax.data.types import Split
from rnn_jax.distributed import (
    ENV_COORDINATOR,
    ENV_NUM_PROCESSES,
    ENV_PROCESS_ID,
    ENV_SWITCH,
    cluster_from_env,
    make_placement,
)
from rnn_jax.errors import ConfigError
from rnn_jax.models.registry import ModelSpec
from tests.conftest import REPO, make_blobs_dataset

LOSS_RTOL = 1e-3
VAL_IMAGES = 128  # make_blobs_dataset's validation split


def _config(**overrides) -> RunConfig:
    base = dict(model=ModelSpec("resnet", "tiny"), gens=2,
                train=TrainConfig(epochs=2, student_epochs=2, batch_size=32, lr=1e-2, augment="basic"))
    base.update(overrides)
    return RunConfig(**base)


def _numbers(record: dict) -> dict:
    """Everything a lineage measured, keyed for comparison."""
    out = {}
    for g in record["generations"]:
        for e in g["epochs"]:
            for key in ("train_loss", "train_ce", "train_kl", "val_loss", "val_acc", "train_acc_aug"):
                out[f"gen{g['gen']}/epoch{e['epoch']}/{key}"] = e[key]
        for key in ("train_loss", "val_loss", "test_loss", "train_acc", "val_acc", "test_acc"):
            out[f"gen{g['gen']}/{key}"] = g[key]
    return out


def _assert_close(one: dict, many: dict) -> str:
    """Same keys, losses within LOSS_RTOL, accuracies within one validation image; returns the
    largest differences seen (for the log)."""
    assert one.keys() == many.keys()
    worst_loss = worst_acc = 0.0
    for key, a in one.items():
        b = many[key]
        if key.endswith("_acc") or key.endswith("_acc_aug"):
            assert abs(a - b) <= 1.0 / VAL_IMAGES + 1e-9, (key, a, b)
            worst_acc = max(worst_acc, abs(a - b))
        else:
            assert b == pytest.approx(a, rel=LOSS_RTOL, abs=1e-6), (key, a, b)
            worst_loss = max(worst_loss, abs(a - b) / max(abs(a), 1e-12))
    return f"largest relative loss difference {worst_loss:.1e}, largest accuracy difference {worst_acc:.4f}"


def _run_python(code: str, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _result(stdout: str, tag: str = "RESULT") -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith(tag + " ")]
    assert lines, stdout[-3000:]
    return json.loads(lines[-1][len(tag) + 1:])


def _base_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RNN_JAX_", "SLURM_")) and k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    return {**env, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}


# ---------------------------------------------------------------- in-process: no extra devices


def test_cluster_detection_from_the_environment():
    ours = {ENV_COORDINATOR: "10.0.0.1:7777", ENV_NUM_PROCESSES: "4", ENV_PROCESS_ID: "3"}
    assert cluster_from_env(ours) == {"coordinator_address": "10.0.0.1:7777", "num_processes": 4,
                                      "process_id": 3}
    assert cluster_from_env({}) is None
    assert cluster_from_env({**ours, ENV_NUM_PROCESSES: "1", ENV_PROCESS_ID: "0"}) is None
    assert cluster_from_env({**ours, ENV_SWITCH: "0"}) is None
    with pytest.raises(ConfigError, match=ENV_PROCESS_ID):
        cluster_from_env({ENV_COORDINATOR: "h:1", ENV_NUM_PROCESSES: "2"})
    with pytest.raises(ConfigError, match="0..RNN_JAX_NUM_PROCESSES-1"):
        cluster_from_env({**ours, ENV_PROCESS_ID: "4"})
    with pytest.raises(ConfigError, match="host:port"):
        cluster_from_env({**ours, ENV_COORDINATOR: "10.0.0.1"})
    slurm = {"SLURM_JOB_ID": "42", "SLURM_NTASKS": "8", "SLURM_PROCID": "5", "SLURM_LOCALID": "1",
             "SLURM_STEP_NODELIST": "node[01-02]"}
    assert cluster_from_env(slurm) == {"cluster_detection_method": "slurm"}
    assert cluster_from_env({**slurm, "SLURM_NTASKS": "1"}) is None  # one task: a plain run
    assert cluster_from_env({k: v for k, v in slurm.items() if k != "SLURM_STEP_NODELIST"}) is None  # salloc shell
    assert cluster_from_env({**slurm, **ours})["process_id"] == 3  # explicit variables win
    assert cluster_from_env({ENV_SWITCH: "1"}) == {}  # JAX's own detection (Open MPI, TPU, ...)


def test_one_device_keeps_the_plain_path_and_asking_for_more_is_a_clear_error():
    placement = make_placement(None)
    assert placement.mesh is None and placement.num_devices == 1 and placement.replicated is None
    assert placement.batch(np.zeros((2, 3), np.uint8), np.float32).dtype == np.float32
    with pytest.raises(ConfigError, match="--devices 4: only 1 cpu device"):
        make_placement(4)
    with pytest.raises(ConfigError, match="--devices"):
        RunConfig(devices=0)


def test_device_count_does_not_block_resume():
    assert _config(devices=2).compatible_with(_config(devices=None)) == []
    assert RunConfig.from_dict(_config(devices=2).to_dict()).devices == 2


def test_process_shards_of_a_batch_make_up_the_single_process_batch():
    from grain.sharding import ShardOptions

    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 255, (100, 4, 4, 1)).astype(np.uint8), np.arange(100, dtype=np.int32))
    whole = [b["index"] for b in train_batches(split, 16, seed=3, augment="none")]
    parts = [[b["index"] for b in train_batches(split, 16, seed=3, augment="none", shard=ShardOptions(i, 2))]
             for i in range(2)]
    assert len(whole) == len(parts[0]) == len(parts[1]) == 6
    for full, a, b in zip(whole, *parts):
        assert len(a) == len(b) == 8 and not set(a) & set(b)
        np.testing.assert_array_equal(np.sort(np.concatenate([a, b])), full)

    images = split.images[:37]
    single = list(eval_batches(images, 16))
    halves = [list(eval_batches(images, 16, rows=slice(i * 8, (i + 1) * 8))) for i in range(2)]
    for (batch, valid), (a, va), (b, vb) in zip(single, *halves):
        assert valid == va == vb
        np.testing.assert_array_equal(np.concatenate([a, b]), batch)


# ---------------------------------------------------------------- (a) two devices, one process


def _two_device_worker(run_root: str) -> None:
    """Run in a subprocess with two forced CPU devices: one-device and two-device lineages."""
    import jax

    from rnn_jax.config import DistillConfig
    from rnn_jax.lineage import context, driver

    seen: list[dict] = []
    plain = context.make_train_step

    def watching_step(*args, **kwargs):
        step = plain(*args, **kwargs)

        def step_and_look(state, images, labels, teacher, *rest):
            seen.append({name: {"spec": list(getattr(x.sharding, "spec", [])),
                                "shards": [[d.id for d in s.data.devices()] + list(s.data.shape)
                                           for s in x.addressable_shards]}
                         for name, x in (("images", images), ("labels", labels), ("teacher", teacher))})
            return step(state, images, labels, teacher, *rest)

        return step_and_look

    context.make_train_step = watching_step
    blobs = make_blobs_dataset()
    quiet = {"progress": False, "log": lambda _: None}
    result: dict = {"devices": len(jax.devices())}
    for teacher in ("cached", "consistent"):
        for devices in (1, 2):
            seen.clear()
            config = _config(devices=devices, distill=DistillConfig(teacher=teacher))
            record = driver.run_lineage(config, blobs, f"{run_root}/{teacher}_{devices}", **quiet)
            result[f"{teacher}_{devices}"] = {"numbers": _numbers(record), "distributed": record["distributed"],
                                              "first_step": seen[0], "last_step": seen[-1],
                                              "steps": len(seen)}
    # stopped after its first epoch, a two-device run resumes mid-generation on two devices
    def stop_after_first_epoch(line: str) -> None:
        if line.startswith("gen 0 epoch 1/"):
            raise KeyboardInterrupt

    try:
        driver.run_lineage(_config(devices=2), blobs, f"{run_root}/stopped", progress=False,
                           log=stop_after_first_epoch)
    except KeyboardInterrupt:
        pass
    record = driver.run_lineage(_config(devices=2), blobs, f"{run_root}/stopped", resume=True, **quiet)
    result["resumed_mid_generation"] = _numbers(record)
    # a two-device run resumes on one device (generation 1's checkpoint was written by two)
    record = driver.run_lineage(_config(devices=1, gens=3), blobs, f"{run_root}/cached_2", resume=True, **quiet)
    result["resumed"] = [g["status"] for g in record["generations"]]
    try:
        driver.run_lineage(_config(devices=2, train=TrainConfig(epochs=1, batch_size=31)), blobs,
                           f"{run_root}/odd", **quiet)
    except ConfigError as exc:
        result["odd_batch_error"] = str(exc)
    print("RESULT " + json.dumps(result))


@pytest.mark.slow
def test_two_devices_split_every_batch_and_match_one_device(tmp_path):
    # two host devices meet at every collective; on a busy 2-core machine one may wait more than XLA's
    # default 40 s for the other and abort the process (seen once with four jobs on two cores)
    env = {**_base_env(), "XLA_FLAGS": "--xla_force_host_platform_device_count=2 "
           "--xla_cpu_collective_call_terminate_timeout_seconds=600 --xla_cpu_collective_timeout_seconds=600"}
    proc = _run_python(f"from tests.test_distributed import _two_device_worker; "
                       f"_two_device_worker({str(tmp_path)!r})", env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = _result(proc.stdout)
    assert result["devices"] == 2
    for teacher in ("cached", "consistent"):
        one, two = result[f"{teacher}_1"], result[f"{teacher}_2"]
        assert one["distributed"]["devices"] == 1 and two["distributed"] == {
            "devices": 2, "processes": 1, "platform": "cpu", "mesh_axis": "data"}
        # one device: the plain path, whole batches on device 0
        assert one["first_step"]["images"]["shards"] == [[0, 32, 8, 8, 1]]
        # two devices: every input of every step is split in halves, one per device
        assert one["steps"] == two["steps"] == 2 * 2 * (512 // 32)
        for step in (two["first_step"], two["last_step"]):
            assert step["images"]["spec"] == ["data"]
            assert sorted(step["images"]["shards"]) == [[0, 16, 8, 8, 1], [1, 16, 8, 8, 1]]
            assert sorted(step["labels"]["shards"]) == [[0, 16], [1, 16]]
            assert sorted(step["teacher"]["shards"]) == [[0, 16, 4], [1, 16, 4]]
        print(f"{teacher}, 1 vs 2 devices: {_assert_close(one['numbers'], two['numbers'])}")
    assert result["resumed"] == ["done", "done", "done"]
    _assert_close(result["cached_2"]["numbers"], result["resumed_mid_generation"])
    assert "does not divide by the 2 devices" in result["odd_batch_error"]
    assert "--batch-size 32 or 30" in result["odd_batch_error"]


# ---------------------------------------------------------------- (b) two processes on loopback


def _process_worker(run_dir: str) -> None:
    """One of two processes (rank and coordinator from RNN_JAX_* variables)."""
    from rnn_jax.distributed import initialize_from_env

    assert initialize_from_env()
    import jax

    from rnn_jax.lineage import driver, generation

    first_batches: list[list[int]] = []
    plain = generation.train_batches

    def watching_batches(*args, **kwargs):
        for i, batch in enumerate(plain(*args, **kwargs)):
            if i == 0:
                first_batches.append(batch["index"].tolist())
            yield batch

    generation.train_batches = watching_batches
    logs: list[str] = []
    config = _config(model=ModelSpec("mlp", "tiny"), train=TrainConfig(epochs=2, student_epochs=2, batch_size=32,
                                                                       lr=1e-2, augment="none"))
    record = driver.run_lineage(config, make_blobs_dataset(), run_dir, progress=False, log=logs.append)
    print("RESULT " + json.dumps({"process": jax.process_index(), "processes": jax.process_count(),
                                  "local_devices": jax.local_device_count(), "devices": jax.device_count(),
                                  "first_batches": first_batches, "logs": logs,
                                  "numbers": _numbers(record)}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_write_one_consistent_lineage(tmp_path):
    from rnn_jax.lineage.driver import run_lineage

    run = tmp_path / "run"
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {**_base_env(), ENV_COORDINATOR: f"127.0.0.1:{port}", ENV_NUM_PROCESSES: "2",
               ENV_PROCESS_ID: str(rank)}
        procs.append(subprocess.Popen(
            [sys.executable, "-c", f"from tests.test_distributed import _process_worker; _process_worker({str(run)!r})"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            outputs.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for code, out, err in outputs:
        assert code == 0, out[-2000:] + err[-4000:]
    results = [_result(out) for _, out, _ in outputs]
    assert [r["process"] for r in results] == [0, 1]
    assert all(r["processes"] == 2 and r["local_devices"] == 1 and r["devices"] == 2 for r in results)

    # each process read only its own half of every batch
    for a, b in zip(results[0]["first_batches"], results[1]["first_batches"]):
        assert len(a) == len(b) == 16 and not set(a) & set(b)
    # only process 0 logs and writes: one lineage, one line per epoch in metrics.jsonl
    assert results[0]["logs"] and not results[1]["logs"]
    record = json.loads((run / "lineage.json").read_text())
    assert [g["status"] for g in record["generations"]] == ["done", "done"]
    assert record["distributed"] == {"devices": 2, "processes": 2, "platform": "cpu", "mesh_axis": "data"}
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2 * 2
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]
    assert results[0]["numbers"] == results[1]["numbers"] == _numbers(record)

    # and it is the lineage one process on one device trains (no augmentation: same batches)
    single = run_lineage(RunConfig.from_dict({**record["config"], "devices": 1}), make_blobs_dataset(),
                         tmp_path / "single", progress=False, log=lambda _: None)
    print(f"1 process vs 2 processes: {_assert_close(_numbers(single), _numbers(record))}")
