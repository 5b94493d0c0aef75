"""Faults and bad input that other test files do not cover (see docs/reliability.md).

Kills at chosen and random moments, Ctrl-C, a full disk, divergence in a later epoch, a
resumed run matching an uninterrupted one, bad --resume targets on the command line, and
loading without pickle. Everything runs on tiny data (4 classes of 20 px images, an MLP).
"""

from __future__ import annotations

import ast
import dataclasses
import errno
import json
import os
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import hagrid
from rnn_jax.config import RunConfig, TrainConfig
from rnn_jax.errors import main_guard
from rnn_jax.lineage import context, driver
from rnn_jax.lineage.checkpoint import GenerationCheckpoints
from rnn_jax.lineage.driver import run_lineage
from rnn_jax.lineage.record import STARTED_FILE, read_lineage
from rnn_jax.models.registry import ModelSpec
from tests.conftest import REPO

# resumed vs uninterrupted on CPU: the same XLA programs on the same inputs. Measured: equal
# to the last bit; the tolerance only leaves room for a different BLAS thread split.
LOSS_RTOL = 1e-5
ACC_ATOL = 1e-6
METRIC_KEYS = ("train_loss", "train_ce", "train_kl", "train_acc_aug", "val_acc", "val_loss")


# ---------------------------------------------------------------- data and helpers
def make_gestures(root: Path, seed: int = 0, train: int = 24, val: int = 6) -> Path:
    """4 learnable classes of 20 px PNGs in train/ and val/, plus one corrupt file."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("val", val)):
        for c in range(4):
            folder = root / split / f"g{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 60, (20, 20, 3)).astype(np.uint8)
                y, x = divmod(c, 2)
                img[y * 10 : (y + 1) * 10, x * 10 : (x + 1) * 10] += 150
                cv2.imwrite(str(folder / f"{i}.png"), img)
    (root / "train" / "g0" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


@pytest.fixture(scope="module")
def gestures(tmp_path_factory) -> Path:
    return make_gestures(tmp_path_factory.mktemp("data") / "gestures")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _own_cache(cache_dir, monkeypatch):
    monkeypatch.setenv("RNN_JAX_CACHE", str(cache_dir))


def cli_args(data: Path, out: Path, *extra: str, gens: int = 2, epochs: int = 2, size: str = "tiny",
             batch_size: int = 16) -> list[str]:
    """96 training images in batches of 16: 6 steps per epoch; every generation as long as gen 0."""
    return ["--data", str(data), "--out", str(out), "--gens", str(gens), "--epochs", str(epochs),
            "--student-epochs", str(epochs),
            "--batch-size", str(batch_size), "--model", "mlp", "--size", size, "--image-size", "16",
            "--no-progress", *extra]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run the hagrid CLI in this process: (exit code, stdout, stderr)."""
    try:
        main_guard(hagrid.main, argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def per_epoch(record: dict) -> list[dict]:
    return [{"gen": g["gen"], "epoch": e["epoch"], **{k: e[k] for k in METRIC_KEYS}}
            for g in record["generations"] for e in g["epochs"]]


def assert_same_metrics(resumed: dict, uninterrupted: dict) -> None:
    a, b = per_epoch(resumed), per_epoch(uninterrupted)
    assert [(r["gen"], r["epoch"]) for r in a] == [(r["gen"], r["epoch"]) for r in b]
    for x, y in zip(a, b):
        for key in METRIC_KEYS:
            if key.endswith("acc") or key == "train_acc_aug":
                assert x[key] == pytest.approx(y[key], abs=ACC_ATOL), (x, y)
            else:
                assert x[key] == pytest.approx(y[key], rel=LOSS_RTOL, abs=1e-7), (x, y)
    for g1, g2 in zip(resumed["generations"], uninterrupted["generations"]):
        assert g1["best_epoch"] == g2["best_epoch"]
        assert g1["val_acc"] == pytest.approx(g2["val_acc"], abs=ACC_ATOL)
        assert g1["train_acc"] == pytest.approx(g2["train_acc"], abs=ACC_ATOL)


def steps_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


# ---------------------------------------------------------------- SIGKILL at many moments
# Runs the hagrid CLI; RNN_JAX_TEST_KILL=<point>:<n> SIGKILLs the process at the n-th event.
_KILL_BOOT = r"""
import os, signal, sys
point, _, n = os.environ.get("RNN_JAX_TEST_KILL", "").partition(":")
n, calls = int(n or 0), [0]

def hit():
    calls[0] += 1
    if calls[0] == n:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

def wrap(owner, name, after=False):
    real = getattr(owner, name)
    def patched(*args, **kwargs):
        if not after:
            hit()
        out = real(*args, **kwargs)
        if after:
            hit()
        return out
    setattr(owner, name, patched)

if point == "decode":  # while the data cache is being built (in a decoding thread)
    import rnn_jax.data.cache as m; wrap(m, "read_image")
elif point == "step":  # in the middle of an epoch
    import rnn_jax.lineage.teaching as m; wrap(m, "batch_teacher_logits")
elif point == "after_best":  # between the best and the resume checkpoint of one epoch
    from rnn_jax.lineage.checkpoint import GenerationCheckpoints as m; wrap(m, "save_best", after=True)
elif point == "after_resume":  # the resume checkpoint is saved, lineage.json not yet written
    from rnn_jax.lineage.checkpoint import GenerationCheckpoints as m; wrap(m, "save_resume", after=True)
elif point == "finalize":  # inside an Orbax save: written to its temporary folder, not yet renamed
    import orbax.checkpoint as ocp; wrap(ocp.StandardCheckpointHandler, "finalize")
elif point == "logits":  # a generation trained, while its logits are written (not yet "done")
    import rnn_jax.lineage.run_folder as m; wrap(m, "save_array")
elif point == "drop_resume":  # a generation finished, its resume checkpoint just deleted
    from rnn_jax.lineage.checkpoint import GenerationCheckpoints as m; wrap(m, "drop_resume", after=True)
from rnn_jax.errors import main_guard
from experiments.hagrid import main
main_guard(main, sys.argv[1:])
"""


def _snapshot(run: Path) -> dict:
    """What must never change once a generation is done: its lineage entry and its files."""
    path = run / "lineage.json"
    if not path.exists():
        return {"record": None, "done": {}}
    record = json.loads(path.read_text())  # never half-written
    done = {}
    for g in record["generations"]:
        if g["status"] == "done":
            folder = run / f"gen_{g['gen']}"
            files = {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
                     for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).parts[0] != "resume"}
            assert any(k.startswith("best/") for k in files), f"gen {g['gen']} is done without best weights"
            done[g["gen"]] = (g, files)
    return {"record": record, "done": done}


@pytest.mark.slow
def test_sigkill_at_random_moments_always_resumes_to_the_uninterrupted_lineage(gestures, cache_dir, tmp_path,
                                                                                capsys):
    # a fixed draw of kill moments, so that a failure repeats; RNN_JAX_TEST_SEED=<n> tries another
    seed = int(os.environ.get("RNN_JAX_TEST_SEED", "20261202"))
    rng = random.Random(seed)
    run = tmp_path / "run"
    argv = cli_args(gestures, run, gens=4, epochs=3)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
           "RNN_JAX_CACHE": str(tmp_path / "kill-cache")}  # own cache: the first kill hits its build
    # each link ends in the generation after the previous one at the latest: 4 are plenty
    links = [("decode", rng.randint(1, 100)), ("step", rng.randint(1, 17)), ("after_resume", rng.randint(1, 3)),
             ("after_best", 1), ("finalize", rng.randint(1, 4)), ("logits", rng.randint(1, 2)),
             ("drop_resume", 1), ("timer", rng.uniform(1.0, 6.0)), (None, 0)]
    history = []
    before = _snapshot(run)
    running = None  # (gen, epochs recorded) of the generation a kill interrupted
    for i, (point, n) in enumerate(links):
        cmd = [sys.executable, "-c", _KILL_BOOT, *argv, *([] if i == 0 else ["--resume"])]
        link_env = {**env, "RNN_JAX_TEST_KILL": f"{point}:{n}" if point not in (None, "timer") else ""}
        proc = subprocess.Popen(cmd, cwd=REPO, env=link_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        if point == "timer":  # from outside, at a random wall-clock moment
            try:
                proc.wait(timeout=n)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=300)
        history.append(f"--- {point}:{n} -> {proc.returncode}\n{out[-1500:]}")
        context = f"seed {seed} (RNN_JAX_TEST_SEED={seed} repeats it)\n" + "\n".join(history)
        if point is None:
            assert proc.returncode == 0, context
        elif point != "timer":
            assert proc.returncode == -signal.SIGKILL, context
        if i == 0:  # killed while decoding: only the started marker exists, yet --resume works
            assert (run / STARTED_FILE).exists() and not (run / "lineage.json").exists(), context
        if i == 1:
            assert "was stopped before its first epoch; starting it from the beginning" in out, context
        if running and re.search(rf"^gen {running[0]} (epoch|done)", out, re.M):
            # no epoch lineage.json holds is trained again: only the one in progress is lost
            resumed_at = re.search(rf"^gen {running[0]}: resuming after epoch (\d+)", out, re.M)
            assert (int(resumed_at.group(1)) if resumed_at else 0) >= running[1], context
        after = _snapshot(run)
        if point == "drop_resume":  # "done" reached lineage.json before the resume checkpoint went
            assert after["record"]["generations"][-1]["status"] == "done", context
        for gen, (entry, files) in before["done"].items():  # finished generations are never touched
            assert after["done"][gen][0] == entry, context
            assert after["done"][gen][1] == files, context
        before = after
        active = [g for g in (after["record"] or {"generations": []})["generations"] if g["status"] == "running"]
        running = (active[0]["gen"], len(active[0]["epochs"])) if active else None

    record = read_lineage(run)
    assert [g["status"] for g in record["generations"]] == ["done"] * 4, context
    assert all([e["epoch"] for e in g["epochs"]] == [0, 1, 2] for g in record["generations"]), context
    assert record["stop_reason"] == "completed all generations" and record["final_generation"] is not None
    assert not (run / STARTED_FILE).exists()
    assert not list(run.rglob("*orbax-checkpoint-tmp*")), context
    assert "NOTE: skipped 1 image(s)" in out  # the corrupt file was counted, not fatal

    # the same command, never interrupted, gives the same numbers
    code, _, err = run_cli(cli_args(gestures, tmp_path / "clean", gens=4, epochs=3), capsys)
    assert code == 0, err
    assert_same_metrics(record, read_lineage(tmp_path / "clean"))


# ---------------------------------------------------------------- resume == uninterrupted (in process)
def _blob_config(**overrides) -> RunConfig:
    base = dict(model=ModelSpec("mlp", "tiny"), gens=2,
                train=TrainConfig(epochs=2, student_epochs=2, batch_size=32, lr=1e-2, augment="basic"))
    base.update(overrides)
    return RunConfig(**base)


def stopped_and_resumed(config, data, tmp_path) -> tuple[dict, dict, list[str]]:
    """(uninterrupted run, the same run stopped by Ctrl-C after generation 1's first epoch and
    resumed, the resumed run's log lines), in tmp_path/clean and tmp_path/stopped."""
    clean = run_lineage(config, data, tmp_path / "clean", progress=False, log=lambda _: None)

    def stop_after_gen1_epoch1(line: str) -> None:
        if line.startswith("gen 1 epoch 1/"):
            raise KeyboardInterrupt  # Ctrl-C right after the epoch was saved

    with pytest.raises(KeyboardInterrupt):
        run_lineage(config, data, tmp_path / "stopped", progress=False, log=stop_after_gen1_epoch1)
    logs: list[str] = []
    resumed = run_lineage(config, data, tmp_path / "stopped", resume=True, progress=False, log=logs.append)
    return clean, resumed, logs


def test_run_stopped_after_an_epoch_then_resumed_matches_an_uninterrupted_run(tmp_path, blobs):
    clean, resumed, logs = stopped_and_resumed(_blob_config(), blobs, tmp_path)
    assert "gen 1: resuming after epoch 1" in logs
    assert_same_metrics(resumed, clean)


# ---------------------------------------------------------------- Ctrl-C
@pytest.fixture
def ctrl_c_raises():
    """Python's own Ctrl-C handler (KeyboardInterrupt), the one an interactive run has. A process
    started in the background of a non-interactive shell (`nohup pytest &`) begins with SIGINT
    ignored, and Python then installs no handler: these tests would send a signal nobody hears."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_during_a_checkpoint_save_finishes_it_then_stops_with_the_resume_command(
        gestures, tmp_path, capsys, monkeypatch, ctrl_c_raises):
    run = tmp_path / "run"
    real = GenerationCheckpoints.save_resume
    calls = []

    def save_resume(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # gen 0, after epoch 2
            os.kill(os.getpid(), signal.SIGINT)  # lands inside the save below
        return real(self, *args, **kwargs)

    monkeypatch.setattr(GenerationCheckpoints, "save_resume", save_resume)
    code, out, err = run_cli(cli_args(gestures, run, epochs=3), capsys)
    assert code == 130, out + err
    assert "Ctrl-C: saving this epoch before stopping" in err
    assert f"continue with --resume --out {run}" in err and "Traceback" not in err
    record = read_lineage(run)
    assert [e["epoch"] for e in record["generations"][0]["epochs"]] == [0, 1]
    assert steps_in(run / "gen_0" / "resume") == ["2"]  # the interrupted save was completed

    monkeypatch.setattr(GenerationCheckpoints, "save_resume", real)
    code, out, err = run_cli(cli_args(gestures, run, "--resume", epochs=3), capsys)
    assert code == 0, err
    assert "gen 0: resuming after epoch 2" in out
    assert [g["status"] for g in read_lineage(run)["generations"]] == ["done", "done"]


def test_ctrl_c_while_the_data_is_decoded_can_be_resumed(gestures, tmp_path, capsys, monkeypatch,
                                                          ctrl_c_raises):
    import rnn_jax.data.cache as cache

    monkeypatch.setenv("RNN_JAX_CACHE", str(tmp_path / "fresh-cache"))  # so that decoding happens
    real, calls = cache.read_image, []

    def read_image(*args, **kwargs):
        calls.append(1)
        if len(calls) == 10:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(cache, "read_image", read_image)
    run = tmp_path / "run"
    code, out, err = run_cli(cli_args(gestures, run, gens=1, epochs=1), capsys)
    assert code == 130, out + err
    assert f"interrupted while loading the data; continue with --resume --out {run}" in err
    assert (run / STARTED_FILE).exists() and not (run / "lineage.json").exists()
    assert not [p for p in (tmp_path / "fresh-cache").iterdir() if p.name.startswith(".tmp-")]

    monkeypatch.setattr(cache, "read_image", real)
    code, out, err = run_cli(cli_args(gestures, run, "--resume", gens=1, epochs=1), capsys)
    assert code == 0, err
    assert "starting it from the beginning" in out
    assert read_lineage(run)["generations"][0]["status"] == "done"
    assert not (run / STARTED_FILE).exists()


# ---------------------------------------------------------------- full disk
def test_disk_full_during_a_checkpoint_save_is_one_line_and_resume_works_afterwards(
        gestures, tmp_path, capsys, monkeypatch):
    import orbax.checkpoint as ocp

    run = tmp_path / "run"
    real = ocp.CheckpointManager.save
    calls, at_failure = [], {}

    def save(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # mid-run: after gen 0's first epoch was saved
            at_failure["lineage"] = (run / "lineage.json").read_bytes()
            at_failure["steps"] = {str(d.relative_to(run)): steps_in(d) for d in run.glob("gen_*/*")
                                   if d.is_dir() and d.name in ("best", "resume")}
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, "save", save)
    code, _, err = run_cli(cli_args(gestures, run), capsys)
    line = assert_one_line_error(code, err, "no space left on device", "checkpoint of gen_",
                                 f"continue with --resume --out {run}")
    assert "what was saved before it is intact" in line
    assert (run / "lineage.json").read_bytes() == at_failure["lineage"]  # intact, still valid JSON
    json.loads(at_failure["lineage"])
    assert at_failure["steps"]["gen_0/best"]
    for d, steps in at_failure["steps"].items():  # earlier checkpoints intact
        assert steps_in(run / d) == steps, d

    monkeypatch.setattr(ocp.CheckpointManager, "save", real)  # space is back
    code, out, err = run_cli(cli_args(gestures, run, "--resume"), capsys)
    assert code == 0, err
    record = read_lineage(run)
    assert [g["status"] for g in record["generations"]] == ["done", "done"]
    assert [e["epoch"] for e in record["generations"][0]["epochs"]] == [0, 1]


def test_disk_full_while_building_the_data_cache_is_one_line(gestures, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RNN_JAX_CACHE", str(tmp_path / "full-disk"))

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np.lib.format, "open_memmap", no_space)
    run = tmp_path / "run"
    code, _, err = run_cli(cli_args(gestures, run, gens=1, epochs=1), capsys)
    assert_one_line_error(code, err, "decoded-image cache", "no space left on device", "RNN_JAX_CACHE")
    assert not run.exists()  # a run that never started leaves no folder behind


# ---------------------------------------------------------------- numeric trouble
def test_nan_in_a_later_epoch_fails_the_generation_and_keeps_the_last_good_checkpoint(tmp_path, blobs,
                                                                                     monkeypatch):
    real_make = context.make_train_step
    steps_per_epoch, calls = 512 // 32, []

    def make_train_step(*args, **kwargs):
        step = real_make(*args, **kwargs)

        def blowing_up(state, *rest):
            state, metrics = step(state, *rest)
            calls.append(1)
            if len(calls) > 3 * steps_per_epoch:  # gen 0: 2 good epochs; gen 1: epoch 1 good, epoch 2 NaN
                nan = lambda x: x * jnp.nan if jnp.issubdtype(x.dtype, jnp.floating) else x  # noqa: E731
                state, metrics = jax.tree.map(nan, state), {**metrics, "loss": metrics["loss"] * jnp.nan}
            return state, metrics

        return blowing_up

    monkeypatch.setattr(context, "make_train_step", make_train_step)
    logs: list[str] = []
    record = run_lineage(_blob_config(gens=3), blobs, tmp_path / "run", progress=False, log=logs.append)
    g0, g1 = record["generations"]
    assert g0["status"] == "done"
    assert g1["status"] == "failed" and [e["epoch"] for e in g1["epochs"]] == [0]
    assert "non-finite training loss (nan) in epoch 2" in g1["stop_reason"]
    assert "best checkpoint so far (epoch 1) is kept" in g1["stop_reason"] and "--lr" in g1["stop_reason"]
    assert record["stop_reason"].startswith("generation 1 failed: non-finite")
    assert any(line.startswith("generation 1 failed") for line in logs)
    assert record["final_generation"] == 0 and read_lineage(tmp_path / "run") == json.loads(
        json.dumps(record))
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert "NaN" not in metrics and "Infinity" not in metrics

    # the kept checkpoint is epoch 1's, and it is finite
    assert steps_in(tmp_path / "run" / "gen_1" / "best") == ["0"]
    _, params, stats = driver.load_generation_weights(tmp_path / "run", {**record, "generations": [
        g0, {**g1, "status": "done"}]}, 1, blobs.image_shape, blobs.num_classes)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves((params, stats)))

    # a resume does not retry silently: the failure stays visible
    again = run_lineage(_blob_config(gens=3), blobs, tmp_path / "run", resume=True, progress=False,
                        log=lambda _: None)
    assert again["stop_reason"].startswith("generation 1 failed earlier")


# ---------------------------------------------------------------- bad input on the command line
@pytest.fixture(scope="module")
def finished_run(gestures, cache_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    old = os.environ.get("RNN_JAX_CACHE")
    os.environ["RNN_JAX_CACHE"] = str(cache_dir)
    try:
        main_guard(hagrid.main, cli_args(gestures, out, gens=1, epochs=1))
    finally:
        if old is None:
            os.environ.pop("RNN_JAX_CACHE", None)
        else:
            os.environ["RNN_JAX_CACHE"] = old
    return out


@pytest.mark.parametrize(("case", "fragments"), [
    ("other_model", ["does not match this command", "model"]),
    ("other_data", ["does not match this command", "data: run was trained on"]),
    ("no_run", ["holds no run to resume"]),
    ("corrupt_lineage", ["lineage.json is corrupt", "checkpoints beside it are intact"]),
    ("batch_too_large", ["--batch-size 4096 is larger than the 96 training images"]),
])
def test_bad_resume_targets_and_batch_size_are_one_line(finished_run, gestures, tmp_path, capsys, case,
                                                        fragments):
    run, data, extra, options = tmp_path / "run", gestures, ["--resume"], {}
    shutil.copytree(finished_run, run)
    if case == "other_model":
        options["size"] = "small"
    elif case == "other_data":
        data = make_gestures(tmp_path / "other", seed=1)
    elif case == "no_run":
        run = tmp_path / "typo"
    elif case == "corrupt_lineage":
        (run / "lineage.json").write_text('{"generations": [')
    elif case == "batch_too_large":
        run, extra, options["batch_size"] = tmp_path / "fresh", [], 4096
    code, _, err = run_cli(cli_args(data, run, *extra, gens=1, epochs=1, **options), capsys)
    assert_one_line_error(code, err, *fragments)
    if case in ("no_run", "batch_too_large"):
        assert not run.exists()  # a refused command leaves no folder behind
    if case == "other_model":
        assert read_lineage(run) == read_lineage(finished_run)  # the refused run is untouched


# ---------------------------------------------------------------- no unsafe loading
_SOURCE_DIRS = ("rnn_jax", "experiments", "tools")
_UNSAFE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "shelve", "marshal", "joblib"}
# torch.load in the speed benchmark reads back a state dict the benchmark itself wrote a moment
# before in its own temporary folder; it never loads a user's file or a run's checkpoint
_TORCH_LOAD_ALLOWED = {"tools/benchkit/torch_ref.py"}


def test_no_code_path_unpickles_or_evaluates_what_it_reads():
    problems = []
    for folder in _SOURCE_DIRS:
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = str(path.relative_to(REPO))
            for node in ast.walk(ast.parse(path.read_text(), rel)):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                    problems += [f"{rel}:{node.lineno} imports {n}" for n in names
                                 if n.split(".")[0] in _UNSAFE_MODULES]
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                if isinstance(func, ast.Name) and name in ("eval", "exec"):
                    problems.append(f"{rel}:{node.lineno} calls {name}()")
                keywords = {k.arg: k.value for k in node.keywords}
                if name == "load" and "allow_pickle" in keywords:
                    value = keywords["allow_pickle"]
                    if not (isinstance(value, ast.Constant) and value.value is False):
                        problems.append(f"{rel}:{node.lineno} np.load with allow_pickle other than False")
                if name in ("load", "unsafe_load") and isinstance(func, ast.Attribute) and \
                        isinstance(func.value, ast.Name) and func.value.id == "yaml":
                    problems.append(f"{rel}:{node.lineno} yaml.{name}")
                if name == "load" and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                        and func.value.id == "torch" and rel not in _TORCH_LOAD_ALLOWED:
                    problems.append(f"{rel}:{node.lineno} torch.load")
    assert not problems, "\n".join(problems)


class _Payload:
    """Unpickling this would create a file: proof that nothing unpickles the logits."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_pickled_logits_file_is_never_unpickled_and_is_recomputed(tmp_path, blobs):
    config = _blob_config(gens=1, train=TrainConfig(epochs=1, batch_size=32, lr=1e-2, augment="none"))
    run_lineage(config, blobs, tmp_path / "run", progress=False, log=lambda _: None)
    sentinel = tmp_path / "was-unpickled"
    np.save(tmp_path / "run" / "gen_0" / "train_logits.npy", np.array([_Payload(sentinel)], dtype=object),
            allow_pickle=True)
    assert pickle.dumps(_Payload(sentinel))  # the payload is real
    record = run_lineage(dataclasses.replace(config, gens=2), blobs, tmp_path / "run", resume=True,
                         progress=False, log=lambda _: None)
    assert [g["status"] for g in record["generations"]] == ["done", "done"]
    assert not sentinel.exists()


# ---------------------------------------------------------------- the docs table
def test_every_test_named_in_docs_reliability_exists():
    table = (REPO / "docs" / "reliability.md").read_text()
    named = set(re.findall(r"`(tests/test_\w+\.py)::(test_\w+)", table))
    assert len(named) >= 25
    missing = []
    for file, test in sorted(named):
        source = (REPO / file).read_text()
        if not re.search(rf"^(async )?def {test}\(", source, re.M):
            missing.append(f"{file}::{test}")
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"
