"""rnn_jax.lineage.headroom: the seeds' generation-0 ensemble and "right in any", from stored logits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnn_jax.lineage.headroom import format_headroom, headroom, seed_headroom

# P(class 0) per model and example; every label is 0. Each model is right on one example
# (single 25%), the three together on two (ensemble 50%), one of them on three (right in any 75%).
P_RIGHT = np.array([[0.90, 0.40, 0.45, 0.10],
                    [0.45, 0.90, 0.45, 0.10],
                    [0.45, 0.45, 0.56, 0.10]])
LABELS = np.zeros(4, np.int64)


def _logits(p_right: np.ndarray) -> np.ndarray:
    return np.log(np.stack([p_right, 1 - p_right], axis=1))


def test_single_ensemble_and_right_in_any_differ_as_computed_by_hand():
    room = headroom([_logits(p) for p in P_RIGHT], LABELS)
    assert room["single_mean"] == pytest.approx(0.25) and room["single_best"] == pytest.approx(0.25)
    assert room["ensemble"] == pytest.approx(0.50)  # examples 0 and 1: mean P(0) 0.60, 0.58; example 2: 0.487
    assert room["right_in_any"] == pytest.approx(0.75)
    assert room["ensemble_gain"] == pytest.approx(0.25) and room["right_in_any_gain"] == pytest.approx(0.50)
    assert room["ensemble_by_size"] == {2: pytest.approx(0.50), 3: pytest.approx(0.50)}


def test_identical_models_have_no_headroom():
    room = headroom([_logits(P_RIGHT[0])] * 3, LABELS)
    assert room["ensemble_gain"] == 0.0 and room["right_in_any_gain"] == 0.0


def _run(folder, p_right, labels=LABELS, fingerprint="abc"):
    (folder / "gen_0").mkdir(parents=True)
    (folder / "labels").mkdir()
    np.save(folder / "gen_0" / "val_logits.npy", _logits(p_right).astype(np.float32))
    np.save(folder / "labels" / "val.npy", labels.astype(np.int32))
    (folder / "lineage.json").write_text(json.dumps({"data": {"fingerprint": fingerprint}}))
    return folder


def test_seed_headroom_reads_the_run_folders_and_refuses_other_examples(tmp_path):
    runs = [_run(tmp_path / f"seed_{i}", p) for i, p in enumerate(P_RIGHT)]
    room = seed_headroom(runs, "val")
    assert room["comparable"] and room["runs"] == ["seed_0", "seed_1", "seed_2"] and room["same_data_fingerprint"]
    assert room["ensemble"] == pytest.approx(0.50)
    assert "ensemble of 3 50.00 (+25.00); right in any 75.00 (+50.00)" in format_headroom(room)
    assert seed_headroom(runs, "test") is None  # no test logits stored
    other = _run(tmp_path / "seed_9", P_RIGHT[0], labels=np.array([0, 0, 1, 0]))
    refused = seed_headroom([*runs, other], "val")
    assert not refused["comparable"] and "seed_9" in refused["reason"]
    assert "not computed" in format_headroom(refused)


def test_the_study_table_shows_the_headroom_beside_the_final_student(tmp_path):
    from tools.study_table import format_markdown, setting_row

    study = tmp_path / "setting"
    for i, p in enumerate(P_RIGHT):
        run = _run(study / f"seed_{i}", p)
        accs = [0.25, 0.25 + 0.01 * i]
        record = {"config": {"gens": 2}, "final_generation": 1, "ensembles": {}, "data": {"fingerprint": "abc"},
                  "generations": [{"gen": g, "status": "done", "val_acc": a, "epochs": [{}]}
                                  for g, a in enumerate(accs)]}
        (run / "lineage.json").write_text(json.dumps(record))
    row = setting_row(study)
    assert row["gen-0 ensemble"] == "+25.00 (of 3)" and row["right in any gen 0"] == "+50.00"
    header = format_markdown([row]).splitlines()[0]
    assert header.index("final student Δ") < header.index("gen-0 ensemble") < header.index("right in any gen 0")


def test_runs_whose_split_is_drawn_with_the_seed_are_refused_though_their_labels_match(tmp_path):
    """Equal stored labels do not prove equal examples: with verify, each run's data is reloaded
    (here the built-in drawn set, which draws every split with the seed) and compared."""
    runs = []
    for i, (p, data_seed) in enumerate(zip(P_RIGHT, (0, 0, 1), strict=True)):
        run = _run(tmp_path / f"seed_{i}", p)
        spec = {"kind": "builtin", "image_size": 8, "seed": data_seed}
        (run / "lineage.json").write_text(json.dumps({"data": {"fingerprint": "x"}, "data_spec": spec}))
        runs.append(run)
    same = seed_headroom(runs[:2], "val", verify=True)
    assert same["comparable"] and same["same_examples"] == "verified"  # seeds 0 and 0: one drawn set
    refused = seed_headroom(runs, "val", verify=True)
    assert not refused["comparable"] and "seed_2" in refused["reason"] and "drawn with the seed" in refused["reason"]
    unverified = seed_headroom(runs, "val", verify=False)
    assert unverified["comparable"] and unverified["same_examples"] == "labels only"
    assert "not verified" in format_headroom(unverified)
