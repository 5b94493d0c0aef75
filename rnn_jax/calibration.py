"""Calibration and the live reject rule, chosen on validation logits (numpy only, pure functions).

Why: a live recogniser must show *no gesture* for a resting hand. With a ``no_gesture`` class
that is the class's job, backed by a threshold on the top probability; both only mean
something when the probabilities are calibrated. So: measure calibration (ECE), choose one
softmax temperature on validation (:func:`choose_temperature`), then pick the smallest threshold
whose false-trigger rate on validation resting hands is at most the stated target. The exporter
stores temperature and threshold in the ONNX metadata; the runtime and the live program use
them by default.

Why the temperature is not simply the NLL fit: the lowest-NLL temperature need not lower ECE
(on the README's HaGRID model it raised validation ECE from 0.059 to 0.083). So the temperature
is chosen by held-out ECE: T = 1, the NLL fit and the ECE fit are each fitted on 4/5 of the
validation rows and scored on the other fifth (5 folds); the method with the lowest held-out
ECE is fitted on all rows, and T = 1 stays unless a fit beats it there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rnn_jax.softmax import softmax

ECE_BINS = 15
TEMPERATURE_FOLDS = 5
TEMPERATURE_METHODS = ("none", "nll", "ece")  # T = 1, lowest NLL, lowest ECE
DEFAULT_MAX_FALSE_TRIGGER = 0.10  # of validation resting (no_gesture) hands shown as some gesture (docs/hagrid.md)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the confidence-weighted gap |accuracy - confidence| over equal-width confidence bins."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    confidence, correct = probs.max(axis=1), (probs.argmax(axis=1) == labels)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    p = softmax(logits, temperature=temperature)[np.arange(len(labels)), np.asarray(labels)]
    return float(-np.log(np.clip(p, 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, low: float = 0.05, high: float = 20.0) -> float:
    """The temperature with the lowest validation NLL (golden-section search on log T; NLL is
    unimodal in T for fixed logits)."""
    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    for _ in range(60):
        if negative_log_likelihood(logits, labels, np.exp(c)) < negative_log_likelihood(logits, labels, np.exp(d)):
            b = d
        else:
            a = c
        c, d = b - ratio * (b - a), a + ratio * (b - a)
    return float(np.exp((a + b) / 2))


def fit_temperature_ece(logits: np.ndarray, labels: np.ndarray, low: float = 0.2, high: float = 5.0,
                        points: int = 81) -> float:
    """The temperature with the lowest ECE on a log-spaced grid (ECE is piecewise constant in T, so no
    search by slope); among equal ECEs the one closest to T = 1.

    The grid stops at 1/5 and 5: on a validation set the model gets nearly all right, ECE keeps
    falling as T -> 0 (every confidence pushed to 1), which would leave the live threshold
    nothing to separate."""
    grid = np.exp(np.linspace(np.log(low), np.log(high), points))
    grid = np.append(grid, 1.0)
    eces = np.array([expected_calibration_error(softmax(logits, temperature=t), labels) for t in grid])
    best = np.flatnonzero(eces <= eces.min() + 1e-12)
    return float(grid[best[np.argmin(np.abs(np.log(grid[best])))]])


_FITS = {"none": lambda logits, labels: 1.0, "nll": fit_temperature, "ece": fit_temperature_ece}


@dataclass(frozen=True)
class TemperatureChoice:
    """The temperature kept, how it was fitted, and the ECEs that chose it."""

    temperature: float
    method: str  # one of TEMPERATURE_METHODS
    heldout_ece: dict[str, float]  # per method: ECE on the held-out folds (the figures that chose it)
    ece_before: float  # all validation rows, T = 1
    ece_after: float  # all validation rows, the kept temperature (optimistic for "ece": fitted on them)


def choose_temperature(logits: np.ndarray, labels: np.ndarray, folds: int = TEMPERATURE_FOLDS,
                       seed: int = 0) -> TemperatureChoice:
    """T = 1, the NLL fit or the ECE fit: whichever has the lowest ECE on held-out folds of these rows
    (T = 1 unless a fit is strictly lower), then fitted on all of them."""
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
    n = len(labels)
    heldout = {m: float("nan") for m in TEMPERATURE_METHODS}
    method = "none"
    if n >= 2 * folds:
        part = np.random.default_rng(seed).permutation(n) % folds
        for m in TEMPERATURE_METHODS:
            total = 0.0
            for k in range(folds):
                fit_rows, test_rows = part != k, part == k
                t = _FITS[m](logits[fit_rows], labels[fit_rows])
                total += test_rows.sum() * expected_calibration_error(
                    softmax(logits[test_rows], temperature=t), labels[test_rows])
            heldout[m] = float(total / n)
        best = min(TEMPERATURE_METHODS, key=lambda m: (heldout[m], m != "none"))
        method = best if heldout[best] < heldout["none"] else "none"
    temperature = _FITS[method](logits, labels)
    return TemperatureChoice(temperature=float(temperature), method=method, heldout_ece=heldout,
                             ece_before=expected_calibration_error(softmax(logits), labels),
                             ece_after=expected_calibration_error(softmax(logits, temperature=temperature), labels))


def shown_gestures(probs: np.ndarray, threshold: float, reject_index: int | None) -> np.ndarray:
    """Index of the gesture shown per row, -1 = no gesture (top class rejected or below threshold)."""
    top, confidence = probs.argmax(axis=1), probs.max(axis=1)
    shown = np.where(confidence >= threshold, top, -1)
    if reject_index is not None:
        shown = np.where(top == reject_index, -1, shown)
    return shown


@dataclass(frozen=True)
class RejectRule:
    """What the exporter stores and the note reports."""

    temperature: float
    threshold: float
    max_false_trigger: float
    false_trigger_rate: float  # on validation resting hands, at this threshold
    resting_hands: int
    gesture_hands: int
    gesture_shown_right: float  # share of validation gesture hands shown as the right gesture
    gesture_shown_wrong: float  # ... shown as another gesture
    ece_before: float  # all validation rows, T = 1
    ece_after: float  # all validation rows, at ``temperature``
    temperature_method: str = "nll"  # none | nll | ece (choose_temperature)
    heldout_ece: dict[str, float] = field(default_factory=dict)  # per method, on held-out folds

    def to_dict(self) -> dict:
        return asdict(self)

    def calibration_line(self) -> str:
        """One line for the export summary: ECE before and after, and what chose the temperature."""
        names = {"none": "T=1", "nll": "NLL fit", "ece": "ECE fit"}
        held = ", ".join(f"{names[m]} {v:.3f}" for m, v in self.heldout_ece.items() if v == v)
        kept = "kept T = 1 (no fit lowered held-out ECE)" if self.temperature_method == "none" else (
            f"T = {self.temperature:.3g} by {names[self.temperature_method]}")
        return (f"val ECE {self.ece_before:.3f} -> {self.ece_after:.3f}; {kept}"
                + (f"; held-out ECE ({TEMPERATURE_FOLDS} folds): {held}" if held else ""))


def choose_reject_rule(logits: np.ndarray, labels: np.ndarray, reject_index: int | None,
                       max_false_trigger: float = DEFAULT_MAX_FALSE_TRIGGER) -> RejectRule:
    """Temperature by held-out ECE (:func:`choose_temperature`), then the smallest threshold (0.01
    steps) with a false-trigger rate on validation resting hands <= ``max_false_trigger`` (without a
    reject class: the threshold that keeps wrong gestures at that rate among all hands)."""
    if not 0.0 <= max_false_trigger < 1.0:
        raise ValueError(f"max_false_trigger must be in [0, 1), got {max_false_trigger}")
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
    calibration = choose_temperature(logits, labels)
    temperature = calibration.temperature
    probs = softmax(logits, temperature=temperature)
    resting = labels == reject_index if reject_index is not None else np.zeros(len(labels), bool)
    chosen, rate = 1.0, 0.0
    for threshold in np.round(np.arange(0.0, 1.0001, 0.01), 2):
        shown = shown_gestures(probs, threshold, reject_index)
        if resting.any():
            rate = float((shown[resting] >= 0).mean())
        else:
            rate = float(((shown >= 0) & (shown != labels)).mean())
        if rate <= max_false_trigger:
            chosen = float(threshold)
            break
    shown = shown_gestures(probs, chosen, reject_index)
    gestures = ~resting
    return RejectRule(
        temperature=round(temperature, 4), threshold=chosen, max_false_trigger=max_false_trigger,
        false_trigger_rate=rate, resting_hands=int(resting.sum()), gesture_hands=int(gestures.sum()),
        gesture_shown_right=float((shown[gestures] == labels[gestures]).mean()) if gestures.any() else float("nan"),
        gesture_shown_wrong=float(((shown[gestures] >= 0) & (shown[gestures] != labels[gestures])).mean())
        if gestures.any() else float("nan"),
        ece_before=calibration.ece_before, ece_after=calibration.ece_after,
        temperature_method=calibration.method, heldout_ece=calibration.heldout_ece)


def run_reject_rule(run_dir, gen: int, class_names: list[str] | tuple[str, ...],
                    max_false_trigger: float = DEFAULT_MAX_FALSE_TRIGGER) -> RejectRule | None:
    """The reject rule of generation ``gen`` of a run, from its stored validation logits and labels
    (None when the run keeps neither: older runs export without one)."""
    logits_path = Path(run_dir) / f"gen_{gen}" / "val_logits.npy"
    labels_path = Path(run_dir) / "labels" / "val.npy"
    if not (logits_path.is_file() and labels_path.is_file()):
        return None
    logits, labels = np.load(logits_path), np.load(labels_path).astype(np.int64)
    if len(logits) != len(labels) or len(labels) == 0:
        return None
    reject = list(class_names).index("no_gesture") if "no_gesture" in class_names else None
    return choose_reject_rule(logits, labels, reject, max_false_trigger)


def reject_rule(run_dir, gen: int, class_names, max_false_trigger: float | None, log=print):
    """Temperature and live threshold chosen on the run's validation logits (None for old runs)."""
    target = DEFAULT_MAX_FALSE_TRIGGER if max_false_trigger is None else max_false_trigger
    rule = run_reject_rule(run_dir, gen, class_names, target)
    if rule is not None:
        log(f"reject rule (validation): temperature {rule.temperature:.3g}, threshold {rule.threshold:.2f} -> "
            f"{rule.false_trigger_rate:.1%} of {rule.resting_hands} resting hands shown as a gesture (target "
            f"<= {target:.0%}); gestures shown right {rule.gesture_shown_right:.1%}")
        log(f"calibration: {rule.calibration_line()}")
    return rule


def smallest_threshold_within(rates: dict[float, float], max_false_trigger: float) -> float | None:
    """The smallest threshold whose false-trigger rate is at most ``max_false_trigger`` (None if none is).

    ``rates`` maps each threshold tried (e.g. a live sweep, ``tools/live_accuracy.py --sweep``)
    to its false-trigger rate; a lower threshold shows more gestures, so the smallest one that
    keeps the rate is the one that loses the fewest."""
    if not 0.0 <= max_false_trigger < 1.0:
        raise ValueError(f"max_false_trigger must be in [0, 1), got {max_false_trigger}")
    within = [threshold for threshold, rate in rates.items() if rate <= max_false_trigger]
    return min(within) if within else None
