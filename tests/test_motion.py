"""Dynamic gestures, training side: real trajectories stitched and split, composed windows, the
window model (step == whole window), export, and the live runtime agreeing with JAX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnn_jax.data.motion import (
    CLASS_INDEX,
    MotionSet,
    load_segments,
    motion_sets,
    people_halves,
    split_blocks,
    swipe_label,
)
from rnn_jax.data.motion_compose import Composer, HandBank, compose_windows, frame_times, pinch
from rnn_jax.hands.motion_features import (
    MOTION_CLASSES,
    VELOCITY_SCALE,
    motion_features,
    sequence_features,
)

REPO = Path(__file__).resolve().parents[1]
KEYPOINTS = REPO / ".." / "shared" / "data" / "hand-keypoints"
HAGRID = REPO / ".." / "shared" / "data" / "hagrid-sample"
needs_keypoints = pytest.mark.skipif(not (KEYPOINTS / "point_history.csv").is_file(),
                                     reason=f"hand-keypoints data not found at {KEYPOINTS}")
NAMES = ("palm", "one", "peace", "fist", "three2", "ok")


def unit_hands(n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Plausible unit poses [n, 21, 2] (wrist at 0, fingers up; every 5th an L hand, thumb out) and
    HaGRID-style names."""
    rng = np.random.default_rng(seed)
    base = np.zeros((21, 2))
    for finger in range(5):
        for joint in range(4):
            base[1 + 4 * finger + joint] = (-0.4 + 0.2 * finger, -0.3 - 0.2 * joint)
    poses = base[None] + rng.normal(0, 0.03, (n, 21, 2))
    names = np.array([NAMES[i % len(NAMES)] for i in range(n)])
    poses[names == "three2", 1:5] = [[-0.3, -0.1], [-0.55, -0.15], [-0.75, -0.2], [-0.95, -0.25]]
    poses[:, 0] = 0
    poses /= np.linalg.norm(poses, axis=-1).max(-1)[:, None, None]
    return poses, names


def bank(n: int = 12) -> HandBank:
    return HandBank.from_named(*unit_hands(n))


def shoelace(path: np.ndarray) -> float:
    """Signed area of the closed, centred path (> 0: clockwise on screen, y down)."""
    p = path - path.mean(0)
    x, y = p[:, 0], p[:, 1]
    return float((x * np.roll(y, -1) - np.roll(x, -1) * y).sum())


# ---------------------------------------------------------------- composed windows
def test_composed_windows_show_their_class() -> None:
    composer = Composer(bank(), 25)
    assert len(composer.bank.groups["L"]) == 2  # the two three2 hands with the thumb out
    rng = np.random.default_rng(1)
    for _ in range(5):
        w = {name: composer.compose(name, rng) for name in MOTION_CLASSES}
        for name, (view, partner, t) in w.items():
            assert view.shape == partner.shape == (25, 21, 2) and np.isfinite(view).all(), name
            assert t[-1] == 0 and np.all(np.diff(t) > 0), name

        def tip(name: str, w: dict = w) -> np.ndarray:
            v = w[name][0]
            return v[np.abs(v).sum((1, 2)) > 0, 8]
        assert tip("swipe_right")[-1, 0] - tip("swipe_right")[0, 0] > 0.1
        assert tip("swipe_left")[-1, 0] - tip("swipe_left")[0, 0] < -0.1
        assert tip("swipe_up")[-1, 1] - tip("swipe_up")[0, 1] < -0.1
        assert tip("swipe_down")[-1, 1] - tip("swipe_down")[0, 1] > 0.1
        assert shoelace(tip("circle_cw")) > 0 > shoelace(tip("circle_ccw"))  # y down: cw > 0
        for name in ("zoom_in", "zoom_out"):  # one hand (spread) or two hands (distance): it opens / closes
            view, partner, _ = w[name]
            both = np.abs(view).sum((1, 2)) > 0
            gap = np.linalg.norm(view[both, 8] - view[both, 4], axis=1) / np.linalg.norm(
                view[both] - view[both, :1], axis=-1).max(-1)
            def ends(x: np.ndarray) -> tuple[float, float]:  # medians: a finger flicker is one frame's outlier
                return float(np.median(x[:5])), float(np.median(x[-5:]))
            if abs(np.subtract(*ends(gap))) < 0.15:  # not a pinch: two hands (the distance between them)
                gap = np.linalg.norm(view[both].mean(1) - partner[both].mean(1), axis=1)
            first, last = ends(gap)
            assert (last > first) == (name == "zoom_in"), name
        still = tip("still")
        assert np.abs(still - still[0]).max() < 0.1


def test_a_fist_is_smaller_than_an_open_hand() -> None:
    from rnn_jax.data.motion_compose import OPEN_REACH, reach

    open_hand, fist = np.zeros((21, 2)), np.zeros((21, 2))
    open_hand[9], open_hand[12] = (0, -1 / OPEN_REACH), (0, -1)  # fingers out: twice the palm
    fist[9], fist[12] = (0, -0.73), (0, -1)  # curled: the knuckle is the farthest point's 0.73
    assert reach(open_hand) == pytest.approx(1.0) and reach(fist) == pytest.approx(1 / 0.73 / OPEN_REACH)
    assert 0.65 < reach(fist) < 0.75


def test_frame_times_and_rates() -> None:
    rng = np.random.default_rng(0)
    for fps in (10.0, 15.0, 30.0, 60.0):
        t = frame_times(rng, 25, fps)
        assert t[-1] == 0 and np.all(np.diff(t) > 0)
        assert 0.8 / fps < np.median(np.diff(t)) < 1.2 / fps
    hands, partners, times, labels = compose_windows(bank(), 2, seed=0, frames=25)
    assert hands.shape == partners.shape == (2 * len(MOTION_CLASSES), 25, 21, 2) and times.shape == hands.shape[:2]
    rates = 1 / np.median(np.diff(times, axis=1), 1)
    assert rates.min() >= 8 and rates.max() <= 70 and len(np.unique(np.round(rates))) > 3
    assert labels.tolist() == [c for c in range(len(MOTION_CLASSES)) for _ in range(2)]


def test_features_are_per_second_whatever_the_frame_rate() -> None:
    """The same straight move sampled at 15 and at 30 frames/s: the same velocities (issue 35)."""
    pose = unit_hands(1)[0][0]
    rows = {}
    for fps in (15.0, 30.0):
        t = np.arange(0, 0.6, 1 / fps)
        view = 0.5 + 0.2 * pose[None] + (t * 1.2)[:, None, None] * np.array([1.0, 0.0])  # 1.2 short sides/s
        feats = sequence_features(view, t)
        rows[fps] = feats[1:, :, 2]
        np.testing.assert_allclose(feats[1:, 0, 2], VELOCITY_SCALE * 1.2, rtol=1e-5)  # index tip vx
        np.testing.assert_allclose(feats[1:, 11, 2], 30 / fps, rtol=1e-5)  # the interval feature
    np.testing.assert_allclose(rows[15.0][:, :11].mean(0), rows[30.0][:, :11].mean(0), atol=1e-5)


def test_partner_block() -> None:
    pose = unit_hands(1)[0][0]
    a0 = 0.5 + 0.2 * pose
    b0 = a0 + [0.5, 0.0]
    a1, b1 = a0 - [0.05, 0.0], b0 + [0.05, 0.0]  # apart: 0.1 in 1/30 s
    alone = motion_features(a1, a0, 1 / 30)
    assert np.all(alone[12:, 2] == 0)
    f = motion_features(a1, a0, 1 / 30, b1, b0)
    np.testing.assert_allclose(f[12:16, 2], [1.0, 2 * 0.6, 0.0, 2 * 0.6], atol=1e-6)
    np.testing.assert_allclose(f[16, 2], VELOCITY_SCALE * 0.1 * 30, rtol=1e-5)  # distance grows
    np.testing.assert_allclose(f[17:19, 2], [VELOCITY_SCALE * 0.05 * 30, 0.0], atol=1e-5)
    np.testing.assert_allclose(f[:12], alone[:12])  # the hand's own features do not change
    batched = motion_features(a1[None], a0[None], np.array([1 / 30]), b1[None], b0[None])[0]
    np.testing.assert_allclose(batched, f, atol=1e-6)
    no_before = motion_features(a1[None], a0[None], np.array([1 / 30]), b1[None], np.zeros((1, 21, 2)))[0]
    np.testing.assert_allclose(no_before, motion_features(a1, a0, 1 / 30, b1, None), atol=1e-6)
    assert no_before[16, 2] == 0 and no_before[12, 2] == 1


def test_pinch_moves_thumb_and_index_only() -> None:
    hands, _ = unit_hands(1)
    out = pinch(hands[0], np.array([0.0, 1.0]))
    np.testing.assert_allclose(out[0], hands[0])
    np.testing.assert_allclose(out[1, 4], out[1, 8])  # tips together
    untouched = [i for i in range(21) if i not in (2, 3, 4, 6, 7, 8)]
    np.testing.assert_allclose(out[1, untouched], hands[0][untouched])


def test_features_of_a_window_with_the_hand_appearing() -> None:
    view, partner, t = Composer(bank(), 25).compose("swipe_right", np.random.default_rng(0), fps=20.0)
    view[:10] = 0.0  # the hand appears on frame 10 (frame 9 of the window)
    feats = MotionSet(view[None], np.zeros(1, np.int32), np.array(["composed"]), partner[None],
                      t[None]).features()[0]
    assert feats.shape == (24, 21, 3)
    assert np.abs(feats[:9]).sum() == 0  # absent: all zero
    assert feats[9, 10, 2] == 0 and np.abs(feats[9, 0:7, 2]).sum() == 0  # first frame: no velocity
    assert feats[10, 10, 2] == 1  # then the previous frame exists
    # what the live loop feeds a motion model, frame by frame (MotionModel.step: the one-frame rule,
    # the previous frame forgotten while the hand is away)
    prev = None
    for k in range(1, 25):
        if not np.abs(view[k]).sum():
            prev = None
            continue
        other = partner[k] if np.abs(partner[k]).sum() else None
        other_prev = partner[k - 1] if other is not None and np.abs(partner[k - 1]).sum() else None
        np.testing.assert_allclose(feats[k - 1], motion_features(view[k], prev, t[k] - t[k - 1], other, other_prev),
                                   atol=1e-5)
        prev = view[k]
    # and by hand, frame 11 of the window (view frame 12): fingertip velocity per second, pose, size
    cur, before = view[12], view[11]
    np.testing.assert_allclose(feats[11, 0:2, 2], VELOCITY_SCALE * (cur[8] - before[8]) / (t[12] - t[11]), rtol=1e-4)
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


def test_people_halves_never_share_a_person() -> None:
    people = np.array(["c", "a", "b", "a", "d", "c", "e"])
    half = people_halves(people)
    for p in np.unique(people):
        assert len(set(half[people == p])) == 1
    assert half.tolist() == [0, 0, 1, 0, 1, 0, 0]  # a 0, b 1, c 0, d 1, e 0


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
    k = len(MOTION_CLASSES)
    for name, s in sets.items():
        assert s.notes["real"] > 0 and s.notes["composed"] == {"train": 10, "val": 40, "test": 80}[name] * k
    test = sets["test"]
    test_real = test.labels[test.origin == "real"]
    assert {CLASS_INDEX["still"], CLASS_INDEX["circle_cw"], CLASS_INDEX["circle_ccw"]} <= set(test_real.tolist())
    assert set(np.round(test.fps).tolist()) == {15.0, 30.0}  # test windows at both rates
    assert sets["train"].features().shape[1:] == (24, 21, 3)


@pytest.mark.shared
@pytest.mark.skipif(not (HAGRID / "hagrid_annotations").is_dir(), reason=f"HaGRID sample not found at {HAGRID}")
def test_hagrid_banks_split_people() -> None:
    from rnn_jax.data.motion import hagrid_banks

    train, val, test, notes = hagrid_banks(HAGRID)
    assert notes["people"][1] > 40 and notes["people"][2] > 40 and all(n > 0 for n in notes["L_hands"])
    assert len(train.poses) > 10 * len(val.poses)
    for b in (train, val, test):
        assert set(b.groups) >= {"open", "one", "two", "fist", "L", "any"} and all(len(b.groups[g]) for g in b.groups)
        np.testing.assert_allclose(np.linalg.norm(b.poses, axis=-1).max(-1), 1.0, atol=1e-6)


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
    composer = Composer(bank(), 25)
    rng = np.random.default_rng(2)
    def whole(name: str, fps: float) -> tuple:  # a window where the hand is on every frame
        while True:
            part = composer.compose(name, rng, fps=fps)
            if np.abs(part[0]).sum((1, 2)).all():
                return part
    parts = [whole(name, fps) for name, fps in (("swipe_left", 15.0), ("zoom_in", 30.0), ("still", 24.0))]
    views = np.concatenate([v[1:] for v, _, _ in parts])
    partners = np.concatenate([p[1:] for _, p, _ in parts])
    partners[:24] = 0.0
    partners[24:48] = views[24:48, :, :] + [0.5, 0.0]  # a second hand beside the zoom (a pair)
    times = np.cumsum(np.concatenate([np.diff(t, prepend=t[0] - 1 / 30)[1:] for _, _, t in parts]))
    feats = sequence_features(views, times, partners)  # 72 frames; the first has no previous frame, as live
    info = LandmarkInfo(class_names=MOTION_CLASSES, features=feature_spec(), state_size=model.state_size,
                        state_layout="window")
    result = export_landmark_model(model, info, tmp_path / "motion.onnx", feats)
    assert result.parity.max_abs_logit_diff <= 1e-4
    live = MotionModel.load(result.path)
    got = []
    for t in range(len(views)):  # hand 5, and from frame 24 to 47 its partner, hand 9
        ids = [5, 9] if np.abs(partners[t]).sum() else [5]
        got.append(live.step(ids, np.stack([views[t], partners[t]])[:len(ids)], float(times[t]))[0])
    got = np.stack(got)
    model.eval()
    for t in (0, 10, 23, 40, 71):  # JAX on the window ending at frame t
        logits = np.asarray(model(feats[None, max(0, t - 23):t + 1]))[0]
        want = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(got[t], want, atol=1e-4)
    live.step([], np.zeros((0, 21, 2)))
    assert live.states == {} and live.previous == {} and live.first_seen == {}


def test_experiment_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from experiments import motion
    from rnn_jax.errors import main_guard

    keypoints = tmp_path / "keypoints"  # passes the folder check, so each case reaches its own check
    keypoints.mkdir()                    # with or without ../shared beside the project
    (keypoints / "point_history.csv").write_text("")
    given = ["--data", str(keypoints)]
    for argv, message in ((["--data", str(tmp_path)], "has no point_history.csv"),
                          ([*given, "--model", "resnet"], "takes images"),
                          ([*given, "--per-class", "3"], "--per-class must be >= 10"),
                          ([*given, "--hagrid", str(tmp_path / "nowhere")], "no such folder")):
        with pytest.raises(SystemExit) as info:
            main_guard(motion.main, [*argv, "--out", str(tmp_path / "run"), "--no-progress"])
        assert info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: ") and message in err[-1], err
