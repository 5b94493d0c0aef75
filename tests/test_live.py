"""rnn_jax.live: gesture logic, sources, overlay, the notebook API and the headless CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx_fixtures import make_fixture_info, write_fixture_onnx

from rnn_jax.errors import ConfigError, SourceError
from rnn_jax.live import (
    GestureConfig,
    GestureTracker,
    LiveConfig,
    SmoothingConfig,
    default_live_threads,
    iter_predictions,
    open_source,
)
from rnn_jax.live.cli import main
from rnn_jax.live.overlay import KEY_LEGEND, draw_overlay
from rnn_jax.live.results import RunStats
from rnn_jax.live.smoothing import Smoother
from rnn_jax.runtime import Predictor

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO / ".." / "shared" / "data"
MEGAMIND = SHARED_DATA / "video" / "Megamind.avi"
BANNED = ("jax", "jaxlib", "flax", "optax", "orbax", "orbax.checkpoint", "tensorflow",
          "tensorflow_datasets", "jax2onnx", "grain")
BGR = {"red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0)}


def write_test_video(path: Path, colours: list[str], size: tuple[int, int] = (64, 48)) -> Path:
    """A small MJPG .avi with one solid-colour frame per entry of ``colours``."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened(), "this OpenCV cannot write MJPG .avi"
    for name in colours:
        writer.write(np.full((size[1], size[0], 3), BGR[name], np.uint8))
    writer.release()
    return path


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("live")
    return {
        "model": write_fixture_onnx(root / "colours.onnx"),
        "video": write_test_video(root / "clip.avi", ["red"] * 6 + ["blue"] * 6),
        "root": root,
    }


def one_hot_ish(p_a: float) -> np.ndarray:
    return np.array([p_a, 1.0 - p_a])


# ------------------------------------------------------------- smoothing config
@pytest.mark.parametrize(("text", "expected"), [
    ("none", SmoothingConfig("none")),
    ("ema:0.6", SmoothingConfig("ema", alpha=0.6)),
    (" EMA:1 ", SmoothingConfig("ema", alpha=1.0)),
    ("vote:5", SmoothingConfig("vote", window=5)),
])
def test_parse_smoothing(text: str, expected: SmoothingConfig) -> None:
    parsed = SmoothingConfig.parse(text)
    assert parsed == expected
    assert SmoothingConfig.parse(str(parsed)) == parsed


@pytest.mark.parametrize("text", ["ema", "ema:0", "ema:1.5", "ema:x", "vote:0", "vote:2.5",
                                  "median:3", "none:1", ""])
def test_bad_smoothing_is_a_clear_error(text: str) -> None:
    with pytest.raises(ConfigError, match="ema|vote|smoothing"):
        SmoothingConfig.parse(text)


@pytest.mark.parametrize("kwargs", [{"threshold": 1.5}, {"threshold": -0.1}, {"stable_frames": 0}])
def test_gesture_config_validated(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        GestureConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"roi_fraction": 0.0}, {"roi_fraction": 1.5}, {"max_frames": 0}])
def test_live_config_validated(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        LiveConfig(**kwargs)


# ------------------------------------------------------------------- smoothing
def test_ema_hand_checked() -> None:
    s = Smoother(SmoothingConfig("ema", alpha=0.5))
    outs = [s.update(p) for p in ([1.0, 0.0], [0.0, 1.0], [0.0, 1.0])]
    np.testing.assert_allclose([o[1] for o in outs], [[1, 0], [0.5, 0.5], [0.25, 0.75]])
    assert [o[0] for o in outs] == [0, 0, 1]  # the 0.5/0.5 tie keeps the first class
    s.reset()
    np.testing.assert_allclose(s.update([0.0, 1.0])[1], [0, 1])  # history gone


def test_vote_hand_checked() -> None:
    s = Smoother(SmoothingConfig("vote", window=3))
    seq = [[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]]
    outs = [s.update(p) for p in seq]
    # votes: a | a,b (tie -> higher mean: a) | a,b,b -> b | b,b,a (window of 3) -> b
    assert [o[0] for o in outs] == [0, 0, 1, 1]
    np.testing.assert_allclose(outs[1][1], [0.55, 0.45])
    np.testing.assert_allclose(outs[3][1], [1.1 / 3, 1.9 / 3])


def test_none_passes_through() -> None:
    top, probs = Smoother(SmoothingConfig("none")).update([0.2, 0.5, 0.3])
    assert top == 1 and probs.tolist() == [0.2, 0.5, 0.3]


# ----------------------------------------------------------- gesture tracking
def test_tracker_start_after_stable_frames_and_end_reasons() -> None:
    cfg = GestureConfig(SmoothingConfig("none"), threshold=0.6, stable_frames=3)
    tracker = GestureTracker(("a", "b"), cfg)
    p_a = [0.9, 0.9, 0.9, 0.9, 0.2, 0.2, 0.2, 0.5, 0.9]
    states = [tracker.update(one_hot_ish(p)) for p in p_a]
    assert [s.label for s in states] == [None, None, "a", "a", None, None, "b", None, None]
    assert [s.top_label for s in states] == ["a"] * 4 + ["b"] * 3 + ["a", "a"]
    events = [(e.kind, e.label, e.frame, e.duration_frames, e.reason)
              for s in states for e in s.events]
    assert events == [
        ("started", "a", 2, 0, ""),
        ("ended", "a", 4, 2, "changed"),  # active on frames 2 and 3
        ("started", "b", 6, 0, ""),
        ("ended", "b", 7, 1, "low confidence"),  # 0.5 < threshold 0.6
    ]
    assert tracker.finish() == ()  # nothing active at the end


def test_tracker_switch_with_one_stable_frame_gives_two_events() -> None:
    tracker = GestureTracker(("a", "b"), GestureConfig(SmoothingConfig("none"), 0.6, 1))
    assert [e.kind for e in tracker.update(one_hot_ish(0.9)).events] == ["started"]
    switch = tracker.update(one_hot_ish(0.1)).events
    assert [(e.kind, e.label) for e in switch] == [("ended", "a"), ("started", "b")]
    assert switch[0].to_dict() == {"event": "ended", "label": "a", "frame": 1, "confidence": 0.1,
                                   "duration_frames": 1, "reason": "changed"}
    (end,) = tracker.finish()
    assert (end.label, end.frame, end.duration_frames, end.reason) == ("b", 1, 1, "end of stream")
    json.dumps(end.to_dict())  # plain JSON (no NaN)


def test_tracker_with_ema_needs_confidence_to_build_up() -> None:
    cfg = GestureConfig(SmoothingConfig("ema", alpha=0.5), threshold=0.6, stable_frames=2)
    tracker = GestureTracker(("a", "b"), cfg)
    # raw p(a): 0.5, 1, 1, 1 -> smoothed 0.5, 0.75, 0.875, 0.9375
    states = [tracker.update(one_hot_ish(p)) for p in (0.5, 1.0, 1.0, 1.0)]
    np.testing.assert_allclose([s.confidence for s in states], [0.5, 0.75, 0.875, 0.9375])
    assert [s.label for s in states] == [None, None, "a", "a"]
    (end,) = tracker.reset()
    assert (end.kind, end.reason, end.duration_frames) == ("ended", "reset", 2)
    assert tracker.update(one_hot_ish(0.0)).probabilities.tolist() == [0.0, 1.0]  # fresh EMA


def test_tracker_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="3 probabilities for 2 classes"):
        GestureTracker(("a", "b")).update(np.ones(3) / 3)


# --------------------------------------------------------------------- sources
def test_video_source_reads_every_frame_then_stops(media: dict[str, Path]) -> None:
    with open_source(media["video"]) as src:
        assert src.kind == "video" and not src.live
        assert src.frame_count == 12 and src.fps == pytest.approx(10.0)
        frames = list(src)
        assert src.read() is None  # stays ended
    assert len(frames) == 12 and frames[0].shape == (48, 64, 3)
    assert frames[0][..., 2].mean() > 200 and frames[-1][..., 0].mean() > 200  # red ... blue


def test_a_paced_file_comes_like_a_camera(media: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """--pace: the same frames, frame i handed over at start + i/fps (at once when the reader is behind),
    and marked live, so the hand finder runs as with a camera (frames never wait for its search)."""
    from rnn_jax.live import sources

    clock = {"now": 100.0}
    slept: list[float] = []
    monkeypatch.setattr(sources.time, "perf_counter", lambda: clock["now"])

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock["now"] += seconds

    monkeypatch.setattr(sources.time, "sleep", sleep)
    with open_source(media["video"]) as plain:
        expected = list(plain)
    with sources.PacedSource(open_source(media["video"]), 20.0) as paced:
        assert paced.live and paced.fps == 20.0 and paced.frame_count == 12
        got = [paced.read()]
        clock["now"] += 0.2  # the reader falls 4 frames behind: the next frames come at once
        got += list(paced)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
    assert sum(slept) == pytest.approx(11 / 20 - 0.2) and len(slept) == 12 - 1 - 4
    # as a camera: a reader 4 frames behind gets the newest frame; the ones before it are gone
    clock["now"] = 100.0
    with sources.PacedSource(open_source(media["video"]), 20.0, drop=True) as camera:
        first = camera.read()
        clock["now"] += 0.2
        newest = camera.read()
        assert camera.index == 4 and camera.dropped == 3
        assert np.array_equal(first, expected[0]) and np.array_equal(newest, expected[4])
        assert len(list(camera)) == 7 and camera.index == 11
    with pytest.raises(SourceError, match="pace"):
        sources.PacedSource(open_source(media["video"]), 0)
    assert sources.live_spec(0) and sources.live_spec("1") and sources.live_spec("rtsp://cam/1")
    assert not sources.live_spec("clip.avi") and not sources.live_spec(media["video"])


def test_folder_source_natural_order(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for name, value in [("img10.png", 10), ("img2.png", 2), ("img1.jpg", 1)]:
        cv2.imwrite(str(tmp_path / name), np.full((8, 8, 3), value, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "img5.png").write_bytes(b"broken")
    with open_source(tmp_path) as src:
        assert src.kind == "images" and src.frame_count == 4
        values = [int(f[0, 0, 0]) for f in src]
    assert values == [1, 2, 10]
    assert "img5.png" in caplog.text
    with open_source(tmp_path / "img2.png") as single:
        assert len(list(single)) == 1


def test_missing_and_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or folder.*--source 0"):
        open_source(tmp_path / "missing.avi")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="has no images"):
        open_source(tmp_path / "empty")
    fake = tmp_path / "fake.avi"
    fake.write_text("this is not a video")
    with pytest.raises(SourceError, match="cannot open video file"):
        open_source(fake)


def test_missing_camera_lists_working_indices_quickly(monkeypatch) -> None:
    """Quickly = a bounded probe: the requested index once, then indices 0..5 once each."""
    import rnn_jax.live.sources as sources

    opened = []

    def capture(index, *args):
        opened.append(index)
        return real(index, *args)

    real = sources.cv2.VideoCapture
    monkeypatch.setattr(sources.cv2, "VideoCapture", capture)
    with pytest.raises(SourceError, match="cannot open camera 99") as exc:
        open_source("99")
    assert opened == [99, 0, 1, 2, 3, 4, 5]
    assert "0..5" in str(exc.value) or "cameras that do open" in str(exc.value)


def test_unreachable_stream() -> None:
    with pytest.raises(SourceError, match="cannot open stream"):
        open_source("rtsp://127.0.0.1:9/nothing")


# ------------------------------------------------------------------- overlay
@pytest.mark.parametrize("shape", [(480, 640, 3), (24, 32, 3), (100, 100)])
def test_overlay_draws_without_touching_the_input(shape: tuple[int, ...]) -> None:
    frame = np.full(shape, 90, np.uint8)
    before = frame.copy()
    names = ("a-very-long-gesture-name-indeed", "b", "c")
    out = draw_overlay(frame, class_names=names, probabilities=np.array([0.7, 0.2, 0.1]),
                       label=names[0], top_label=names[0], confidence=0.7, threshold=0.6,
                       fps=29.97, latency_ms=1.5, roi=(10, 5, 20), top_k=5, mirror=True,
                       paused=True, note="saved")
    assert out.shape[:2] == shape[:2] and out.ndim == 3
    assert not np.array_equal(out[..., 0], before if before.ndim == 2 else before[..., 0])
    np.testing.assert_array_equal(frame, before)
    assert "q/Esc quit" in KEY_LEGEND and "space pause" in KEY_LEGEND


# ------------------------------------------------------------------ the loop API
def test_iter_predictions_records_and_summary(media: dict[str, Path]) -> None:
    with iter_predictions(media["model"], media["video"], smoothing="none", stable_frames=2,
                          threads=1) as stream:
        records = list(stream)
        final = stream.finish()
    assert [r.index for r in records] == list(range(12))
    assert [r.top_label for r in records] == ["red"] * 6 + ["blue"] * 6
    assert all(r.frame.shape == (48, 64, 3) and r.roi is None for r in records)
    assert all(r.latency_ms > 0 and r.loop_ms >= r.latency_ms for r in records)
    events = [(e.kind, e.label, e.frame) for r in records for e in r.events]
    assert events == [("started", "red", 1), ("ended", "red", 6), ("started", "blue", 7)]
    assert [(e.kind, e.label, e.reason) for e in final] == [("ended", "blue", "end of stream")]
    summary = stream.summary()
    assert summary.frames == 12 and summary.mean_fps > 0
    assert summary.gestures == {"blue": (1, 5), "red": (1, 5)}
    assert summary.no_gesture_frames == 2
    assert "12 frames" in summary.format() and "red x1 (5 frames)" in summary.format()
    json.dumps(summary.to_dict())


def test_iter_predictions_max_frames_and_roi_default(media: dict[str, Path]) -> None:
    hand = write_fixture_onnx(media["root"] / "hand.onnx", info=make_fixture_info(crop_mode="hand"))
    predictor = Predictor.load(hand, threads=1)
    # hands off: with the hand models built, "auto" would find hands instead of using the ROI
    with iter_predictions(predictor, media["video"], max_frames=4, hands="off") as stream:
        records = list(stream)
    assert len(records) == 4 and stream.roi_enabled
    assert records[0].roi == (17, 9, 29)  # side 0.6 * 48 -> 29 px, centred in 64 x 48
    with iter_predictions(predictor, media["video"], roi=False, max_frames=1) as stream:
        assert next(stream).roi is None


def test_run_stats_percentiles() -> None:
    stats = RunStats()
    stats.latency_ms = [float(i) for i in range(1, 101)]
    stats.loop_ms = [10.0] * 100
    s = stats.summary()
    assert s.latency_p50_ms == pytest.approx(50.5) and s.latency_p95_ms == pytest.approx(95.05)
    assert s.mean_fps == pytest.approx(100.0) and s.frames == 100
    assert RunStats().summary().frames == 0


def test_default_threads() -> None:
    assert 1 <= default_live_threads() <= 4


# ------------------------------------------------------------------------ CLI
def test_cli_headless_jsonl(media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "sub" / "frames.jsonl"
    rc = main(["--onnx", str(media["model"]), "--source", str(media["video"]), "--headless",
               "--jsonl", str(out), "--smoothing", "vote:3", "--stable-frames", "2", "--threads", "1"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["frame"] for d in lines] == list(range(12))
    for d in lines:
        assert {"frame", "label", "confidence", "latency_ms", "loop_ms", "top_label",
                "probabilities", "events"} <= d.keys()
        assert d["label"] in (None, "red", "green", "blue")
        assert 0.0 <= d["confidence"] <= 1.0 and d["latency_ms"] > 0
        assert set(d["probabilities"]) == {"red", "green", "blue"}
    events = [json.loads(line) for line in captured.out.splitlines()]
    assert [(e["event"], e["label"]) for e in events] == [
        ("started", "red"), ("ended", "red"), ("started", "blue"), ("ended", "blue")]
    assert events[-1]["reason"] == "end of stream"
    assert "summary: 12 frames" in captured.err and "p95" in captured.err


@pytest.mark.parametrize(("extra", "match"), [
    (["--threshold", "1.5"], "error: threshold must be between 0 and 1"),
    (["--smoothing", "ema:2"], "error: ema weight must be in"),
    (["--roi-size", "0"], "error: roi size"),
    (["--source", "99"], "error: cannot open camera 99"),
    (["--source", "no/such/clip.avi"], "error: no such file or folder"),
])
def test_cli_user_errors_are_one_line(media: dict[str, Path], capsys: pytest.CaptureFixture,
                                      extra: list[str], match: str) -> None:
    rc = main(["--onnx", str(media["model"]), "--headless", *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(match) and err.count("\n") == 1, err


def test_cli_folder_of_undecodable_files_is_one_line(media: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    """Issue 20, mend 3: it used to exit 0 with "no gesture on 0 of 0 frames"."""
    for name in ("a.jpg", "b.png", "c.jpg"):
        (tmp_path / name).write_bytes(b"not an image")
    rc = main(["--onnx", str(media["model"]), "--source", str(tmp_path), "--headless"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: no frame could be read") and err.count("\n") == 1, err
    assert "none of its 3 file(s)" in err


def test_cli_summary_counts_skipped_files(media: dict[str, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    cv2.imwrite(str(tmp_path / "img1.png"), np.full((16, 16, 3), (0, 0, 255), np.uint8))
    (tmp_path / "img2.png").write_bytes(b"broken")
    cv2.imwrite(str(tmp_path / "img3.png"), np.full((16, 16, 3), (255, 0, 0), np.uint8))
    (tmp_path / "img4.jpg").write_bytes(b"")
    rc = main(["--onnx", str(media["model"]), "--source", str(tmp_path), "--headless"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "summary: 2 frames" in err and "skipped 2 file(s) that could not be decoded" in err


def test_cli_missing_model_and_debug(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--onnx", str(tmp_path / "no.onnx"), "--headless"]) == 2
    assert capsys.readouterr().err.startswith("error: model file not found")
    assert main(["--onnx", str(tmp_path / "no.onnx"), "--headless", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_cli_window_mode_without_gui_says_so(media: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    try:
        cv2.namedWindow("probe")
        cv2.destroyAllWindows()
        pytest.skip("this OpenCV has GUI support; the no-GUI message cannot be triggered")
    except cv2.error:
        pass
    assert main(["--onnx", str(media["model"]), "--source", str(media["video"])]) == 2
    assert "--headless" in capsys.readouterr().err


def test_cli_help_mentions_keys_and_flags(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--onnx", "--source", "--headless", "--jsonl", "--max-frames", "--smoothing",
                 "--threshold", "--stable-frames", "--roi", "--mirror", "--threads", "--width",
                 KEY_LEGEND):
        assert flag in text


def test_module_cli_end_to_end_in_subprocess(media: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "e2e.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "rnn_jax.live", "--onnx", str(media["model"]), "--source",
         str(media["video"]), "--headless", "--jsonl", str(out), "--max-frames", "8"],
        capture_output=True, text=True, env=subprocess_env(), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().splitlines()) == 8
    assert all(json.loads(line)["event"] in ("started", "ended") for line in proc.stdout.splitlines())
    assert "summary: 8 frames" in proc.stderr


def test_live_never_imports_jax(media: dict[str, Path], tmp_path: Path) -> None:
    """The webcam machine has no JAX: make it unimportable and run the whole live path."""
    code = f"""
import sys
BANNED = {BANNED!r}
for name in BANNED:
    sys.modules[name] = None  # any import of these now raises ImportError
import rnn_jax, rnn_jax.live, rnn_jax.capture, rnn_jax.runtime
from rnn_jax.live import action_map, actions, classifiers, cli, hand_tracks, loop, motion, overlay, results, settings, smoothing, sources
from rnn_jax.runtime import Predictor
rc = cli.main(["--onnx", {str(media["model"])!r}, "--source", {str(media["video"])!r},
               "--headless", "--max-frames", "3", "--jsonl", {str(tmp_path / "x.jsonl")!r}])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BANNED and sys.modules[m] is not None)
print("RC", rc, "LOADED", loaded)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=subprocess_env(), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "RC 0 LOADED []" in proc.stdout


@pytest.mark.shared
@pytest.mark.skipif(not MEGAMIND.is_file(),
                    reason=f"real video not found at {MEGAMIND} (../shared/data beside the project)")
def test_headless_over_real_video(media: dict[str, Path], tmp_path: Path) -> None:
    """Every frame of a real clip gets exactly one JSONL line; the run ends cleanly."""
    cap = cv2.VideoCapture(str(MEGAMIND))
    n_frames = 0
    while cap.grab():
        n_frames += 1
    cap.release()
    assert n_frames > 0
    out = tmp_path / "megamind.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "rnn_jax.live", "--onnx", str(media["model"]), "--source",
         str(MEGAMIND), "--headless", "--jsonl", str(out), "--threads", "1"],
        capture_output=True, text=True, env=subprocess_env(), cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["frame"] for d in lines] == list(range(n_frames))
    for event in (json.loads(line) for line in proc.stdout.splitlines()):
        assert event["event"] in ("started", "ended")
    assert f"summary: {n_frames} frames" in proc.stderr


def test_window_keys_with_a_fake_gui(media: dict[str, Path], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """Window mode without a display: fake HighGUI and script the keys m, s, space, r, space, q."""
    keys = [ord("m"), ord("s"), ord(" "), ord("r"), ord(" "), ord("q")]
    shown: list[np.ndarray] = []
    monkeypatch.setattr(cv2, "namedWindow", lambda *a, **k: None)
    monkeypatch.setattr(cv2, "destroyAllWindows", lambda: None)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(cv2, "imshow", lambda name, image: shown.append(image))
    monkeypatch.setattr(cv2, "waitKey", lambda delay: keys.pop(0) if keys else -1)
    rc = main(["--onnx", str(media["model"]), "--source", str(media["video"]), "--roi",
               "--stable-frames", "1", "--screenshot-dir", str(tmp_path / "shots")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert keys == [] and len(shown) == 6  # frames 0, 1, 2 (paused: 3 draws), 3 -> quit
    assert "summary: 4 frames" in captured.err
    assert len(list((tmp_path / "shots").glob("*.png"))) == 1
    events = [json.loads(line) for line in captured.out.splitlines()]
    assert [(e["event"], e.get("reason")) for e in events] == [
        ("started", None), ("ended", "reset"), ("started", None), ("ended", "end of stream")]


def test_a_confident_no_gesture_class_is_not_a_gesture():
    from rnn_jax.live.smoothing import GestureConfig, GestureTracker, SmoothingConfig

    tracker = GestureTracker(("like", "no_gesture"),
                             GestureConfig(smoothing=SmoothingConfig.parse("none"), threshold=0.5, stable_frames=1))
    states = [tracker.update(np.array(p)) for p in ([0.1, 0.9], [0.1, 0.9], [0.9, 0.1])]
    assert [s.label for s in states] == [None, None, "like"]
    assert states[0].top_label == "no_gesture"
