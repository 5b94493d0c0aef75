"""Metrics against hand-computed values, and the train-val gap verdict thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from rnn_jax.lineage.metrics import (
    GAP_THRESHOLDS,
    UNDERFIT_BELOW,
    accuracy,
    classification_report,
    confusion_matrix,
    fit_summary,
    gap_verdict,
    macro_f1,
    per_class_metrics,
)

# 3 classes, 6 examples. By hand:
#   confusion (rows true, cols predicted) = [[2,1,0],[0,1,1],[0,0,1]]
#   precision = TP / column sum = [2/2, 1/2, 1/2];  recall = TP / row sum = [2/3, 1/2, 1/1]
#   F1 = 2PR/(P+R) = [0.8, 0.5, 2/3];  macro-F1 = (0.8 + 0.5 + 2/3) / 3 = 59/90;  accuracy = 4/6
LABELS = np.array([0, 0, 0, 1, 1, 2])
PREDICTIONS = np.array([0, 0, 1, 1, 2, 2])


def test_confusion_matrix_counts_true_rows_predicted_columns():
    np.testing.assert_array_equal(confusion_matrix(LABELS, PREDICTIONS, 3), [[2, 1, 0], [0, 1, 1], [0, 0, 1]])


def test_per_class_and_macro_metrics_match_hand_computed_values():
    cm = confusion_matrix(LABELS, PREDICTIONS, 3)
    m = per_class_metrics(cm)
    np.testing.assert_allclose(m["precision"], [1.0, 0.5, 0.5])
    np.testing.assert_allclose(m["recall"], [2 / 3, 0.5, 1.0])
    np.testing.assert_allclose(m["f1"], [0.8, 0.5, 2 / 3])
    np.testing.assert_array_equal(m["support"], [3, 2, 1])
    assert macro_f1(cm) == pytest.approx(59 / 90)
    assert accuracy(cm) == pytest.approx(4 / 6)


def test_zero_division_conventions():
    # class 2 is predicted but never true: precision 0, F1 0, counted in macro-F1;
    # class 3 is neither true nor predicted: left out of macro-F1 instead of counting as 0.
    cm = confusion_matrix(np.array([0, 1]), np.array([0, 2]), 4)
    m = per_class_metrics(cm)
    np.testing.assert_allclose(m["precision"], [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(m["recall"], [1.0, 0.0, 0.0, 0.0])
    assert macro_f1(cm) == pytest.approx(1 / 3)
    assert macro_f1(np.zeros((2, 2), int)) == 0.0


def test_classification_report_is_json_ready_and_named():
    report = classification_report(LABELS, PREDICTIONS, ["fist", "palm", "like"])
    assert report["n"] == 6
    assert report["per_class"][0] == {"class": "fist", "precision": 1.0, "recall": pytest.approx(2 / 3),
                                      "f1": pytest.approx(0.8), "support": 3}
    assert report["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert isinstance(report["confusion"][0][0], int)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="labels but"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 2)
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 2)


@pytest.mark.parametrize(("gap", "verdict"), [
    (-0.10, "well fit"), (0.0, "well fit"), (0.0299, "well fit"),
    (0.03, "slight overfitting"), (0.0799, "slight overfitting"),
    (0.08, "moderate overfitting"), (0.1499, "moderate overfitting"),
    (0.15, "severe overfitting"), (0.60, "severe overfitting"),
])
def test_gap_verdict_thresholds(gap, verdict):
    assert gap_verdict(gap) == verdict


def test_thresholds_are_the_documented_ones_and_boundaries_survive_float_noise():
    assert [t for t, _ in GAP_THRESHOLDS] == [0.03, 0.08, 0.15]
    assert 0.93 - 0.90 != 0.03  # float noise ...
    assert fit_summary(0.93, 0.90)["verdict"] == "slight overfitting"  # ... does not move the boundary
    assert fit_summary(0.98, 0.99) == {"train_acc": 0.98, "val_acc": 0.99, "gap": pytest.approx(-0.01),
                                       "verdict": "well fit"}


def test_a_small_gap_with_low_train_accuracy_is_underfitting_not_well_fit():
    assert UNDERFIT_BELOW == 0.80
    assert fit_summary(0.39, 0.385)["verdict"] == "underfitting"
    assert fit_summary(0.80, 0.79)["verdict"] == "well fit"
    assert gap_verdict(0.01, train_accuracy=0.79) == "underfitting"
    assert gap_verdict(0.20, train_accuracy=0.50) == "severe overfitting"  # overfitting still wins
