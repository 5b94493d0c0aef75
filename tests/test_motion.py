"""Dynamic gestures, training side: real trajectories stitched and split, composed windows, the
window model (step == whole window), export, and the live runtime agreeing with JAX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnn_jax.data.motion import (
    CLASS_INDEX,
    Composer,
    MotionSet,
    load_segments,
    motion_sets,
    pinch,
    split_blocks,
    swipe_label,
)
from rnn_jax.hands.motion_features import (
    MOTION_CLASSES,
    VELOCITY_SCALE,
    motion_features,
    sequence_features,
)

REPO = Path(__file__).resolve().parents[1]
KEYPOINTS = REPO / ".." / "shared" / "data" / "hand-keypoints"
needs_keypoints = pytest.mark.skipif(not (KEYPOINTS / "point_history.csv").is_file(),
                                     reason=f"hand-keypoints data not found at {KEYPOINTS}")


def unit_hands(n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Plausible unit poses [n, 21, 2] (wrist at 0, fingers up) and classes 0/1/2."""
    rng = np.random.default_rng(seed)
    base = np.zeros((21, 2))
    for finger in range(5):
        for joint in range(4):
            base[1 + 4 * finger + joint] = (-0.4 + 0.2 * finger, -0.3 - 0.2 * joint)
    poses = base[None] + rng.normal(0, 0.03, (n, 21, 2))
    poses[:, 0] = 0
    return poses, np.arange(n) % 3


def shoelace(path: np.ndarray) -> float:
    """Signed area of the closed, centred path (> 0: clockwise on screen, y down)."""
    p = path - path.mean(0)
    x, y = p[:, 0], p[:, 1]
    return float((x * np.roll(y, -1) - np.roll(x, -1) * y).sum())


# ---------------------------------------------------------------- composed windows
def test_composed_windows_show_their_class() -> None:
    hands, kinds = unit_hands()
    composer = Composer(hands, kinds)
    rng = np.random.default_rng(1)
    for _ in range(5):
        w = {name: composer.compose(name, rng) for name in MOTION_CLASSES}
        for name, view in w.items():
            assert view.shape == (25, 21, 2) and np.isfinite(view).all(), name
        def tip(v: np.ndarray) -> np.ndarray:
            present = np.abs(v).sum((1, 2)) > 0
            return v[present, 8]
        assert tip(w["swipe_right"])[-1, 0] - tip(w["swipe_right"])[0, 0] > 0.1
        assert tip(w["swipe_left"])[-1, 0] - tip(w["swipe_left"])[0, 0] < -0.1
        assert tip(w["swipe_up"])[-1, 1] - tip(w["swipe_up"])[0, 1] < -0.1
        assert tip(w["swipe_down"])[-1, 1] - tip(w["swipe_down"])[0, 1] > 0.1
        assert shoelace(tip(w["circle_cw"])) > 0 > shoelace(tip(w["circle_ccw"]))  # y down: cw > 0
        spread = {k: np.linalg.norm(v[:, 8] - v[:, 4], axis=1)[np.abs(v).sum((1, 2)) > 0]
                  for k, v in w.items() if k.startswith("zoom")}
        assert spread["zoom_in"][-1] > spread["zoom_in"][0] and spread["zoom_out"][-1] < spread["zoom_out"][0]
        still = tip(w["still"])
        assert np.abs(still - still[0]).max() < 0.08


def test_pinch_moves_thumb_and_index_only() -> None:
    hands, _ = unit_hands(1)
    out = pinch(hands[0], np.array([0.0, 1.0]))
    np.testing.assert_allclose(out[0], hands[0])
    np.testing.assert_allclose(out[1, 4], out[1, 8])  # tips together
    untouched = [i for i in range(21) if i not in (2, 3, 4, 6, 7, 8)]
    np.testing.assert_allclose(out[1, untouched], hands[0][untouched])


def test_features_of_a_window_with_the_hand_appearing() -> None:
    hands, kinds = unit_hands()
    view = Composer(hands, kinds).compose("swipe_right", np.random.default_rng(0))
    view[:10] = 0.0  # the hand appears on frame 10 (frame 9 of the window)
    feats = MotionSet(view[None], np.zeros(1, np.int32), np.array(["composed"])).features()[0]
    assert feats.shape == (24, 21, 3)
    assert np.abs(feats[:9]).sum() == 0  # absent: all zero
    assert feats[9, 10, 2] == 0 and np.abs(feats[9, 0:7, 2]).sum() == 0  # first frame: no velocity
    assert feats[10, 10, 2] == 1  # then the previous frame exists
    # what the live loop feeds a motion model, frame by frame (MotionModel.step: the one-frame rule,
    # the previous frame forgotten while the hand is away)
    prev = None
    for t in range(1, 25):
        if not np.abs(view[t]).sum():
            prev = None
            continue
        np.testing.assert_allclose(feats[t - 1], motion_features(view[t], prev), atol=1e-5)
        prev = view[t]
    # and by hand, frame 11 of the window (view frame 12): fingertip velocity, pose, size
    cur, before = view[12], view[11]
    np.testing.assert_allclose(feats[11, 0:2, 2], VELOCITY_SCALE * (cur[8] - before[8]), rtol=1e-5)
    size = np.linalg.norm(cur - cur[0], axis=1).max()
    np.testing.assert_allclose(feats[11, :, :2], (cur - cur[0]) / size, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(feats[11, 7, 2], 4 * size, rtol=1e-5)


def test_swipe_label_rule() -> None:
    t = np.linspace(0, 1, 25)[:, None]
    assert swipe_label(t * [0.3, 0.0]) == "swipe_right"
    assert swipe_label(t * [-0.3, 0.05]) == "swipe_left"
    assert swipe_label(t * [0.0, -0.3]) == "swipe_up"
    assert swipe_label(t * [0.2, 0.2]) is None  # diagonal
    assert swipe_label(t * [0.05, 0.0]) is None  # too short
    zigzag = np.stack([np.linspace(0, 0.3, 25), 0.1 * np.sin(np.linspace(0, 12, 25))], 1)
    assert swipe_label(zigzag) is None  # not straight


def test_split_blocks_never_cut_a_group() -> None:
    labels = np.array([0] * 10 + [1] * 10)
    groups = np.repeat(np.arange(6), [3, 4, 3, 4, 3, 3])  # recordings never span two classes
    split = split_blocks(labels, (0.5, 0.2, 0.3), groups)
    for g in range(6):
        assert len(set(split[groups == g])) == 1
    # class 0's recordings start at 10%, 40%, 80% of its rows: train, train, test (0.8 > 0.5 + 0.2)
    assert split[labels == 0].tolist() == [0] * 7 + [2] * 3


# ---------------------------------------------------------------- real data
@pytest.mark.shared
@needs_keypoints
def test_real_recordings_are_stitched_exactly_and_split_by_recording() -> None:
    segments = load_segments(KEYPOINTS)
    rows = np.loadtxt(KEYPOINTS / "point_history.csv", delimiter=",")
    pts = rows[:, 1:].reshape(-1, 16, 2) * np.array([960, 540]) / 540
    assert sum(len(p) - 15 for _, p, _ in segments) == len(rows)
    for real, path, first in segments[::20]:
        for r in range(len(path) - 15):
            np.testing.assert_allclose(path[r:r + 16] - path[r], pts[first + r], atol=1e-6)
        assert rows[first, 0] == real
    sets = motion_sets(KEYPOINTS, per_class=10)
    assert set(sets) == {"train", "val", "test"}
    for s in sets.values():
        assert s.notes["real"] > 0 and s.notes["composed"] == len(MOTION_CLASSES) * (10 if s is sets["train"] else 50)
    test_real = sets["test"].labels[sets["test"].origin == "real"]
    assert {CLASS_INDEX["still"], CLASS_INDEX["circle_cw"], CLASS_INDEX["circle_ccw"]} <= set(test_real.tolist())


# ---------------------------------------------------------------- model, export, live
def test_window_model_step_equals_the_whole_window() -> None:
    import jax.numpy as jnp

    from rnn_jax.models.registry import ModelSpec, create_model

    model = create_model(ModelSpec("motion", "tiny"), (24, 21, 3), len(MOTION_CLASSES), seed=0)
    model.eval()
    x = np.random.default_rng(0).normal(0, 1, (3, 30, 21, 3)).astype(np.float32)
    x[1, :20] = 0.0  # a hand that appeared late
    state = model.initial_state(3)
    for t in range(30):
        logits, state = model.step(jnp.asarray(x[:, t]), state)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(logits), atol=1e-5)
    state = model.initial_state(3)
    for t in range(10):  # shorter than the window: zeros before frame 0
        logits, state = model.step(jnp.asarray(x[:, t]), state)
    np.testing.assert_allclose(np.asarray(model(x[:, :10])), np.asarray(logits), atol=1e-5)


def test_export_and_the_live_runtime_agree_with_jax(tmp_path: Path) -> None:
    from rnn_jax.export.landmark_export import export_landmark_model
    from rnn_jax.hands.motion_features import feature_spec
    from rnn_jax.live.motion import MotionModel
    from rnn_jax.models.registry import ModelSpec, create_model
    from rnn_jax.runtime.landmark_predictor import LandmarkInfo

    model = create_model(ModelSpec("motion", "tiny"), (24, 21, 3), len(MOTION_CLASSES), seed=3)
    hands, kinds = unit_hands()
    composer = Composer(hands, kinds)
    rng = np.random.default_rng(2)
    views = np.concatenate([composer.compose(name, rng)[1:] for name in ("swipe_left", "circle_cw", "still")])
    feats = sequence_features(views)  # 72 frames; the first has no previous frame, as live
    info = LandmarkInfo(class_names=MOTION_CLASSES, features=feature_spec(), state_size=model.state_size,
                        state_layout="window")
    result = export_landmark_model(model, info, tmp_path / "motion.onnx", feats)
    assert result.parity.max_abs_logit_diff <= 1e-4
    live = MotionModel.load(result.path)
    got = np.stack([live.step([5], views[t:t + 1])[0] for t in range(len(views))])
    model.eval()
    for t in (0, 10, 23, 40, 71):  # JAX on the window ending at frame t
        logits = np.asarray(model(feats[None, max(0, t - 23):t + 1]))[0]
        want = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(got[t], want, atol=1e-4)
    live.step([], np.zeros((0, 21, 2)))
    assert live.states == {} and live.previous == {}


def test_experiment_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from experiments import motion
    from rnn_jax.errors import main_guard

    for argv, message in ((["--data", str(tmp_path)], "has no point_history.csv"),
                          (["--model", "resnet"], "takes images"),
                          (["--per-class", "3"], "--per-class must be >= 10")):
        with pytest.raises(SystemExit) as info:
            main_guard(motion.main, [*argv, "--out", str(tmp_path / "run"), "--no-progress"])
        assert info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: ") and message in err[-1], err
