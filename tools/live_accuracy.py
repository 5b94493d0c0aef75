"""Does the live loop see what offline evaluation sees? A video check on labelled photos.

    python tools/live_accuracy.py --onnx student.onnx --images ../shared/data/sign-language-digits/val

Builds a video from class-folder photos (each photo held for --hold frames, MJPG .avi),
runs it through the live loop (rnn_jax.live.iter_predictions: same smoothing and threshold
as the live program), and prints the per-frame accuracy of the smoothed top class once the
smoothing has settled (the first --settle frames of each photo are skipped) next to the
offline accuracy of the same ONNX file on the same photos, plus how often the stable
gesture (threshold + steady frames) is shown and how often it is right when shown.
JAX-free: runs on the base install (numpy, onnxruntime, OpenCV; ``--store`` edits the model
file's metadata itself, without the ``onnx`` package).

Landmark models (from ``experiments.landmarks``) always use the hand finder: offline is the
model on each padded photo's landmarks from a zero state, live carries the state frame to frame.

HaGRID's annotated photos (``--hagrid ROOT``, default split val): each whole photo is
letterboxed into a --frame x --frame frame (what a webcam shows) and held --hold frames; the
live loop runs with hands on. Per settled frame the hand inside the annotated gesture box must
show that gesture (a frame where that hand is not found counts as wrong, and as "hand lost"),
and every hand inside a ``no_gesture`` box must show no gesture (else a false trigger; a resting
hand the finder misses is counted apart as "lost", and the false-trigger rate is over the
resting hands found). Beside
it, offline: the same ONNX file on each annotated box (landmarks from the landmark model looking
at the box, or the box's hand crop), with the same temperature and threshold.

    python tools/live_accuracy.py --onnx hagrid.onnx --hagrid ../shared/data/hagrid-sample

``--sweep`` replays the same frames (hands found once) at thresholds 0.30, 0.35, ... 0.90 and
prints right / wrong / lost / resting-triggered for each; with ``--store`` the smallest
threshold whose live resting-hand false-trigger rate is at most ``--max-false-trigger`` is
written into the model file's reject threshold, with the smoothing and stable frames the sweep
ran under; rnn_jax.live (and this tool) use all three by default, each flag given wins.

``--halves`` splits the split's people in two by a fixed rule (SHA-256 of the ``user_id``, even:
half A, odd: B; tools/live_checks/halves.py) and reports each half; with ``--sweep`` the live
threshold chosen on each half is reported on the other (cross-fitted: no figure is scored on
the photos its threshold was chosen on). ``--store`` still stores the threshold chosen on all of them.

With ``--hands on`` the live loop finds the hand in each frame (rnn_jax.hands) and classifies
its crop. Each photo is then padded with a replicated border (as ``--crop hand`` training
does), the offline number is the same ONNX file on the crops training makes (hand found in
the padded photo, :func:`rnn_jax.hands.hand_crop`), and photos where no hand is found
offline are left out of both numbers (counted in the output).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from rnn_jax import calibration  # noqa: E402
from rnn_jax.atomic import write_json_atomic  # noqa: E402
from rnn_jax.calibration import smallest_threshold_within  # noqa: E402
from rnn_jax.errors import main_guard  # noqa: E402
from rnn_jax.live.settings import DEFAULT_HAND_SEARCH, HAND_SEARCH  # noqa: E402
from rnn_jax.live.smoothing import DEFAULT_THRESHOLD, SMOOTHING_HELP, GestureConfig  # noqa: E402
from tools.live_checks.folders import print_result, run  # noqa: E402
from tools.live_checks.hagrid import (  # noqa: E402
    cross_fitted,
    print_hagrid,
    run_hagrid,
    store_threshold,
)

__all__ = ["build_parser", "main", "print_hagrid", "print_result", "run", "run_hagrid"]  # run/run_hagrid: the tests' API


def build_parser() -> argparse.ArgumentParser:
    """The flags; every default that rnn_jax.live or the reject rule also uses is read from its one
    definition (GestureConfig, rnn_jax.calibration.DEFAULT_MAX_FALSE_TRIGGER), never typed here."""
    live = GestureConfig()
    parser = argparse.ArgumentParser(prog="python tools/live_accuracy.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", required=True, help="exported model")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--images", help="folder of class folders with labelled photos")
    what.add_argument("--hagrid", type=Path, help="HaGRID root with annotated photos (e.g. ../shared/data/hagrid-sample)")
    parser.add_argument("--split", default="val", help="--hagrid: the annotated split (default val)")
    parser.add_argument("--frame", type=int, default=640, help="--hagrid: square frame side (default 640)")
    parser.add_argument("--hold", type=int, default=None, help="frames each photo is shown (default 15; --hagrid 12)")
    parser.add_argument("--settle", type=int, default=None,
                        help="frames skipped after each change (default 8; --hagrid 6)")
    parser.add_argument("--smoothing", default=None,
                        help=f"{SMOOTHING_HELP}; as in rnn_jax.live (default: the model file's, stored with its "
                             f"live threshold, else {live.smoothing})")
    parser.add_argument("--threshold", type=float, default=None,
                        help=f"as in rnn_jax.live (default: the model file's reject threshold, else "
                             f"{DEFAULT_THRESHOLD:g})")
    parser.add_argument("--stable-frames", type=int, default=None,
                        help=f"as in rnn_jax.live (default: the model file's, else {live.stable_frames})")
    parser.add_argument("--hands", choices=("auto", "on", "off"), default="auto",
                        help="find the hand in each frame as rnn_jax.live --hands does (default auto: on "
                             "for hand-crop models when the hand models are built)")
    parser.add_argument("--hand-models", type=Path, default=None, help="folder of the hand models")
    parser.add_argument("--hand-search", choices=tuple(HAND_SEARCH), default=DEFAULT_HAND_SEARCH,
                        help="--hagrid: the hand finder's search budget, as rnn_jax.live --hand-search "
                             "(default %(default)s)")
    parser.add_argument("--pace", type=float, default=None, metavar="FPS",
                        help="--hagrid: hand the video over at FPS frames/s, as a camera: frames that come while "
                             "the loop is busy are lost and the screen keeps the last result (the finder runs as "
                             "live: frames never wait for a search; figures depend on the machine, e.g. run under "
                             "`taskset -c 1` for one laptop core). Default: unpaced, the same every run")
    parser.add_argument("--finder-waits", action="store_true",
                        help="with --pace: each frame waits for its palm search beside the loop, as over a file "
                             "(and as rnn_jax.live did with a camera before frames stopped waiting), to compare")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    parser.add_argument("--sweep", action="store_true",
                        help="--hagrid: replay the same frames at thresholds 0.30..0.90 (step 0.05)")
    parser.add_argument("--max-false-trigger", type=float, default=calibration.DEFAULT_MAX_FALSE_TRIGGER,
                        help="--sweep: resting-hand frames allowed to show a gesture (default %(default)s)")
    parser.add_argument("--store", action="store_true",
                        help="--sweep: write the smallest threshold within --max-false-trigger into the ONNX file, "
                             "with the smoothing and stable frames it was chosen under")
    parser.add_argument("--halves", action="store_true",
                        help="--hagrid: report each half of the people; with --sweep, choose the threshold on "
                             "one half and report it on the other (cross-fitted)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    hagrid = args.hagrid is not None
    args.hold = args.hold if args.hold is not None else (12 if hagrid else 15)
    args.settle = args.settle if args.settle is not None else (6 if hagrid else 8)
    if args.settle >= args.hold:
        parser.error("--settle must be smaller than --hold")
    if (args.sweep or args.store or args.halves) and not hagrid:
        parser.error("--sweep, --store and --halves need --hagrid")
    if args.store and not args.sweep:
        parser.error("--store needs --sweep")
    if args.pace is not None and (not hagrid or not args.pace > 0 or args.sweep or args.halves):
        parser.error(f"--pace needs --hagrid, no --sweep/--halves, and a rate > 0 (got {args.pace})")
    if args.finder_waits and args.pace is None:
        parser.error("--finder-waits needs --pace")
    if args.stable_frames is not None and args.stable_frames < 1:
        parser.error(f"--stable-frames must be >= 1, got {args.stable_frames}")
    if not 0.0 <= args.max_false_trigger < 1.0:
        parser.error(f"--max-false-trigger must be in [0, 1), got {args.max_false_trigger}")
    sweep = tuple(round(0.30 + 0.05 * k, 2) for k in range(13)) if args.sweep else ()
    if hagrid:
        result = run_hagrid(Path(args.onnx), args.hagrid, args.split, args.hold, args.settle, args.smoothing,
                            args.threshold, args.stable_frames, args.frame, args.hand_models, sweep, args.halves,
                            hand_search=args.hand_search, pace=args.pace, finder_waits=args.finder_waits)
        if sweep:
            rates = {row["threshold"]: row["live_resting_triggered"] for row in result["sweep"]
                     if row["live_resting_triggered"] is not None}  # None: no resting hand found
            chosen = smallest_threshold_within(rates, args.max_false_trigger) if rates else None
            result["chosen_threshold"] = chosen
            if args.halves:
                result["cross_fitted"] = cross_fitted(result["sweep"], args.max_false_trigger)
            if args.store and chosen is not None:
                store_threshold(Path(args.onnx), chosen, result["smoothing"], result["stable_frames"])
        print_hagrid(result)
        if sweep:
            chosen = result["chosen_threshold"]
            what = ("no resting hand was found, so nothing" if not any(
                row["live_resting_triggered"] is not None for row in result["sweep"])
                else "none of the thresholds keeps" if chosen is None else f"smallest threshold {chosen:.2f} keeps")
            print(f"{what} resting hands shown a gesture at or under {args.max_false_trigger:.0%} of frames"
                  + (f"; stored in {args.onnx} with smoothing {result['smoothing']} and {result['stable_frames']} "
                     "stable frames" if args.store and chosen is not None else ""))
        if args.json:
            write_json_atomic(args.json, result, indent=2)
        return 0
    result = run(Path(args.onnx), Path(args.images), args.hold, args.settle, args.smoothing, args.threshold,
                 args.stable_frames, args.hands, args.hand_models)
    print_result(result)
    if args.json:
        write_json_atomic(args.json, result, indent=2)
    return 0


if __name__ == "__main__":
    main_guard(main)
