"""``python -m rnn_jax.live``: real-time gesture recognition from a camera, video, folder or stream.

Window mode needs an OpenCV build with GUI support; ``--headless`` runs anywhere and
writes machine-readable output instead (gesture events on stdout, per-frame JSONL).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import IO, TextIO

import cv2

from rnn_jax.bundled import bundled_model
from rnn_jax.errors import RnnJaxError, exit_code
from rnn_jax.live.actions import (
    DEFAULT_COOLDOWN_S,
    DEFAULT_TIMEOUT_S,
    build_runner,
    check_gestures,
    print_outcomes,
)
from rnn_jax.live.loop import PredictionStream
from rnn_jax.live.motion import (
    DEFAULT_MIN_TRACK_AGE,
    DEFAULT_MOTION_GESTURE,
    MotionModel,
    check_motion_model,
)
from rnn_jax.live.overlay import KEY_LEGEND, draw_overlay
from rnn_jax.live.results import FrameResult
from rnn_jax.live.settings import (
    DEFAULT_HAND_SEARCH,
    DEFAULT_THRESHOLD,
    HAND_SEARCH,
    HANDS_CHOICES,
    LiveConfig,
    default_live_threads,
    gesture_origins,
    make_finder,
    resolve_gesture,
)
from rnn_jax.live.smoothing import SMOOTHING_HELP, GestureConfig, GestureEvent
from rnn_jax.live.sources import PacedSource, live_spec, open_source
from rnn_jax.runtime.landmark_predictor import load_predictor

WINDOW = "rnn-jax live"
BANNER_S = 1.5  # seconds a dynamic gesture's name stays on screen after it fires

EPILOG = f"""\
examples:
  python -m rnn_jax.live --onnx student.onnx                 webcam 0, window
  python -m rnn_jax.live --onnx student.onnx --source 1 --width 1280 --height 720
  python -m rnn_jax.live --onnx student.onnx --source clip.avi --headless --jsonl out.jsonl
  python -m rnn_jax.live --onnx student.onnx --hands on        find hands (after
                                  `python tools/build_hand_models.py`), classify each one
  python -m rnn_jax.live --onnx student.onnx --on 'like=notify-send rnn-jax like' --on 'peace=xdg-open .'
  python -m rnn_jax.live --onnx student.onnx --actions actions.toml --dry-run

keys (window mode): {KEY_LEGEND}

output: gesture events ("started"/"ended") are JSON lines on stdout; the end-of-run
summary (frames, FPS, latency percentiles, gestures shown) goes to stderr.
exit status: 0 ok, 2 bad input (one line "error: ..."; --debug for the traceback),
130 interrupted.
"""


def _int_at_least(minimum: int):
    """An argparse type: a whole number >= ``minimum`` (a one-line error otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m rnn_jax.live",
        description="Recognise hand gestures in real time with an exported rnn-jax ONNX model "
                    "(numpy + OpenCV + onnxruntime only; no JAX needed).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx", default=str(bundled_model()), metavar="PATH",
                   help="exported model; its metadata gives labels, input size and crop mode (default: the "
                        "HaGRID landmark model bundled with rnn-jax, rnn_jax/bundled/)")
    src = p.add_argument_group("source")
    src.add_argument("--source", default="0", metavar="SRC",
                     help="camera index (0, 1, ...), video file, folder of images (natural sort), "
                          "single image, or stream URL (rtsp://, http://) (default: 0)")
    src.add_argument("--width", type=_positive_int, metavar="PX", help="requested camera width")
    src.add_argument("--height", type=_positive_int, metavar="PX", help="requested camera height")
    src.add_argument("--max-frames", type=_positive_int, metavar="N", help="stop after N frames")
    src.add_argument("--pace", type=_positive_float, metavar="FPS",
                     help="hand a file's frames over at FPS frames/s, as a camera does (none dropped: a loop "
                          "slower than FPS falls behind); the hand finder then runs as live: a frame never waits "
                          "for a palm search beside the loop. Default: as fast as the loop goes, each frame "
                          "waiting for its search (the same result every run)")

    g = p.add_argument_group("gesture logic")
    g.add_argument("--smoothing", default=None, metavar="SPEC",
                   help=f"{SMOOTHING_HELP} (default: the model file's, stored with its live threshold, else "
                        f"{GestureConfig().smoothing})")
    g.add_argument("--threshold", type=float, default=None, metavar="P",
                   help="smoothed confidence below this = 'no gesture' (0..1; default: the model file's "
                        f"reject_threshold, chosen on validation at export, else {DEFAULT_THRESHOLD:g})")
    g.add_argument("--stable-frames", type=_positive_int, default=None, metavar="N",
                   help="frames a gesture must stay on top before it 'starts' (default: the model file's, stored "
                        f"with its live threshold, else {GestureConfig().stable_frames})")

    h = p.add_argument_group("hands")
    h.add_argument("--hands", choices=HANDS_CHOICES, default="auto",
                   help="find hands with the palm + landmark models and classify each hand's crop; "
                        "no hand = no gesture. auto (default): on when the hand models are built "
                        "and the model was trained on hand crops (crop_mode 'hand')")
    h.add_argument("--hand-models", type=Path, metavar="DIR",
                   help="folder of the hand models (default: $RNN_JAX_HANDS or ~/.cache/rnn-jax/hands; "
                        "build them with `python tools/build_hand_models.py`)")
    h.add_argument("--max-hands", type=_positive_int, default=2, metavar="N",
                   help="most hands followed at once (default: 2)")
    h.add_argument("--hand-search", choices=tuple(HAND_SEARCH), default=DEFAULT_HAND_SEARCH,
                   help="how much the hand finder spends looking for new hands (tracked hands cost one "
                        "landmark run each): light, balanced (default), thorough, or every-frame (a palm "
                        "search on every frame without a hand, as before the budget); figures in "
                        "docs/performance.md")
    h.add_argument("--motion", type=Path, metavar="PATH",
                   help="a motion model (python -m experiments.motion) beside the static one: dynamic "
                        "gestures (swipes, zoom, drag/drop, taps, circles) per hand, events marked \"dynamic\"; needs hands on")
    h.add_argument("--motion-threshold", type=float, metavar="P",
                   help="the motion model's threshold (default: its file's reject_threshold, else 0.6)")
    h.add_argument("--motion-stable-frames", type=_positive_int, metavar="N",
                   help=f"frames a dynamic gesture must stay on top before it starts (default: "
                        f"{DEFAULT_MOTION_GESTURE.stable_frames})")
    h.add_argument("--motion-min-age", type=_non_negative_seconds, metavar="S",
                   help=f"seconds a hand must have been tracked before its motion may start an event "
                        f"(default: {DEFAULT_MIN_TRACK_AGE:g}; stops short-lived false hands, docs/motion.md)")
    h.add_argument("--skeleton", action=argparse.BooleanOptionalAction, default=True,
                   help="draw the 21-landmark skeleton (key k toggles it; default: on)")

    a = p.add_argument_group(
        "actions", "run a command when a gesture starts (per hand; it must end before it fires again, "
                   "then a cooldown; argument lists, no shell unless the file says shell = true; never "
                   "blocks the loop; outcomes in the JSONL and as {\"event\": \"action\"} lines on stdout)")
    a.add_argument("--on", action="append", default=[], metavar="GESTURE=COMMAND",
                   help="e.g. --on 'like=notify-send rnn-jax like' (repeatable; the command is split "
                        "like a shell would, run without one)")
    a.add_argument("--actions", type=Path, metavar="FILE",
                   help="mapping file, .toml (Python >= 3.11) or .json: timeout, cooldown and an 'on' "
                        "table gesture -> command list, string, or {command, shell, timeout, cooldown}")
    a.add_argument("--dry-run", action="store_true", help="print what would run, run nothing")
    a.add_argument("--action-timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"seconds a command may run before it is killed (default: {DEFAULT_TIMEOUT_S:g})")
    a.add_argument("--action-cooldown", type=float, default=DEFAULT_COOLDOWN_S, metavar="S",
                   help=f"seconds between two firings of one action (default: {DEFAULT_COOLDOWN_S:g})")

    v = p.add_argument_group("view")
    v.add_argument("--roi", action=argparse.BooleanOptionalAction, default=None,
                   help="classify only a centred square (hold your hand in it). Default: on "
                        "when the model was trained on hand crops (crop_mode 'hand'), else off")
    v.add_argument("--roi-size", type=float, default=0.6, metavar="F",
                   help="ROI side as a fraction of the frame's short side (default: 0.6)")
    v.add_argument("--mirror", action="store_true",
                   help="mirror the display (selfie view); the model still sees the raw frame")
    v.add_argument("--top-k", type=_positive_int, default=3, metavar="K",
                   help="probability bars to draw (default: 3)")
    v.add_argument("--screenshot-dir", type=Path, default=Path("."), metavar="DIR",
                   help="where the 's' key saves screenshots (default: current folder)")

    o = p.add_argument_group("output and performance")
    o.add_argument("--headless", action="store_true",
                   help="no window: print gesture events on stdout (use with --jsonl)")
    o.add_argument("--jsonl", type=Path, metavar="PATH",
                   help="write one JSON object per frame (frame, label, confidence, latency_ms, ...)")
    o.add_argument("--threads", type=_positive_int, metavar="N",
                   help=f"onnxruntime intra-op threads (default here: {default_live_threads()} = "
                        "half the cores, max 4, leaving cores for capture and display)")
    o.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    return p


def _emit(events: tuple[GestureEvent, ...], out: TextIO) -> None:
    for event in events:
        out.write(json.dumps(event.to_dict()) + "\n")
    if events:
        out.flush()


def _check_gui() -> None:
    """Fail before opening the camera if this OpenCV cannot show windows."""
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
    except cv2.error:
        raise RnnJaxError(
            "this OpenCV build cannot open windows (opencv-python-headless?). Run with --headless, "
            "or `pip uninstall opencv-python-headless && pip install opencv-python`") from None


class _WindowUI:
    """Window state and keys: q/Esc quit, m mirror, r reset, s screenshot, space pause."""

    def __init__(self, args: argparse.Namespace, stream: PredictionStream, out: TextIO) -> None:
        self.args, self.stream, self.out = args, stream, out
        self.mirror = args.mirror
        self.skeleton = args.skeleton
        self.paused = False
        self.fps: float | None = None
        self.note = ""
        self.note_until = 0.0
        self.banner = ""  # the dynamic gesture that fired last, shown for BANNER_S
        self.banner_until = 0.0
        # A video file would otherwise play as fast as we can classify (hundreds of FPS);
        # in a window, play it at its own frame rate. Cameras pace themselves.
        fps = stream.source.fps
        self.period_s = 1.0 / fps if fps and not stream.source.live else 0.0
        self.last_shown = time.perf_counter()

    def show(self, rec: FrameResult) -> bool:
        """Display ``rec`` and handle keys; False = the user wants to quit."""
        if rec.loop_ms > 0:  # a smoothed FPS reads better than a flickering per-frame one
            fps = 1000.0 / rec.loop_ms
            self.fps = fps if self.fps is None else 0.9 * self.fps + 0.1 * fps
        for event in rec.events:
            if event.dynamic and event.kind == "started":
                self.banner, self.banner_until = event.label.replace("_", " "), time.monotonic() + BANNER_S
        while True:
            note = self.note if time.monotonic() < self.note_until else ""
            banner = self.banner if time.monotonic() < self.banner_until else None
            image = draw_overlay(
                rec.frame, class_names=rec.class_names, probabilities=rec.probabilities,
                label=rec.label, top_label=rec.top_label, confidence=rec.confidence,
                threshold=self.stream.config.gesture.threshold, fps=self.fps,
                latency_ms=rec.latency_ms, roi=rec.roi, top_k=self.args.top_k,
                mirror=self.mirror, paused=self.paused, note=note, hands=rec.hands,
                skeleton=self.skeleton, banner=banner)
            cv2.imshow(WINDOW, image)
            wait_s = self.period_s - (time.perf_counter() - self.last_shown)
            key = cv2.waitKey(30 if self.paused else max(1, round(wait_s * 1000))) & 0xFF
            self.last_shown = time.perf_counter()
            if key in (ord("q"), 27) or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                return False
            if key == ord("m"):
                self.mirror = not self.mirror
            elif key == ord("k"):
                self.skeleton = not self.skeleton
                self._say(f"skeleton {'on' if self.skeleton else 'off'}")
            elif key == ord("r"):
                _emit(self.stream.reset(), self.out)
                self._say("reset")
            elif key == ord("s"):
                self._screenshot(image, rec.index)
            elif key == ord(" "):
                self.paused = not self.paused
                if not self.paused:
                    self.stream.restart_clock()
            if not self.paused:
                return True

    def _say(self, text: str) -> None:
        self.note, self.note_until = text, time.monotonic() + 2.0

    def _screenshot(self, image: object, index: int) -> None:
        folder: Path = self.args.screenshot_dir
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"rnn_jax_{time.strftime('%Y%m%d-%H%M%S')}_{index:06d}.png"
        if cv2.imwrite(str(path), image):  # type: ignore[arg-type]
            print(f"screenshot: {path}", file=sys.stderr)
            self._say(f"saved {path.name}")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the live loop for parsed ``args`` (errors propagate as RnnJaxError).

    ``out`` gets the gesture events (default stdout), ``err`` the banner and summary.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    # Validate every setting before touching the model or the camera.
    config = LiveConfig(gesture=resolve_gesture(args.smoothing, args.threshold, args.stable_frames),
                        roi=args.roi, roi_fraction=args.roi_size, max_frames=args.max_frames)
    runner = build_runner(actions_file=args.actions, on=args.on, dry_run=args.dry_run,
                          timeout_s=args.action_timeout, cooldown_s=args.action_cooldown)
    if not args.headless:
        _check_gui()
    threads = args.threads or default_live_threads()
    predictor = load_predictor(args.onnx, threads=threads)  # image or landmark model, by its metadata
    check_motion_model(predictor, str(args.onnx))
    config = replace(config, gesture=resolve_gesture(args.smoothing, args.threshold, args.stable_frames,
                                                     predictor.info))
    motion = None
    if args.motion is not None:
        motion = MotionModel.load(args.motion, threads=1, threshold=args.motion_threshold,
                                  stable_frames=args.motion_stable_frames, min_track_age=args.motion_min_age)
    if runner is not None:
        check_gestures(runner.actions, predictor.class_names + (motion.gestures if motion else ()))
    finder = make_finder("on" if motion is not None and args.hands == "auto" else args.hands,
                         predictor, args.hand_models, args.max_hands, hand_search=args.hand_search,
                         live=args.pace is not None or live_spec(args.source))
    with contextlib.ExitStack() as stack:
        jsonl: IO[str] | None = None
        if args.jsonl:
            try:
                args.jsonl.parent.mkdir(parents=True, exist_ok=True)
                jsonl = stack.enter_context(args.jsonl.open("w", encoding="utf-8"))
            except OSError as exc:
                raise RnnJaxError(f"cannot write --jsonl {args.jsonl}: {exc.strerror or exc}") from None
        source = stack.enter_context(open_source(args.source, args.width, args.height))
        if args.pace is not None and not source.live:
            source = PacedSource(source, args.pace)
        stream = PredictionStream(predictor, source, config, finder=finder, actions=runner, motion=motion)
        info = predictor.info
        origins = gesture_origins(args.smoothing, args.threshold, args.stable_frames, info)
        what = (f"landmarks, state {info.state_size}" if info.crop_mode == "landmarks"
                else f"{info.input_size}px {info.channels}, crop_mode {info.crop_mode}")
        print(f"model: {args.onnx} ({len(info.class_names)} classes, {what}) | source: {source.description} | "
              f"hands: {f'on ({args.hand_search} search)' if finder else 'off'} | "
              f"roi: {'on' if stream.roi_enabled else 'off'} | smoothing {config.gesture.smoothing} "
              f"({origins['smoothing']}), threshold {config.gesture.threshold:g} ({origins['threshold']}), "
              f"stable {config.gesture.stable_frames} | threads {threads}", file=err, flush=True)
        if motion is not None:
            g = motion.gesture
            print(f"motion: {args.motion} ({', '.join(motion.gestures)}; threshold {g.threshold:g}, "
                  f"stable {g.stable_frames}, smoothing {g.smoothing})", file=err, flush=True)
        if runner is not None:
            print(f"actions: {', '.join(runner.gestures)}{' (dry run: nothing runs)' if args.dry_run else ''}",
                  file=err, flush=True)
        ui = None if args.headless else _WindowUI(args, stream, out)
        try:
            for rec in stream:
                if jsonl is not None:
                    jsonl.write(json.dumps(rec.to_json()) + "\n")
                _emit(rec.events, out)
                if rec.actions:
                    print_outcomes(rec.actions, out)
                if ui is not None and not ui.show(rec):
                    break
        finally:
            # Runs on normal end, 'q', Ctrl+C and errors alike: every run gets its summary.
            _emit(stream.finish(), out)
            if ui is not None:
                cv2.destroyAllWindows()
            late = stream.finish_actions()  # commands still running: each is bounded by its timeout
            print_outcomes(late, out)
            if jsonl is not None:
                for record in late:  # after the last frame's row
                    jsonl.write(json.dumps({"event": "action", **record}) + "\n")
            print(stream.summary().format(), file=err, flush=True)
            if runner is not None:
                print(runner.summary(), file=err, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s", stream=sys.stderr)
    # --debug prints the traceback and still exits 2; Ctrl-C ends quietly (the summary says enough)
    return exit_code(lambda: run(args), debug=args.debug, debug_raises=False, interrupted=None)
