"""The stored softmax temperature: kept only where it lowers ECE on held-out validation folds."""

from __future__ import annotations

import numpy as np
import pytest

from rnn_jax.calibration import (
    choose_reject_rule,
    choose_temperature,
    expected_calibration_error,
    fit_temperature,
    fit_temperature_ece,
)
from rnn_jax.softmax import softmax


def confident_mistakes(n: int = 2000, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated at T = 1 (4% wrong at ~96% confidence), but the wrong rows put their true class far
    down: the NLL fit softens everything to reach them (the README's HaGRID model's pattern)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    wrong = np.arange(n) % 25 == 0
    top = np.where(wrong, (labels + 1) % k, labels)
    logits = np.zeros((n, k))
    logits[np.arange(n), top] = 4.56 + rng.normal(0, 0.3, n)
    logits[wrong, labels[wrong]] = -8.0
    return logits, labels


def test_a_temperature_that_raises_ece_is_not_kept() -> None:
    logits, labels = confident_mistakes()
    before = expected_calibration_error(softmax(logits), labels)
    nll_t = fit_temperature(logits, labels)
    assert nll_t > 1.2 and expected_calibration_error(softmax(logits, temperature=nll_t), labels) > before + 0.05
    choice = choose_temperature(logits, labels)
    assert choice.heldout_ece["nll"] > choice.heldout_ece["none"]  # the held-out folds see it too
    assert (choice.method, choice.temperature) == ("none", 1.0)
    assert choice.ece_before == choice.ece_after == pytest.approx(before)
    rule = choose_reject_rule(logits, labels, reject_index=None)
    assert (rule.temperature, rule.temperature_method) == (1.0, "none")
    assert rule.ece_after == pytest.approx(before)
    line = rule.calibration_line()
    assert f"val ECE {before:.3f} -> {before:.3f}" in line and "kept T = 1" in line and "NLL fit" in line


def test_a_fit_is_kept_where_it_lowers_heldout_ece() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 5))
    labels = np.array([rng.choice(5, p=p) for p in softmax(logits, temperature=2.5)])  # overconfident x2.5
    choice = choose_temperature(logits, labels)
    assert choice.method in ("nll", "ece") and choice.temperature == pytest.approx(2.5, rel=0.2)
    assert choice.heldout_ece[choice.method] < choice.heldout_ece["none"] / 2
    assert choice.ece_after < choice.ece_before / 2
    rule = choose_reject_rule(logits, labels, reject_index=None)
    assert rule.temperature == pytest.approx(choice.temperature, abs=1e-4)
    assert f"val ECE {choice.ece_before:.3f} -> {choice.ece_after:.3f}" in rule.calibration_line()


def test_the_ece_fit_stays_within_its_grid_and_prefers_one_on_ties() -> None:
    logits = np.tile([[2.0, 0.0]], (10, 1))
    labels = np.zeros(10, int)  # all right: ECE falls as T -> 0, the grid stops at 1/5
    assert fit_temperature_ece(logits, labels) == pytest.approx(0.2)
    assert fit_temperature_ece(np.zeros((10, 3)), np.arange(10) % 3) == 1.0  # every T alike: T = 1


def test_too_few_rows_keep_t_one() -> None:
    choice = choose_temperature(np.array([[3.0, 0.0]] * 4), np.array([0, 0, 1, 1]))
    assert (choice.method, choice.temperature) == ("none", 1.0)
