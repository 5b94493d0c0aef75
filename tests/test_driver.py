"""The generation driver end to end on tiny data, including resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rnn_jax.config import DistillConfig, RunConfig, TrainConfig
from rnn_jax.errors import ConfigError, ResumeError
from rnn_jax.lineage.driver import run_lineage
from rnn_jax.lineage.record import read_lineage
from rnn_jax.models.registry import ModelSpec
from tests.conftest import REPO, make_blobs_dataset, write_idx


def _config(**overrides) -> RunConfig:
    base = dict(model=ModelSpec("mlp", "tiny"), train=TrainConfig(epochs=2, batch_size=32, lr=1e-2, augment="none"), gens=2)
    base.update(overrides)
    return RunConfig(**base)


@pytest.mark.parametrize("teacher", ["cached", "consistent"])
def test_lineage_trains_every_generation_and_records_metrics(tmp_path, blobs, teacher):
    config = _config(distill=DistillConfig(teacher=teacher), gens=3)
    record = run_lineage(config, blobs, tmp_path / "run", progress=False, log=lambda _: None)
    gens = record["generations"]
    assert [g["gen"] for g in gens] == [0, 1, 2] and all(g["status"] == "done" for g in gens)
    assert [g["parent"] for g in gens] == [None, 0, 1]
    assert gens[0]["alpha"] == 0.0 and gens[1]["alpha"] == 0.7 and gens[1]["temperature"] == 4.0
    for g in gens:
        assert 0.0 <= g["val_acc"] <= 1.0 and "test_acc" in g and g["time_s"] > 0
        assert (tmp_path / "run" / f"gen_{g['gen']}" / "best").is_dir()
    assert max(g["val_acc"] for g in gens) > 0.6  # the toy task is learnable
    assert record["final_generation"] == min(gens, key=lambda g: (g["val_loss"], -g["val_acc"], g["gen"]))["gen"]
    assert "all" in record["ensembles"] and "val_acc" in record["ensembles"]["all"]
    on_disk = read_lineage(tmp_path / "run")
    assert on_disk["data"]["fingerprint"] == blobs.fingerprint()
    assert "jax" in on_disk["versions"]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 + 2 * 4 and {"gen", "epoch", "val_acc"} <= json.loads(lines[0]).keys()  # students: 2x


def test_same_seed_gives_same_metrics_on_cpu(tmp_path, blobs):
    config = _config(gens=1)
    a = run_lineage(config, blobs, tmp_path / "a", progress=False, log=lambda _: None)
    b = run_lineage(config, blobs, tmp_path / "b", progress=False, log=lambda _: None)
    assert a["generations"][0]["val_acc"] == b["generations"][0]["val_acc"]
    assert a["generations"][0]["epochs"][-1]["train_loss"] == pytest.approx(
        b["generations"][0]["epochs"][-1]["train_loss"], rel=1e-6)


def test_plateau_stops_early(tmp_path, blobs):
    # min_delta 1.0 can never be met, so patience 1 stops after generation 1
    config = _config(gens=4, patience=1, min_delta=1.0)
    record = run_lineage(config, blobs, tmp_path / "run", progress=False, log=lambda _: None)
    assert [g["gen"] for g in record["generations"]] == [0, 1]
    assert record["stop_reason"].startswith("plateau")


def test_existing_run_is_not_overwritten_and_mismatched_resume_is_refused(tmp_path, blobs):
    run_lineage(_config(gens=1), blobs, tmp_path / "run", progress=False, log=lambda _: None)
    with pytest.raises(ResumeError, match="--resume"):
        run_lineage(_config(gens=1), blobs, tmp_path / "run", progress=False, log=lambda _: None)
    with pytest.raises(ResumeError, match="model"):
        run_lineage(_config(gens=2, model=ModelSpec("mlp", "small")), blobs, tmp_path / "run", resume=True,
                    progress=False, log=lambda _: None)
    other = make_blobs_dataset(seed=5)
    with pytest.raises(ResumeError, match="data"):
        run_lineage(_config(gens=2), other, tmp_path / "run", resume=True, progress=False, log=lambda _: None)


def test_resume_adds_generations_without_retraining(tmp_path, blobs):
    run_lineage(_config(gens=1), blobs, tmp_path / "run", progress=False, log=lambda _: None)
    stamp = (tmp_path / "run" / "gen_0" / "train_logits.npy").stat().st_mtime_ns
    logs: list[str] = []
    record = run_lineage(_config(gens=2), blobs, tmp_path / "run", resume=True, progress=False, log=logs.append)
    assert [g["status"] for g in record["generations"]] == ["done", "done"]
    assert any("gen 0: already finished" in line for line in logs)
    assert (tmp_path / "run" / "gen_0" / "train_logits.npy").stat().st_mtime_ns == stamp


def test_batch_larger_than_the_data_is_a_clear_error(tmp_path, blobs):
    with pytest.raises(ConfigError, match="larger than the 512 training images"):
        run_lineage(_config(train=TrainConfig(batch_size=4096)), blobs, tmp_path / "run", progress=False)


def test_non_finite_loss_fails_the_generation_and_keeps_no_nan_model(tmp_path, blobs):
    config = _config(gens=2, train=TrainConfig(epochs=1, batch_size=32, lr=1e30, optimizer="sgd"))
    record = run_lineage(config, blobs, tmp_path / "run", progress=False, log=lambda _: None)
    failed = record["generations"][0]
    assert failed["status"] == "failed" and "non-finite" in failed["stop_reason"]
    assert len(record["generations"]) == 1 and record["final_generation"] is None
    assert not (tmp_path / "run" / "gen_0" / "best").exists() or not any((tmp_path / "run" / "gen_0" / "best").iterdir())


@pytest.mark.slow
def test_sigkill_during_generation_one_then_resume_finishes_without_retraining_gen0(tmp_path):
    blobs = make_blobs_dataset(n_train=3000, n_val=10, size=28, classes=4)
    data = write_idx(tmp_path / "idx", blobs.train.images[..., 0], blobs.train.labels,
                     blobs.test.images[..., 0], blobs.test.labels)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "experiments.fashion_mnist", "--data", str(data), "--out", str(run),
           "--gens", "3", "--epochs", "4", "--student-epochs", "4", "--batch-size", "32", "--model", "resnet",
           "--size", "tiny", "--mixup", "0", "--teacher", "cached",  # the pre-study recipe: quicker
           "--no-progress", "--no-flip"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    killed = False
    while time.time() < deadline and proc.poll() is None:
        try:
            record = json.loads((run / "lineage.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            record = {"generations": []}
        gen1 = [g for g in record["generations"] if g["gen"] == 1]
        if gen1 and gen1[0]["epochs"]:
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    proc.wait(timeout=30)
    assert killed, f"the run ended before it could be killed:\n{proc.stdout.read().decode()[-2000:]}"
    before = json.loads((run / "lineage.json").read_text())
    assert before["generations"][0]["status"] == "done"
    gen0_best = sorted(p.name for p in (run / "gen_0" / "best").iterdir())

    resumed = subprocess.run(cmd + ["--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert "gen 0: already finished" in resumed.stdout
    assert "gen 1: resuming after epoch" in resumed.stdout
    after = json.loads((run / "lineage.json").read_text())
    assert [g["status"] for g in after["generations"]] == ["done", "done", "done"]
    assert after["generations"][0] == before["generations"][0]  # generation 0 untouched
    assert sorted(p.name for p in (run / "gen_0" / "best").iterdir()) == gen0_best
    assert [e["epoch"] for e in after["generations"][1]["epochs"]] == [0, 1, 2, 3]


def test_generation_time_counts_its_checkpoint_saves(tmp_path, blobs, monkeypatch):
    """A generation's time_s is its wall time, saves included: the benchmark compares it to PyTorch."""
    from rnn_jax.lineage.checkpoint import GenerationCheckpoints

    real = GenerationCheckpoints.save_resume

    def slow_save_resume(self, *args, **kwargs):
        time.sleep(0.25)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(GenerationCheckpoints, "save_resume", slow_save_resume)
    record = run_lineage(_config(gens=1), blobs, tmp_path / "run", progress=False, log=lambda _: None)
    gen = record["generations"][0]
    in_epochs = sum(e["time_s"] for e in gen["epochs"])
    assert gen["time_s"] >= in_epochs + 2 * 0.25


def test_a_run_interrupted_by_an_earlier_checkpoint_layout_gets_one_line_with_the_way_out(tmp_path, blobs):
    """Resume checkpoints without the best weights inside (older rnn-jax) are refused, not misread."""
    import orbax.checkpoint as ocp

    from rnn_jax.lineage.checkpoint import _manager

    run = tmp_path / "run"
    config = _config(gens=1)
    run_lineage(config, blobs, run, progress=False, log=lambda _: None)
    record = json.loads((run / "lineage.json").read_text())
    record["generations"][0]["status"] = "running"  # as if killed during its last epoch
    (run / "lineage.json").write_text(json.dumps(record))
    old = _manager(run / "gen_0" / "resume")  # an earlier layout: the rows without a layout mark
    old.save(1, args=ocp.args.StandardSave({"x": np.zeros(3, np.float32)}), force=True,
             custom_metadata={"epochs": record["generations"][0]["epochs"][:1]})
    old.wait_until_finished()
    old.close()
    with pytest.raises(ResumeError, match=r"gen_0/resume was written by an earlier rnn-jax .* delete that folder"):
        run_lineage(config, blobs, run, resume=True, progress=False, log=lambda _: None)


@pytest.mark.parametrize("teacher", ["cached", "consistent"])
def test_ensemble_teachers_and_mixed_batches_train_and_are_recorded(tmp_path, blobs, teacher):
    config = _config(distill=DistillConfig(teacher=teacher, teacher_from="ensemble"), gens=3,
                     train=TrainConfig(epochs=2, batch_size=32, lr=1e-2, augment="none", mixup=0.4, cutmix=1.0))
    record = run_lineage(config, blobs, tmp_path / "run", progress=False, log=lambda _: None)
    gens = record["generations"]
    assert [g["teachers"] for g in gens] == [[], [0], [0, 1]]
    assert all(g["status"] == "done" for g in gens)
    assert max(g["val_acc"] for g in gens) > 0.6  # mixing keeps the toy task learnable


def test_the_run_table_shows_each_generation_against_generation_zero(tmp_path, blobs):
    from rnn_jax.lineage.report import generation_table

    record = run_lineage(_config(gens=2), blobs, tmp_path / "run", progress=False, log=lambda _: None)
    table = generation_table(record)
    assert "Δ test vs gen 0" in table
    gain = (record["generations"][1]["test_acc"] - record["generations"][0]["test_acc"]) * 100
    assert f"{gain:+.2f}" in table.splitlines()[3]


def test_the_final_student_is_chosen_on_validation_loss_or_accuracy():
    from rnn_jax.lineage.driver import choose_final_generation

    gens = [{"gen": 0, "val_acc": 0.9, "val_loss": 0.40}, {"gen": 1, "val_acc": 0.9, "val_loss": 0.30},
            {"gen": 2, "val_acc": 0.8, "val_loss": 0.35}]
    assert choose_final_generation(gens) == 1  # lowest loss (the default)
    assert choose_final_generation([*gens, {"gen": 3, "val_acc": 0.91, "val_loss": 0.9}]) == 1
    assert choose_final_generation([*gens, {"gen": 3, "val_acc": 0.91, "val_loss": 0.9}], "val_acc") == 3
    assert choose_final_generation(gens, "val_acc") == 1  # accuracy tie: the lower loss
    assert choose_final_generation([{"gen": 0, "val_acc": 0.9, "val_loss": 0.3},
                                    {"gen": 1, "val_acc": 0.92, "val_loss": 0.3}]) == 1  # loss tie: accuracy
    assert choose_final_generation([{"gen": 0, "val_acc": 0.9}, {"gen": 1, "val_acc": 0.9}]) == 0  # old records
    with pytest.raises(ConfigError, match="final-by"):
        RunConfig(final_by="test_acc")


def test_students_may_train_longer_than_generation_zero(tmp_path, blobs):
    config = _config(gens=2, train=TrainConfig(epochs=1, student_epochs=3, batch_size=32, lr=1e-2, augment="none"))
    record = run_lineage(config, blobs, tmp_path / "run", progress=False, log=lambda _: None)
    assert [len(g["epochs"]) for g in record["generations"]] == [1, 3]
    with pytest.raises(ConfigError, match="student-epochs"):
        TrainConfig(student_epochs=0)


def test_keep_epoch_last_keeps_the_end_of_the_schedule_and_best_keeps_the_best_val_epoch(tmp_path, blobs):
    for keep in ("best", "last"):
        config = _config(gens=1, train=TrainConfig(epochs=4, batch_size=32, lr=1e-2, augment="none", keep_epoch=keep))
        gen = run_lineage(config, blobs, tmp_path / keep, progress=False, log=lambda _: None)["generations"][0]
        vals = [e["val_acc"] for e in gen["epochs"]]
        expected = 3 if keep == "last" else vals.index(max(vals))
        assert gen["best_epoch"] == expected and gen["val_acc"] == pytest.approx(vals[expected])
    with pytest.raises(ConfigError, match="keep-epoch"):
        TrainConfig(keep_epoch="first")


def test_the_headline_says_when_the_final_student_trained_longer_than_generation_zero():
    """The table's "vs gen 0" is a same-length gain only when generation 0 trained as long; the
    headline says so when it did not (the demo preset trains both 16 epochs: no caveat)."""
    from rnn_jax.lineage.report import generation_table

    def record(epochs: int, student_epochs: int | None) -> dict:
        gens = [{"gen": g, "status": "done", "val_acc": 0.8 + g / 100, "test_acc": 0.8 + g / 50, "teachers": []}
                for g in range(2)]
        return {"config": {"train": {"epochs": epochs, "student_epochs": student_epochs}}, "generations": gens,
                "final_generation": 1}

    longer = generation_table(record(8, None)).splitlines()[-1]  # default: students twice as long
    assert longer.startswith("* final student: generation 1, chosen on validation (+2.00 points test vs gen 0")
    assert "generation 0 trained 8 epochs, this student 16" in longer and "--baseline compute-matched" in longer
    same = generation_table(record(16, 16)).splitlines()[-1]
    assert same == "* final student: generation 1, chosen on validation (+2.00 points test vs gen 0)"
