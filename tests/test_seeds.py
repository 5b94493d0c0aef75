"""Paired statistics over seeds (tools/multi_seed.py's numbers)."""

from __future__ import annotations

import math

import pytest

from rnn_jax.lineage.seeds import format_paired, lineage_epochs, paired_difference, paired_rows


def test_paired_interval_matches_a_hand_computed_t_interval():
    out = paired_difference([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert out["mean"] == pytest.approx(2.0)
    assert (out["lo"], out["hi"]) == pytest.approx((2.0 - half, 2.0 + half))
    assert out["verdict"] == "within noise"  # the interval [-0.48, 4.48] contains 0


def test_verdicts():
    assert paired_difference([1.1, 1.2, 1.3, 1.2], [1.0, 1.0, 1.0, 1.0])["verdict"] == "better"
    assert paired_difference([0.9, 0.8, 0.85], [1.0, 1.0, 1.0])["verdict"] == "worse"
    assert paired_difference([1.0], [0.5])["verdict"] == "too few seeds"


def _record(accs, final, ensemble=None, epochs=3):
    gens = [{"gen": i, "status": "done", "val_acc": a, "test_acc": a, "epochs": [{}] * epochs}
            for i, a in enumerate(accs)]
    return {"generations": gens, "final_generation": final,
            "ensembles": {} if ensemble is None else {"all": {"test_acc": ensemble, "members": [0, 1]}}}


def test_paired_rows_pair_each_seed_with_its_own_generation_zero():
    # generation 0 varies a lot between seeds, the gain of gen 1 is steady: paired, it is clear
    records = [_record([0.80, 0.81], 1, 0.815), _record([0.90, 0.91], 1, 0.912), _record([0.70, 0.712], 1, 0.71)]
    baselines = [_record([0.805], 0), _record([0.90], 0), _record([0.70], 0)]
    rows = {r["comparison"]: r for r in paired_rows(records, baselines)}
    assert rows["gen 1 - gen 0"]["verdict"] == "better"
    assert rows["gen 1 - gen 0"]["mean"] == pytest.approx(0.0107, abs=1e-4)
    assert rows["final student - gen 0"]["mean"] == pytest.approx(rows["gen 1 - gen 0"]["mean"])
    assert rows["ensemble all - gen 0"]["n"] == 3
    assert rows["ensemble all - final student"]["mean"] == pytest.approx((0.005 + 0.002 - 0.002) / 3)
    assert rows["final student - compute-matched"]["mean"] == pytest.approx((0.005 + 0.01 + 0.012) / 3)
    assert "gen 1 - gen 0" in format_paired(list(rows.values()))
    assert lineage_epochs(records[0]) == 6


def test_named_baselines_each_get_their_own_rows():
    records = [_record([0.80, 0.81], 1), _record([0.90, 0.92], 1)]
    smoothed = [_record([0.805], 0), _record([0.91], 0)]
    longer = [_record([0.79], 0), _record([0.89], 0)]
    rows = {r["comparison"]: r for r in paired_rows(records, {"label-smoothing": smoothed, "compute-matched": longer})}
    assert rows["label-smoothing gen 0 - gen 0"]["diffs"] == pytest.approx([0.005, 0.01])
    assert rows["final student - label-smoothing"]["diffs"] == pytest.approx([0.005, 0.01])
    assert rows["final student - compute-matched"]["diffs"] == pytest.approx([0.02, 0.03])


def test_without_a_test_split_the_comparison_is_on_validation():
    records = [_record([0.5, 0.6], 1), _record([0.5, 0.7], 1)]
    for r in records:
        for g in r["generations"]:
            del g["test_acc"]
    rows = paired_rows(records)
    assert rows[0]["metric"] == "val_acc" and "val accuracy" in format_paired(rows)
