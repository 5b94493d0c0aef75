"""The typed lineage record: the same lineage.json as the dict it replaced, and old files still load."""

from __future__ import annotations

import json

from rnn_jax.config import RunConfig, TrainConfig
from rnn_jax.lineage.driver import run_lineage
from rnn_jax.lineage.entry import GenerationEntry, LineageRecord
from rnn_jax.lineage.record import read_lineage
from rnn_jax.lineage.run_folder import RunFolder
from rnn_jax.models.registry import ModelSpec

ROW = {"gen": 1, "epoch": 0, "train_loss": 1.9, "train_ce": 1.9, "train_kl": 0.1, "train_acc_aug": 0.2,
       "val_acc": 0.19, "val_loss": 1.94, "time_s": 3.0, "images_per_s": 90.0}
DONE = {"gen": 1, "parent": 0, "teachers": [0], "seed": 1, "alpha": 0.7, "temperature": 4.0, "status": "done",
        "epochs": [ROW], "time_s": 8.2, "teacher_time_s": 0.4, "train_acc": 0.27, "train_loss": 1.8,
        "val_acc": 0.19, "val_loss": 1.9, "test_acc": 0.17, "test_loss": 1.9, "best_epoch": 0}
FAILED = {"gen": 2, "parent": 1, "teachers": [1], "seed": 2, "alpha": 0.7, "temperature": 4.0, "status": "failed",
          "epochs": [], "time_s": 1.0, "teacher_time_s": 0.1, "teacher_views": 4, "stop_reason": "non-finite ..."}
TOP = {"format_version": 1, "name": "run", "created": "2026-12-06T04:02:00+0000", "config": {"gens": 3},
       "data": {"fingerprint": "abc"}, "data_spec": None, "versions": {}, "generations": [DONE, FAILED],
       "final_generation": 1, "stop_reason": "completed all generations", "ensembles": {}, "model": {"params": 7}}


def test_the_typed_record_writes_the_same_json_key_for_key():
    assert json.dumps(LineageRecord(TOP).to_dict()) == json.dumps(TOP)
    record = LineageRecord(TOP)
    assert [e.gen for e in record.finished()] == [1] and record.entry(2).stop_reason == "non-finite ..."
    assert record.entry(1)["val_acc"] == 0.19 and record["generations"] == [DONE, FAILED]


def test_an_entry_of_an_older_writer_loads_and_keeps_what_it_does_not_know():
    old = {"gen": 0, "status": "done", "epochs": [], "time_s": 2.0, "val_acc": 0.5, "train_acc": 0.6,
           "best_epoch": 1, "note": "written by an earlier rnn-jax"}
    entry = GenerationEntry.from_dict(old)
    assert (entry.parent, entry.teachers, entry.teacher_time_s, entry.best_epoch) == (None, (), None, 1)
    again = entry.to_dict()
    assert {k: again[k] for k in old} == old and again["note"] == "written by an earlier rnn-jax"
    assert "teacher_time_s" not in again and "stop_reason" not in again


def test_a_run_with_an_old_style_lineage_json_resumes(tmp_path, blobs):
    config = RunConfig(model=ModelSpec("mlp", "tiny"), gens=1,
                       train=TrainConfig(epochs=1, batch_size=32, lr=1e-2, augment="none"))
    quiet = {"progress": False, "log": lambda _: None}
    run_lineage(config, blobs, tmp_path / "run", **quiet)
    on_disk = read_lineage(tmp_path / "run")
    old_gen0 = {k: v for k, v in on_disk["generations"][0].items() if k != "teacher_time_s"}
    old_gen0["note"] = "from an older rnn-jax"
    RunFolder(tmp_path / "run").write_record(LineageRecord({**on_disk, "generations": [old_gen0]}))

    record = run_lineage(RunConfig(**{**config.__dict__, "gens": 2}), blobs, tmp_path / "run", resume=True, **quiet)
    assert record["generations"][0] == old_gen0  # a finished generation is left exactly as it was
    assert record["generations"][1]["status"] == "done" and "teacher_time_s" in record["generations"][1]
    assert read_lineage(tmp_path / "run") == json.loads(json.dumps(record))
