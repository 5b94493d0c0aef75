"""tools/crossfit_hagrid.py: every choice made on one half of the people and scored on the other."""

from __future__ import annotations

import numpy as np
import pytest

from tools.crossfit_hagrid import crossfit_offline, pooled_live

CLASSES = ["like", "palm", "no_gesture"]


def _logits(right: np.ndarray, labels: np.ndarray, margin: float) -> np.ndarray:
    """Logits that put ``margin`` on the label where ``right``, else on the next class."""
    out = np.zeros((len(labels), len(CLASSES)))
    top = np.where(right, labels, (labels + 1) % len(CLASSES))
    out[np.arange(len(labels)), top] = margin
    return out


def test_each_half_is_scored_under_the_generation_the_other_half_chose():
    # 8 hands: half A = rows 0-3, half B = rows 4-7. Generation 1 is right on all of A and half of B,
    # generation 0 on half of A and all of B: A prefers 1, B prefers 0.
    labels = np.array([0, 1, 0, 2, 0, 1, 0, 2])
    halves = np.array(["A"] * 4 + ["B"] * 4)
    right0 = np.array([1, 0, 1, 0, 1, 1, 1, 1], bool)
    right1 = np.array([1, 1, 1, 1, 1, 0, 1, 0], bool)
    logits = {0: _logits(right0, labels, 3.0), 1: _logits(right1, labels, 3.0)}
    record = {"data": {"class_names": CLASSES}, "config": {"final_by": "val_acc"}}
    fitted = crossfit_offline(record, labels, logits, halves, max_false_trigger=0.5)
    assert fitted["A"]["chosen_on"] == "B" and fitted["A"]["gen"] == 0  # B's choice, scored on A
    assert fitted["B"]["chosen_on"] == "A" and fitted["B"]["gen"] == 1
    assert fitted["A"]["accuracy"] == 0.5 and fitted["B"]["accuracy"] == 0.5
    assert fitted["A"]["gen0_accuracy"] == 0.5 and fitted["B"]["gen0_accuracy"] == 1.0
    assert fitted["both"]["accuracy"] == 0.5 and fitted["both"]["gen0_accuracy"] == 0.75
    # chosen and scored on the same (all) hands: both generations are 6 of 8, ties go to the lower loss
    assert fitted["same data"]["accuracy"] == 0.75 and fitted["same data"]["hands"] == 8


def test_a_half_without_hands_is_an_error():
    from rnn_jax.errors import DataError

    labels = np.array([0, 1])
    record = {"data": {"class_names": CLASSES}, "config": {}}
    with pytest.raises(DataError, match="no hands"):
        crossfit_offline(record, labels, {0: _logits(np.ones(2, bool), labels, 1.0)}, np.array(["A", "A"]), 0.1)


def test_both_halves_pool_by_frames():
    def half(right, frames, resting, lost, triggered):
        return {"live_gesture_right": right, "live_gesture_wrong": 0.0, "live_gesture_lost": 1 - right,
                "live_resting_triggered": triggered, "live_resting_lost": lost / resting,
                "gesture_frames": frames, "resting_frames": resting, "resting_lost": lost, "resting_triggered": 0}

    a, b = half(0.9, 100, 10, 0, 0.1), half(0.6, 300, 20, 10, 0.2)
    live = {"A": {"at_offline_threshold": a, "at_live_threshold": a}, "B": {"at_offline_threshold": b,
                                                                          "at_live_threshold": None}}
    pooled = pooled_live(live)
    assert pooled["at_offline_threshold"]["live_gesture_right"] == pytest.approx((90 + 180) / 400)
    assert pooled["at_offline_threshold"]["live_resting_triggered"] == pytest.approx((0.1 * 10 + 0.2 * 10) / 20)
    assert pooled["at_offline_threshold"]["live_resting_lost"] == pytest.approx(10 / 30)
    assert pooled["at_live_threshold"] is None  # one half had no threshold within the target
