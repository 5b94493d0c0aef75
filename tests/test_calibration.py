"""The reject rule's pure functions: ECE, temperature fitting, the threshold for a false-trigger rate."""

from __future__ import annotations

import numpy as np
import pytest

from rnn_jax.calibration import (
    choose_reject_rule,
    expected_calibration_error,
    fit_temperature,
    shown_gestures,
    softmax,
)


def test_ece_is_zero_when_confidence_matches_accuracy_and_the_gap_otherwise() -> None:
    # 10 rows at confidence 0.8, 8 of them right: calibrated
    probs = np.tile([[0.8, 0.2]], (10, 1))
    labels = np.array([0] * 8 + [1] * 2)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0)
    # all right at confidence 0.6: ECE = 0.4
    assert expected_calibration_error(np.tile([[0.6, 0.4]], (10, 1)), np.zeros(10, int)) == pytest.approx(0.4)


def test_fit_temperature_recovers_the_temperature_the_labels_were_drawn_at() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20000, 5))
    labels = np.array([rng.choice(5, p=p) for p in softmax(logits, temperature=2.5)])
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.05)


def test_threshold_is_the_smallest_that_keeps_resting_hands_under_the_target() -> None:
    # class 2 = no_gesture; resting hands predicted as gesture 0 with rising confidence
    rng = np.random.default_rng(1)
    gestures = np.eye(3)[rng.integers(0, 2, 200)] * 8.0
    resting = np.stack([np.linspace(0, 6, 40), np.zeros(40), np.full(40, 3.0)], 1)
    logits = np.concatenate([gestures, resting])
    labels = np.concatenate([gestures.argmax(1), np.full(40, 2)])
    rule = choose_reject_rule(logits, labels, reject_index=2, max_false_trigger=0.1)
    probs = softmax(logits, temperature=rule.temperature)
    rate = lambda t: float((shown_gestures(probs, t, 2)[200:] >= 0).mean())  # noqa: E731
    assert rate(rule.threshold) <= 0.1 == rule.max_false_trigger
    assert rule.false_trigger_rate == pytest.approx(rate(rule.threshold))
    assert rate(round(rule.threshold - 0.01, 2)) > 0.1  # the smallest such threshold
    assert rule.resting_hands == 40 and rule.gesture_hands == 200


def test_no_gesture_as_top_class_is_never_shown() -> None:
    probs = np.array([[0.1, 0.2, 0.7], [0.7, 0.2, 0.1], [0.5, 0.4, 0.1]])
    assert shown_gestures(probs, 0.6, reject_index=2).tolist() == [-1, 0, -1]
    assert shown_gestures(probs, 0.0, reject_index=None).tolist() == [2, 0, 0]


def test_a_bad_target_is_refused() -> None:
    with pytest.raises(ValueError, match="max_false_trigger"):
        choose_reject_rule(np.zeros((2, 2)), np.array([0, 1]), None, 1.5)
