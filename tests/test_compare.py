"""Run reports and tools/compare.py on tiny fake run folders (lineage.json + logits; no training)."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest

from rnn_jax.config import RunConfig, TrainConfig
from rnn_jax.lineage.record import write_json_atomic
from rnn_jax.lineage.run_report import read_report, store_labels, write_run_report
from rnn_jax.models.registry import ModelSpec

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["fist", "palm", "peace"]
VAL_LABELS = np.array([0, 0, 1, 1, 2, 2, 0, 1, 2, 0])
TRAIN_LABELS = np.array([0, 1, 2] * 4)


def _logits(predictions: np.ndarray) -> np.ndarray:
    """Confident logits that predict exactly ``predictions``."""
    out = np.zeros((len(predictions), len(CLASSES)), np.float32)
    out[np.arange(len(predictions)), predictions] = 5.0
    return out


def _with_errors(labels: np.ndarray, wrong: int) -> np.ndarray:
    """The labels with the first ``wrong`` examples moved to the next class."""
    predictions = labels.copy()
    predictions[:wrong] = (predictions[:wrong] + 1) % len(CLASSES)
    return predictions


def make_run(root: Path, name: str, size: str, val_wrong: list[int], train_wrong: list[int],
             fingerprint: str = "same-data") -> Path:
    """A finished two-or-more-generation run of an 8x8 grey mlp, as the driver would leave it."""
    run = root / name
    config = RunConfig(model=ModelSpec("mlp", size), train=TrainConfig(epochs=1, batch_size=4), gens=len(val_wrong))
    generations = []
    for gen, (vw, tw) in enumerate(zip(val_wrong, train_wrong)):
        folder = run / f"gen_{gen}"
        folder.mkdir(parents=True)
        np.save(folder / "val_logits.npy", _logits(_with_errors(VAL_LABELS, vw)))
        np.save(folder / "train_logits.npy", _logits(_with_errors(TRAIN_LABELS, tw)))
        generations.append({"gen": gen, "status": "done", "best_epoch": 0, "time_s": 10.0 + gen,
                            "val_acc": 1 - vw / len(VAL_LABELS), "train_acc": 1 - tw / len(TRAIN_LABELS),
                            "epochs": [{"epoch": 0, "train_loss": 1.0, "val_loss": 1.1, "val_acc": 0.5}]})
    final = max(generations, key=lambda g: (g["val_acc"], -g["gen"]))["gen"]
    record = {"format_version": 1, "name": name, "config": config.to_dict(),
              "data": {"name": "fake", "fingerprint": fingerprint, "class_names": CLASSES, "image_shape": [8, 8, 1],
                       "sizes": {"train_used": 12, "train": 12, "val": 10}},
              "data_spec": None, "generations": generations, "final_generation": final, "stop_reason": "done",
              "ensembles": {"all": {"members": [g["gen"] for g in generations]}},
              "model": {"label": config.model.label, "params": 0}}
    write_json_atomic(run / "lineage.json", record)
    store_labels(run, {"train": TRAIN_LABELS, "val": VAL_LABELS})
    return run


@pytest.fixture(scope="module")
def compare():
    spec = importlib.util.spec_from_file_location("compare_under_test", REPO / "tools" / "compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    make_run(root, "run_tiny", "tiny", val_wrong=[4, 3], train_wrong=[0, 0])     # val 0.7 at gen 1: gap 0.30
    make_run(root, "run_small", "small", val_wrong=[2, 1], train_wrong=[1, 0])   # val 0.9 at gen 1: gap 0.10
    (root / "notes.txt").write_text("not a run")
    return root


def test_run_report_numbers_files_and_verdict(runs: Path):
    report, files = write_run_report(runs / "run_small")
    assert {p.name for p in files} >= {"report.json", "report.md", "confusion_matrix.png",
                                       "confusion_matrix_ensemble.png"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in files)
    assert read_report(runs / "run_small")["final_generation"] == 1
    gen1 = next(m for m in report["models"] if m["name"] == "gen 1")
    val = gen1["splits"]["val"]
    # gen 1 gets only example 0 (a fist) wrong, calling it palm
    assert val["accuracy"] == pytest.approx(0.9)
    assert val["confusion"][0] == [3, 1, 0]
    assert val["per_class"][0]["recall"] == pytest.approx(3 / 4)
    assert val["per_class"][1]["precision"] == pytest.approx(3 / 4)
    assert gen1["fit"] == {"train_acc": 1.0, "val_acc": pytest.approx(0.9), "gap": pytest.approx(0.1),
                           "verdict": "moderate overfitting"}
    assert "train" in gen1["splits"] and "per_class" not in gen1["splits"]["train"]
    assert report["model"]["params"] > 0 and report["model"]["gflops_per_image"] > 0
    assert report["time_s"] == pytest.approx(21.0)
    ensemble = next(m for m in report["models"] if m["kind"] == "ensemble")
    assert ensemble["members"] == [0, 1] and "val" in ensemble["splits"]
    text = (runs / "run_small" / "report.md").read_text()
    assert "moderate overfitting" in text and "| fist |" in text


def test_compare_table_marks_the_best_run_and_sorts(runs: Path, compare, capsys):
    rows = compare.main([str(runs / "*"), "--chart", str(runs / "chart.png")])
    out = capsys.readouterr().out
    assert [r["run"] for r in rows] == ["run_tiny", "run_small"]  # default: cheapest GFLOPs first
    assert "run_small *" in out and "run_tiny *" not in out
    assert "best run: run_small" in out and "severe overfitting" in out
    assert "test acc" not in out  # no run has a test split
    assert (runs / "chart.png").stat().st_size > 0
    rows = compare.sort_rows(rows, "val_acc")
    assert [r["run"] for r in rows] == ["run_small", "run_tiny"]
    assert [r["run"] for r in compare.sort_rows(rows, "val_acc", reverse=True)] == ["run_tiny", "run_small"]


def test_compare_csv_and_markdown(runs: Path, compare, capsys):
    compare.main([str(runs / "run_tiny"), str(runs / "run_small"), "--csv", "--no-chart"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["run"], r["best"]) for r in rows] == [("run_tiny", "0"), ("run_small", "1")]
    assert float(rows[1]["val_acc"]) == pytest.approx(0.9) and rows[1]["verdict"] == "moderate overfitting"
    compare.main([str(runs / "run_small"), "--markdown", str(runs / "t.md"), "--no-chart"])
    assert (runs / "t.md").read_text().startswith("| run | model | size |")


def test_a_path_that_is_not_a_run_is_one_line_and_exit_2(runs: Path, compare, capsys):
    from rnn_jax.errors import main_guard

    for bad in (str(runs / "notes.txt"), str(runs / "nothing-*")):
        with pytest.raises(SystemExit) as exit_info:
            main_guard(compare.main, [bad, "--no-chart"])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err


def test_current_report_is_read_and_stale_one_rebuilt_in_memory(compare, tmp_path: Path):
    run = make_run(tmp_path, "fresh", "tiny", val_wrong=[0, 5], train_wrong=[0, 0])
    (run / "report.json").write_text(json.dumps({"junk": True}))
    row = compare.run_summary(run)  # unreadable report: rebuilt from the logits, F1 included
    assert row["best_gen"] == 0 and row["val_f1"] == 1.0 and row["verdict"] == "well fit"
    assert json.loads((run / "report.json").read_text()) == {"junk": True}  # compare writes nothing

    report, _ = write_run_report(run)
    report["model"]["label"] = "read-from-report.json"
    (run / "report.json").write_text(json.dumps(report))
    assert compare.run_summary(run)["model"] == "read-from-report.json"
    record = json.loads((run / "lineage.json").read_text())
    record["final_generation"] = 1  # e.g. the run changed since its report was written
    write_json_atomic(run / "lineage.json", record)
    row = compare.run_summary(run)
    assert row["model"] == "mlp-tiny" and row["best_gen"] == 1 and row["val_acc"] == pytest.approx(0.5)


def test_sweep_runs_each_size_with_the_same_flags_then_compares(tmp_path: Path, monkeypatch, capsys):
    import types

    from experiments import sweep

    calls = []

    def fake_main(argv):  # stands in for experiments.hagrid.main: leaves a finished run behind
        calls.append(argv)
        out = Path(argv[argv.index("--out") + 1])
        size = argv[argv.index("--size") + 1]
        make_run(out.parent, out.name, size, val_wrong=[3, 2] if size == "tiny" else [1, 1], train_wrong=[0, 0])

    monkeypatch.setattr(sweep, "load_experiment", lambda name: types.SimpleNamespace(main=fake_main))
    sweep.main(["--sizes", "tiny,small", "--model", "mlp", "--out", str(tmp_path / "sw"), "--data", "D",
                "--seed", "3"])
    assert calls == [["--data", "D", "--seed", "3", "--model", "mlp", "--size", size, "--out",
                      str(tmp_path / "sw" / f"mlp-{size}")] for size in ("tiny", "small")]
    out = capsys.readouterr().out
    assert "mlp-small *" in out and "best run: mlp-small" in out
    for name in ("compare.png", "compare.csv", "compare.md"):
        assert (tmp_path / "sw" / name).stat().st_size > 0
    assert sweep.run_argv([], "tiny", tmp_path / "sw" / "mlp-tiny")[-1] == "--resume"  # reruns continue


def test_sweep_refuses_bad_sizes_and_flags_it_owns():
    from experiments import sweep
    from rnn_jax.errors import ConfigError

    assert sweep.parse_sizes("tiny, small,tiny") == ["tiny", "small"]
    with pytest.raises(ConfigError, match="--sizes"):
        sweep.parse_sizes("tiny,huge")
    with pytest.raises(ConfigError, match="no size presets"):
        sweep.main(["--model", "resnet18"])
    for owned in (["--size", "small"], ["--size=small"]):  # no abbreviation of --sizes either
        with pytest.raises(ConfigError, match="sets --size for each run"):
            sweep.main(["--sizes", "tiny", *owned, "--gens", "1"])


@pytest.mark.slow
def test_every_run_ends_with_its_report(tmp_path: Path, blobs, capsys):
    """run_experiment (what every experiment calls) writes the report beside the run."""
    import argparse

    from experiments.common import run_experiment
    from experiments.flags import add_common_flags

    parser = argparse.ArgumentParser()
    add_common_flags(parser, gens=2, epochs=1, model="mlp", size="tiny", batch_size=32, lr=1e-2)
    args = parser.parse_args(["--out", str(tmp_path / "run"), "--no-progress", "--augment", "none"])
    run_experiment(args, "blobs", lambda _: (None, blobs))
    run = tmp_path / "run"
    for name in ("report.json", "report.md", "confusion_matrix.png", "confusion_matrix_ensemble.png",
                 "loss_curves.png", "labels/train.npy", "labels/test.npy"):
        assert (run / name).is_file(), name
    report = read_report(run)
    final = next(m for m in report["models"] if m.get("gen") == report["final_generation"])
    assert final["splits"]["val"]["accuracy"] == pytest.approx(json.loads((run / "lineage.json").read_text())
                                                              ["generations"][report["final_generation"]]["val_acc"])
    assert report["headline_split"] == "test" and "test" in final["splits"]
    assert "report: gen" in capsys.readouterr().out
