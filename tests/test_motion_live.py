"""Dynamic gestures in the live loop (JAX-free): the motion feature rule, a motion model beside the
static one, per-hand trails and the motion banner in the overlay, actions on dynamic gestures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_fixtures import write_fixture_onnx

from rnn_jax.errors import ConfigError, ModelFileError
from rnn_jax.hands.finder import Hand
from rnn_jax.hands.geometry import Rect
from rnn_jax.hands.motion_features import (
    MOTION_CLASSES,
    feature_spec,
    motion_features,
    sequence_features,
    view_coords,
)
from rnn_jax.live import iter_predictions
from rnn_jax.live.cli import main
from rnn_jax.live.hand_tracks import TRAIL_FRAMES
from rnn_jax.live.loop import PredictionStream
from rnn_jax.live.motion import DEFAULT_MIN_TRACK_AGE, MotionModel
from rnn_jax.live.overlay import draw_overlay
from rnn_jax.live.sources import FrameSource
from rnn_jax.runtime.landmark_predictor import LandmarkInfo

W, H = 320, 240


def write_rule_motion_onnx(path: Path, state_size: int = 4) -> Path:
    """TEST FIXTURE: a 'motion model' by hand: logits from the index fingertip's velocity
    (packed feature (row 0, z) = vx, (row 1, z) = vy, flattened indices 2 and 5) and from the
    partner distance's rate (row 16, z: flattened 50; twice as strong); 'still' otherwise."""
    k = len(MOTION_CLASSES)
    weight = np.zeros((63, k), np.float32)
    c = {name: i for i, name in enumerate(MOTION_CLASSES)}
    weight[2, c["swipe_right"]], weight[2, c["swipe_left"]] = 8.0, -8.0
    weight[5, c["swipe_down"]], weight[5, c["swipe_up"]] = 8.0, -8.0
    weight[50, c["zoom_in"]], weight[50, c["zoom_out"]] = 16.0, -16.0
    bias = np.zeros(k, np.float32)
    bias[c["still"]] = 2.0
    graph = helper.make_graph(
        nodes=[helper.make_node("Flatten", ["landmarks"], ["flat"], axis=1),
               helper.make_node("MatMul", ["flat", "W"], ["mm"]),
               helper.make_node("Add", ["mm", "b"], ["logits"]),
               helper.make_node("Add", ["state", "one"], ["state_out"])],  # counts frames per hand
        name="motion_fixture",
        inputs=[helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, ["batch", 21, 3]),
                helper.make_tensor_value_info("state", TensorProto.FLOAT, ["batch", state_size])],
        outputs=[helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", k]),
                 helper.make_tensor_value_info("state_out", TensorProto.FLOAT, ["batch", state_size])],
        initializer=[numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b"),
                     numpy_helper.from_array(np.ones(state_size, np.float32), "one")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    info = LandmarkInfo(class_names=MOTION_CLASSES, features=feature_spec(), state_size=state_size,
                        state_layout="frame counter (test fixture)")
    for key, value in info.to_props().items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.save(model, str(path))
    return path


def make_hand(track_id: int, wrist_x: float, wrist_y: float = 160.0) -> Hand:
    """An upright open hand, wrist at (wrist_x, wrist_y) camera pixels, ~60 px tall."""
    pts = np.zeros((21, 3))
    for finger in range(5):
        for joint in range(4):
            pts[1 + 4 * finger + joint] = (-20 + 10 * finger, -15 - 12 * joint, 0)
    pts[:, 0] += wrist_x
    pts[:, 1] += wrist_y
    return Hand(pts, 0.99, "right", 0.9, Rect(wrist_x, wrist_y - 30, 90, 0.0), track_id, True, (W, H))


class ScriptedFinder:
    """Stands in for the hand finder: per frame, one hand's wrist x (None = no hand), a tuple of
    several hands' (track ids 7, 8, ...) or a dict track id -> wrist x."""

    def __init__(self, script: list) -> None:
        self.script, self.frame = script, 0

    def find(self, frame: np.ndarray, colour: str = "bgr") -> list[Hand]:
        x = self.script[self.frame]
        self.frame += 1
        if x is None:
            return []
        if isinstance(x, dict):  # track id -> wrist x
            return [make_hand(t, v) for t, v in x.items()]
        return [make_hand(7 + i, v) for i, v in enumerate(x)] if isinstance(x, tuple) else [make_hand(7, x)]


class Frames(FrameSource):
    def __init__(self, n: int, fps: float | None = None) -> None:
        super().__init__("scripted frames")
        self.n, self.i, self._fps = n, 0, fps

    @property
    def fps(self) -> float | None:
        return self._fps

    def read(self) -> np.ndarray | None:
        if self.i >= self.n:
            return None
        self.i += 1
        return np.full((H, W, 3), 90, np.uint8)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("motion-live")
    return {"static": write_fixture_onnx(root / "colours.onnx"), "motion": write_rule_motion_onnx(root / "m.onnx")}


# --------------------------------------------------------------- feature rule
def test_view_coords_mirror_and_scale() -> None:
    pts = np.array([[10.0, 20.0, 5.0]] * 21)
    view = view_coords(pts, (W, H))
    np.testing.assert_allclose(view[0], [(W - 10) / H, 20 / H])


def test_motion_features_hand_checked() -> None:
    hand = view_coords(make_hand(1, 100).landmarks, (W, H))
    moved = hand + np.array([0.05, -0.02])
    f0, f1 = motion_features(hand), motion_features(moved, hand)
    assert f0.shape == (21, 3) and f0.dtype == np.float32
    np.testing.assert_allclose(f0[:, :2], f1[:, :2], atol=1e-6)  # the pose does not move
    np.testing.assert_allclose(f1[0:2, 2], [1.0, -0.4], atol=1e-5)  # index tip velocity x 20
    np.testing.assert_allclose(f1[2:4, 2], [1.0, -0.4], atol=1e-5)  # wrist
    assert f0[10, 2] == 0 and f1[10, 2] == 1  # previous frame flag
    assert abs(f1[6, 2]) < 1e-6  # same size
    seq = sequence_features(np.stack([hand, moved, moved]))
    np.testing.assert_allclose(seq[1], f1, atol=1e-6)
    assert seq[2, 0, 2] == 0  # no movement on the third frame
    np.testing.assert_allclose(sequence_features(np.stack([hand, moved]), first_has_prev=True)[0], f1, atol=1e-6)


# ----------------------------------------------------------- the live loop
def run_stream(models: dict[str, Path], script: list, fps: float | None = None, **kwargs
               ) -> tuple[list, PredictionStream]:
    from rnn_jax.runtime import Predictor

    stream = PredictionStream(Predictor.load(models["static"], threads=1), Frames(len(script), fps),
                              finder=ScriptedFinder(script), motion=MotionModel.load(models["motion"]), **kwargs)
    records = list(stream)
    return records, stream


def test_motion_events_trails_and_hand_lost(models: dict[str, Path]) -> None:
    # camera x falls = the hand moves to the user's right (mirrored view)
    script = [200.0] * 5 + [200.0 - 12 * i for i in range(1, 9)] + [104.0] * 6 + [None] * 2
    records, stream = run_stream(models, script)
    dynamic = [(e.kind, e.label, e.frame, e.hand) for r in records for e in r.events if e.dynamic]
    assert dynamic[0][:2] == ("started", "swipe_right") and dynamic[0][3] == 7
    assert ("ended", "swipe_right") in [d[:2] for d in dynamic]
    assert not any(label in ("still", "no_motion") for _, label, _, _ in dynamic)  # background never starts
    assert not any(e.dynamic for r in records for e in r.events if e.label not in MOTION_CLASSES)
    moving = records[9]  # 0.3 s after the hand's first frame (0.25 s old on frame 8, then 2 stable frames)
    (hand,) = moving.hands
    assert hand.motion == "swipe_right" and hand.motion_top == "swipe_right"
    assert len(hand.trail) == 10 and hand.trail[-1][0] == pytest.approx(200.0 - 12 * 5 - 10)  # index tip x
    assert len(records[18].hands[0].trail) == min(19, TRAIL_FRAMES)
    row = moving.to_json()
    assert row["hands"][0]["motion"] == "swipe_right" and "motion_confidence" in row["hands"][0]
    assert records[-1].hands == () and stream.trails == {} and stream.motion.states == {}


def test_actions_fire_on_dynamic_gestures(models: dict[str, Path]) -> None:
    from rnn_jax.live.actions import build_runner

    seen = []
    runner = build_runner(callbacks={"swipe_left": lambda e: seen.append((e.label, e.hand, e.dynamic))},
                          cooldown_s=0, known_gestures=MOTION_CLASSES)
    script = [100.0] * 3 + [100.0 + 15 * i for i in range(1, 8)] + [205.0] * 3  # to the user's left
    _, stream = run_stream(models, script, actions=runner)
    stream.finish()
    stream.finish_actions()
    assert seen == [("swipe_left", 7, True)]


def test_overlay_draws_trail_motion_and_banner(models: dict[str, Path]) -> None:
    script = [200.0 - 10 * i for i in range(12)]
    records, _ = run_stream(models, script)
    rec = records[-1]
    kwargs = dict(class_names=rec.class_names, probabilities=rec.probabilities, label=rec.label,
                  top_label=rec.top_label, confidence=rec.confidence, threshold=0.6, hands=rec.hands)
    plain = draw_overlay(rec.frame, **kwargs)
    banner = draw_overlay(rec.frame, **kwargs, banner="swipe right")
    mirrored = draw_overlay(rec.frame, **kwargs, banner="swipe right", mirror=True)
    assert plain.shape == rec.frame.shape and not np.array_equal(plain, banner)
    assert not np.array_equal(banner, mirrored)
    no_trail = draw_overlay(rec.frame, **{**kwargs, "hands": tuple(
        type(h)(h.hand, h.label, h.top_label, h.confidence, h.probabilities, h.crop) for h in rec.hands)})
    assert not np.array_equal(plain, no_trail)  # the trail and the motion caption were drawn


def test_motion_model_in_the_static_slot_or_wrong_file(models: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    rc = main(["--onnx", str(models["motion"]), "--headless", "--source", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "is a motion model" in err and "--motion" in err and err.count("\n") == 1
    with pytest.raises(ModelFileError, match="not an rnn-jax landmark model"):
        MotionModel.load(models["static"])
    with pytest.raises(ModelFileError, match="motion model not found"):
        MotionModel.load(tmp_path / "none.onnx")
    with pytest.raises(ConfigError, match="no model here recognises gesture 'swipe_sideways'"):
        iter_predictions(models["static"], str(tmp_path), motion=models["motion"], hands="on",
                         on_gesture={"swipe_sideways": print})


def test_motion_threshold_and_cli_banner(models: dict[str, Path]) -> None:
    m = MotionModel.load(models["motion"], threshold=0.8, stable_frames=3)
    assert (m.gesture.threshold, m.gesture.stable_frames) == (0.8, 3)
    assert "still" not in m.gestures and "swipe_left" in m.gestures
    assert json.loads(json.dumps(feature_spec()))["rule"] == "motion"


def test_the_one_frame_fast_path_matches_the_batched_rule() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        view, prev, other, other_prev = rng.random((4, 21, 2))
        dt = float(rng.choice([1 / 60, 1 / 15, 0.3, 0.7]))  # 0.7 s: too long a gap, no previous frame
        for args in ((prev, dt), (prev, dt, other, other_prev), (None, dt, other, None), (prev, dt, other, None)):
            batched = [None if a is None else (a if np.isscalar(a) else a[None]) for a in args]
            np.testing.assert_allclose(motion_features(view, *args), motion_features(view[None], *batched)[0],
                                       atol=1e-5)
        np.testing.assert_allclose(motion_features(view), motion_features(view[None])[0], atol=1e-6)


def test_the_same_move_at_15_and_30_frames_per_second(models: dict[str, Path]) -> None:
    """Rates per second: a move of 360 px/s fires the same swipe at either rate, at about the same time
    (frame steps at 15 frames/s are twice as long: a per-frame rule would call the move twice as fast)."""
    fired = {}
    for fps in (15.0, 30.0):
        step = 360.0 / fps
        n = int(0.5 * fps)
        script = [250.0] * int(0.4 * fps) + [250.0 - step * i for i in range(1, n + 1)] + [250.0 - step * n] * 4
        records, _ = run_stream(models, script, fps=fps)
        starts = [e for r in records for e in r.events if e.dynamic and e.kind == "started"]
        fired[fps] = ([e.label for e in starts], starts[0].frame / fps if starts else None)
    assert fired[15.0][0] == fired[30.0][0] == ["swipe_right"]
    assert abs(fired[15.0][1] - fired[30.0][1]) <= 0.1, fired  # 2 stable frames: 0.13 s at 15 fps, 0.07 s at 30
    hand = view_coords(make_hand(1, 250).landmarks, (W, H))
    for fps in (15.0, 30.0):  # the rule itself: the same velocity whatever the rate
        moved = view_coords(make_hand(1, 250 - 360 / fps).landmarks, (W, H))
        np.testing.assert_allclose(motion_features(moved, hand, 1 / fps)[0, 2], 360 / H * 2 / 3, rtol=1e-5)


def test_a_two_hand_zoom_is_one_event_per_pair(models: dict[str, Path]) -> None:
    # two hands moving apart (camera x: 150 - d and 170 + d): a zoom_in for each hand's model
    script = [(150.0, 170.0)] * 10 + [(150.0 - 6 * i, 170.0 + 6 * i) for i in range(1, 10)] + [(96.0, 224.0)] * 6
    records, stream = run_stream(models, script)
    stream.finish()
    rows = [r.hands for r in records[14:19]]  # from the frame their distance grew by MotionRules.move (0.08)
    assert all(h.motion == "zoom_in" for hands in rows for h in hands)  # both hands show it
    zooms = [(e.kind, e.hand) for r in records for e in r.events if e.dynamic and e.label == "zoom_in"]
    ends = [e for e in stream.tracks.finish() if e.dynamic]
    assert [k for k, _ in zooms].count("started") == 1, zooms  # reported once for the pair
    assert [k for k, _ in zooms].count("ended") + len(ends) <= 1
    assert stream.motion.partners == {7: 8, 8: 7}


def test_a_hand_lost_mid_swipe_is_relinked_and_fires_once(models: dict[str, Path]) -> None:
    """The finder loses a fast hand for two frames and finds it again under a new id: its motion goes on
    (state, first frame, tracker), one swipe event; a hand gone for longer than RELINK_S is forgotten."""
    from rnn_jax.live.motion import RELINK_S

    script = ([200.0] * 10 + [200.0 - 12 * i for i in range(1, 4)] + [None] * 2
              + [{9: 200.0 - 12 * i} for i in range(6, 10)] + [{9: 92.0}] * 4)
    records, stream = run_stream(models, script)
    starts = [(e.label, e.hand) for r in records for e in r.events if e.dynamic and e.kind == "started"]
    assert starts == [("swipe_right", 9)] or starts == [("swipe_right", 7)], starts
    ends = [e for r in records for e in r.events if e.dynamic and e.kind == "ended"]
    assert not any(e.reason == "hand lost" for e in ends)  # hand 7 was continued, not lost
    assert stream.motion.first_seen == {9: 0.0}  # timed from hand 7's first frame
    # a new id on the very next frame (no gap): the same, one event
    script = [200.0] * 10 + [200.0 - 12 * i for i in range(1, 4)] + [{9: 200.0 - 12 * i} for i in range(4, 10)]
    records, stream = run_stream(models, script)
    events = [(e.kind, e.label) for r in records for e in r.events if e.dynamic]
    assert events.count(("started", "swipe_right")) == 1 and ("ended", "swipe_right") not in events[:1], events
    # gone for longer than RELINK_S: a new hand there starts afresh
    gap = int(RELINK_S * 30) + 2
    records, stream = run_stream(models, [200.0] * 10 + [None] * gap + [{9: 200.0}] * 3)
    assert stream.motion.first_seen == {9: pytest.approx((10 + gap) / 30)} and stream.motion.lost == {}
    lost = [e for r in records for e in r.events if e.dynamic and e.reason == "hand lost"]
    assert all(e.hand == 7 for e in lost)


def test_the_refractory_period_quiets_a_resting_hand_only(models: dict[str, Path]) -> None:
    from types import SimpleNamespace

    from rnn_jax.live.hand_tracks import REFRACTORY_S, HandTracks
    from rnn_jax.live.smoothing import GestureConfig, GestureEvent

    motion = SimpleNamespace(now=1.0, active_at={3: 0.9}, partners={}, relinked={}, lost={})
    tracks = HandTracks(("a",), GestureConfig(), motion)  # type: ignore[arg-type]

    def ev(kind: str, label: str) -> list[GestureEvent]:
        return [GestureEvent(kind, label, 0, 0.9, hand=3, dynamic=True)]
    assert tracks._quiet(ev("ended", "swipe_right")) == ev("ended", "swipe_right")
    motion.now = 1.4  # resting since 0.9: the swipe scrolling out of the window is no new gesture
    assert tracks._quiet(ev("started", "circle_ccw")) == [] and tracks._quiet(ev("ended", "circle_ccw")) == []
    assert tracks._quiet(ev("started", "drop")) == []  # drop follows drag only
    motion.active_at[3] = 1.35  # moving again (a circle after its first arc fired a swipe): it may start
    assert tracks._quiet(ev("started", "circle_cw")) == ev("started", "circle_cw")
    tracks._quiet(ev("ended", "circle_cw"))
    motion.now = 1.6  # resting again (0.25 s)
    assert tracks._quiet(ev("started", "double_tap")) == []  # not after a circle
    tracks.last_end[3] = ("drag", 1.55)
    assert tracks._quiet(ev("started", "drop")) == ev("started", "drop")  # drop after drag, resting or not
    tracks._quiet(ev("ended", "drop"))
    motion.now = 1.6 + REFRACTORY_S + 0.01
    assert tracks._quiet(ev("started", "swipe_up")) == ev("started", "swipe_up")  # long enough after


def test_a_move_back_after_a_swipe_is_a_swipe(models: dict[str, Path]) -> None:
    there = [200.0 - 12 * i for i in range(1, 7)]
    back = [128.0 + 12 * i for i in range(1, 7)]
    records, _ = run_stream(models, [200.0] * 10 + there + back + [200.0] * 4)
    starts = [e.label for r in records for e in r.events if e.dynamic and e.kind == "started"]
    assert starts == ["swipe_right", "swipe_left"]  # the hand moves: not quieted


def test_a_duplicate_track_is_no_partner_and_starts_nothing(models: dict[str, Path]) -> None:
    # the finder follows one hand twice (tracks 7 and 8, 3 px apart) while it swipes
    script = [{7: 200.0}] * 10 + [{7: 200.0 - 12 * i, 8: 203.0 - 12 * i} for i in range(1, 9)] + [{7: 104.0}] * 4
    records, stream = run_stream(models, script)
    starts = [(e.label, e.hand) for r in records for e in r.events if e.dynamic and e.kind == "started"]
    assert starts == [("swipe_right", 7)]  # one event, from the older track; no zoom from a "pair"
    both = records[14]
    assert {h.hand.track_id for h in both.hands} == {7, 8}
    assert all(h.motion is None or h.hand.track_id == 7 for h in both.hands)


def test_a_young_track_starts_no_motion_event(models: dict[str, Path]) -> None:
    from rnn_jax.runtime import Predictor

    # a hand that appears already moving (as the finder's false, short-lived hands do): the swipe
    # frames come while the track is younger than min_track_age (image-like source: 30 frames/s)
    script = [200.0 - 12 * i for i in range(6)] + [None] * 12 + [200.0 - 12 * i for i in range(14)]

    def dynamic_starts(min_age: float) -> list[tuple[int, str]]:
        motion = MotionModel.load(models["motion"], min_track_age=min_age)
        stream = PredictionStream(Predictor.load(models["static"], threads=1), Frames(len(script)),
                                  finder=ScriptedFinder(script), motion=motion)
        records = list(stream)
        young = [r.hands[0] for r in records[:6] if r.hands and min_age > 5 / 30]
        assert all(h.motion is None and h.motion_top is not None for h in young)
        return [(e.frame, e.label) for r in records for e in r.events if e.dynamic and e.kind == "started"]

    first = dynamic_starts(0)[0]
    assert first[0] < 6 and first[1] == "swipe_right"  # no minimum: the first short track fires
    starts = dynamic_starts(0.25)
    # the first 6-frame track (0.17 s) is lost before it is 0.25 s old; the second one (frames 18..31, 0.4 s
    # later: not relinked) is timed from its own first frame, so it fires only once 0.25 s old (frame 26 on)
    assert starts and all(frame >= 18 + 8 for frame, _ in starts) and starts[0][1] == "swipe_right"
    with pytest.raises(ConfigError, match="minimum track age"):
        MotionModel.load(models["motion"], min_track_age=-1)


def test_motion_min_age_flag_reaches_the_model_and_bad_values_are_refused(
        models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """The command line, end to end: --motion-min-age (seconds) changes which motion events the run writes."""
    import cv2

    import rnn_jax.live.cli as cli
    from rnn_jax.live.cli import build_parser

    script = [200.0 - 12 * i for i in range(6)] + [None] * 12 + [200.0 - 12 * i for i in range(14)]
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(len(script)):
        cv2.imwrite(str(frames / f"{i:03d}.png"), np.full((H, W, 3), 90, np.uint8))

    def dynamic_starts(*flag: str) -> list[int]:
        monkeypatch.setattr(cli, "make_finder", lambda *a, **k: ScriptedFinder(script))
        out = tmp_path / f"run{'-'.join(flag)}.jsonl"
        assert main(["--onnx", str(models["static"]), "--motion", str(models["motion"]), "--source", str(frames),
                     "--headless", "--jsonl", str(out), *flag]) == 0
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        return [e["frame"] for r in rows for e in r.get("events", ())
                if e.get("dynamic") and e["event"] == "started"]

    assert dynamic_starts("--motion-min-age", "0")[0] < 6  # no minimum: the first, short track fires
    for flag in (("--motion-min-age", "0.25"), ()):  # absent: the model's default
        starts = dynamic_starts(*flag)
        assert starts and min(starts) >= 18 + 8, flag  # only the second track, once 0.25 s old (an image folder: 30 fps)
    assert DEFAULT_MIN_TRACK_AGE == 0.25
    starts = dynamic_starts("--motion-min-age", "0.4")
    assert not starts or min(starts) >= 18 + 12
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["--onnx", "m.onnx", "--motion-min-age", "-1"])
    assert stop.value.code == 2 and "must be >= 0, got -1" in capsys.readouterr().err
