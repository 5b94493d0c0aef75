"""The reject rule read from a real run folder (a tiny lineage trained here), and the live
threshold picked from a sweep whose false-trigger rates are not monotone."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from rnn_jax.calibration import reject_rule, run_reject_rule, smallest_threshold_within
from rnn_jax.data.landmark_files import save_landmarks
from rnn_jax.data.landmark_synthetic import builtin_landmarks
from rnn_jax.data.splits import split_by_person

TARGET = 0.10


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[str, ...]]:
    """A one-generation lmlp run on synthetic hands whose 4th class is called ``no_gesture``
    (not the last class: the rule must find the reject class by name), ~2 s of training."""
    from experiments import landmarks as experiment

    root = tmp_path_factory.mktemp("calibration-run")
    data = builtin_landmarks(people=8, per_class=4)
    names = list(data.class_names)
    names[3] = "no_gesture"
    data = dataclasses.replace(data, class_names=tuple(names))
    train, val = split_by_person(data, 0.4, seed=0)
    # every resting hand of val, every other hand of the rest: class counts differ, so a rule that
    # takes the wrong class for no_gesture counts the wrong hands
    val = val.subset(np.flatnonzero((val.labels == 3) | (np.arange(len(val)) % 2 == 0)))
    for split, part in (("train", train), ("val", val)):
        save_landmarks(part, root / "data" / f"{split}.npz")
    out = root / "run"
    experiment.main(["--data", str(root / "data"), "--model", "lmlp", "--size", "tiny", "--gens", "1",
                     "--epochs", "2", "--batch-size", "16", "--out", str(out), "--no-progress"])
    return out, tuple(names)


def _shown_rate(logits: np.ndarray, temperature: float, threshold: float, reject: int) -> float:
    """Share of rows shown as a gesture at ``threshold`` (top class not ``reject``, confidence >= it)."""
    z = logits / temperature
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return float(((p.max(1) >= threshold) & (p.argmax(1) != reject)).mean())


def test_the_rule_of_a_trained_run_keeps_its_resting_hands_under_the_target(run) -> None:
    out, names = run
    logits = np.load(out / "gen_0" / "val_logits.npy")
    labels = np.load(out / "labels" / "val.npy")
    assert len(logits) == len(labels) > 0
    rule = run_reject_rule(out, 0, names, TARGET)
    assert rule is not None
    resting = labels == 3
    assert (rule.resting_hands, rule.gesture_hands) == (int(resting.sum()), int((~resting).sum()))
    assert rule.resting_hands > 0 and rule.temperature > 0 and 0.0 <= rule.threshold <= 1.0
    rate = _shown_rate(logits[resting], rule.temperature, rule.threshold, 3)
    assert rate <= TARGET and rule.false_trigger_rate == pytest.approx(rate, abs=1e-9)
    if rule.threshold > 0:  # the smallest such threshold: one step lower breaks the target
        assert _shown_rate(logits[resting], rule.temperature, rule.threshold - 0.01, 3) > TARGET
    right = _shown_rate(logits[~resting], rule.temperature, rule.threshold, 3)  # shown at all
    assert rule.gesture_shown_right + rule.gesture_shown_wrong == pytest.approx(right, abs=1e-9)


def test_reject_rule_logs_one_line_and_old_or_broken_runs_have_none(run, tmp_path: Path) -> None:
    out, names = run
    lines: list[str] = []
    rule = reject_rule(out, 0, names, None, log=lines.append)  # None = the default target
    assert rule is not None and rule.max_false_trigger == TARGET and len(lines) == 2
    assert f"threshold {rule.threshold:.2f}" in lines[0] and f"of {rule.resting_hands} resting hands" in lines[0]
    assert lines[1] == f"calibration: {rule.calibration_line()}"
    assert run_reject_rule(out, 1, names) is None  # no such generation
    broken = tmp_path / "broken"
    shutil.copytree(out / "labels", broken / "labels")
    (broken / "gen_0").mkdir()
    np.save(broken / "gen_0" / "val_logits.npy", np.load(out / "gen_0" / "val_logits.npy")[:-1])
    assert run_reject_rule(broken, 0, names) is None  # logits and labels disagree in length
    lines.clear()
    assert reject_rule(broken, 0, names, 0.05, log=lines.append) is None and lines == []


def test_without_a_no_gesture_class_the_rule_bounds_wrong_gestures_among_all_hands(run) -> None:
    out, names = run
    plain = tuple("rest" if n == "no_gesture" else n for n in names)
    rule = run_reject_rule(out, 0, plain, TARGET)
    assert rule is not None and rule.resting_hands == 0 and rule.gesture_hands == len(np.load(out / "labels" / "val.npy"))
    assert rule.gesture_shown_wrong <= TARGET


def test_a_non_monotone_sweep_gets_the_smallest_threshold_within_the_target() -> None:
    # a live sweep: smoothing and stability make the rate rise again between thresholds
    rates = {0.3: 0.14, 0.5: 0.12, 0.4: 0.08, 0.6: 0.11, 0.7: 0.02}
    assert smallest_threshold_within(rates, TARGET) == 0.4  # not 0.7 (the last crossing), not 0.6
    assert smallest_threshold_within(rates, 0.05) == 0.7
    assert smallest_threshold_within(rates, 0.01) is None
    assert smallest_threshold_within({0.9: 0.0, 0.2: 0.0}, TARGET) == 0.2  # order of the sweep does not matter
    with pytest.raises(ValueError, match="max_false_trigger"):
        smallest_threshold_within(rates, 1.0)


def test_the_export_summary_reports_ece_before_and_after_the_stored_temperature(run, tmp_path: Path) -> None:
    from rnn_jax.export.landmark_export import export_landmark_run
    from rnn_jax.runtime.landmark_predictor import load_predictor

    out, names = run
    logits = np.load(out / "gen_0" / "val_logits.npy")
    labels = np.load(out / "labels" / "val.npy")
    report = export_landmark_run(out, out=tmp_path / "m.onnx", latency=False, parity_frames=16, log=lambda *_: None)
    stored = load_predictor(tmp_path / "m.onnx").info.temperature
    z = logits / stored
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    conf, right = p.max(1), p.argmax(1) == labels
    bins = np.minimum((conf * 15).astype(int), 14)
    ece_after = sum((bins == b).mean() * abs(right[bins == b].mean() - conf[bins == b].mean())
                    for b in range(15) if (bins == b).any())
    assert f"-> {ece_after:.3f}" in report["calibration"] and report["calibration"].startswith("val ECE ")
    rule = report["reject_rule"]
    assert rule["temperature"] == pytest.approx(stored, abs=1e-4) and rule["ece_after"] == pytest.approx(ece_after)
    if rule["temperature_method"] == "none":
        assert stored == 1.0 and rule["ece_after"] == rule["ece_before"]
