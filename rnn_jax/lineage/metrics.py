"""Classification metrics from labels and predictions, and the train-val gap verdict.

Pure numpy (no sklearn, no JAX) so reports can be rebuilt anywhere from stored logits.
Conventions, chosen to match scikit-learn's ``zero_division=0``:

- precision of a class nobody predicted is 0; recall of a class with no examples is 0;
- macro-F1 averages the F1 of the classes that occur in the labels *or* the predictions.
  A class absent from both says nothing about the model, so it does not drag the mean to 0
  (this only differs from scikit-learn when a split lacks a class entirely).
"""

from __future__ import annotations

import numpy as np

# Train-minus-validation accuracy (as a fraction) at which each verdict starts.
# Why these numbers: on the gesture sets here a run with a gap below ~3 points generalises as
# well as it trains (augmentation noise alone moves val accuracy by 1-2 points); 3-8 points is
# the usual price of a model that has memorised some examples and is still worth using; beyond
# 8 points more data, stronger augmentation or a smaller model pays off, and beyond 15 points the
# validation score is no longer a trustworthy estimate of what the training score suggests.
GAP_THRESHOLDS: tuple[tuple[float, str], ...] = (
    (0.03, "well fit"),
    (0.08, "slight overfitting"),
    (0.15, "moderate overfitting"),
)
SEVERE = "severe overfitting"
# A small gap only means "well fit" when the model has learnt the training set: below this clean
# training accuracy the model is still underfitting (train longer, or use a larger model), and a
# small gap says nothing about generalisation. Gesture classifiers that work reach well above it.
UNDERFIT_BELOW = 0.80
UNDERFIT = "underfitting"


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true, predicted], int64, shape (num_classes, num_classes)."""
    labels = np.asarray(labels, np.int64).ravel()
    predictions = np.asarray(predictions, np.int64).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.size} labels but {predictions.size} predictions")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} fall outside 0..{num_classes - 1}")
    flat = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, np.float64)
    denominator = np.asarray(denominator, np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def per_class_metrics(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """precision, recall, f1 (float64) and support (int64) per class, from a confusion matrix."""
    confusion = np.asarray(confusion)
    true_positive = np.diag(confusion)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    precision = _safe_divide(true_positive, predicted)
    recall = _safe_divide(true_positive, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def accuracy(confusion: np.ndarray) -> float:
    total = np.asarray(confusion).sum()
    return float(np.trace(confusion) / total) if total else 0.0


def macro_f1(confusion: np.ndarray) -> float:
    """Mean F1 over the classes present in the labels or the predictions (see module doc)."""
    confusion = np.asarray(confusion)
    present = (confusion.sum(axis=0) + confusion.sum(axis=1)) > 0
    if not present.any():
        return 0.0
    return float(per_class_metrics(confusion)["f1"][present].mean())


def classification_report(labels: np.ndarray, predictions: np.ndarray,
                          class_names: list[str] | tuple[str, ...]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix, JSON-ready."""
    confusion = confusion_matrix(labels, predictions, len(class_names))
    per_class = per_class_metrics(confusion)
    return {
        "n": int(confusion.sum()),
        "accuracy": accuracy(confusion),
        "macro_f1": macro_f1(confusion),
        "per_class": [
            {"class": str(name), "precision": float(per_class["precision"][i]),
             "recall": float(per_class["recall"][i]), "f1": float(per_class["f1"][i]),
             "support": int(per_class["support"][i])}
            for i, name in enumerate(class_names)
        ],
        "confusion": confusion.tolist(),
    }


def gap_verdict(gap: float, train_accuracy: float | None = None) -> str:
    """Plain words for a train-minus-validation accuracy gap (a fraction, e.g. 0.05 = 5 points).

    A negative gap (validation above training, common with augmentation or dropout) is well fit,
    unless ``train_accuracy`` is below UNDERFIT_BELOW: then it is underfitting. Rounded first so
    that 0.93 - 0.90 lands on the 3-point boundary, not a hair below it.
    """
    gap = round(float(gap), 9)
    for upper, verdict in GAP_THRESHOLDS:
        if gap < upper:
            if verdict == GAP_THRESHOLDS[0][1] and train_accuracy is not None and train_accuracy < UNDERFIT_BELOW:
                return UNDERFIT
            return verdict
    return SEVERE


def fit_summary(train_accuracy: float, val_accuracy: float) -> dict:
    """The gap between clean-train and validation accuracy, and its verdict."""
    gap = float(train_accuracy) - float(val_accuracy)
    return {"train_acc": float(train_accuracy), "val_acc": float(val_accuracy), "gap": gap,
            "verdict": gap_verdict(gap, train_accuracy)}
