"""Latency per hand-frame of the live motion step, 1 onnxruntime thread, A/B in one process.

    python tools/motion_latency.py runs/motion.onnx              # today's path vs the version-1 rule
    python tools/motion_latency.py runs/motion.onnx --rounds 7 --calls 1500

Rounds are interleaved (each round times every path), so a shared machine's load hits all paths
alike; the table gives the median and the fastest round, ms per hand and frame:

- the model's ONNX step alone;
- the version-1 feature rule (per-frame rates, no partner; ``git show 7e8e433:...``) + the step:
  what the live motion step cost before issue 35 (needs git and the commit);
- today's live motion side with one hand, and with two hands in view (per hand):
  ``MotionModel.classify`` (features version 2 with the partner block, partner search, relink
  bookkeeping, the step) and ``MotionModel.gate`` (the decoding rules, ``rnn_jax.live.motion_rules``),
  with the rules on (default) and off (``NO_RULES``: the motion side before the rules).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from rnn_jax.errors import DataError, main_guard  # noqa: E402

OLD_RULE = "7e8e433:rnn_jax/hands/motion_features.py"


def old_rule() -> types.ModuleType | None:
    """The version-1 feature rule from git history (None when git or the commit is missing)."""
    try:
        src = subprocess.run(["git", "show", OLD_RULE], capture_output=True, text=True, check=True, cwd=REPO).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    folder = Path(tempfile.mkdtemp(prefix="motion-v1-"))
    path = folder / "motion_features_v1.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("motion_features_v1", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the file as it was at that commit, imported like any module
    shutil.rmtree(folder, ignore_errors=True)
    return module


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tools/motion_latency.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("onnx", type=Path, help="a motion model (python -m experiments.motion --export)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--calls", type=int, default=1500)
    args = p.parse_args(argv)
    if not args.onnx.is_file():
        raise DataError(f"{args.onnx}: not found")
    from rnn_jax.hands.finder import Hand
    from rnn_jax.hands.geometry import Rect
    from rnn_jax.live.motion import MotionModel
    from rnn_jax.live.motion_rules import NO_RULES
    from rnn_jax.runtime.landmark_predictor import LandmarkPredictor

    pred = LandmarkPredictor.load(args.onnx, threads=1)
    models = {"on": MotionModel.load(args.onnx, threads=1), "off": MotionModel.load(args.onnx, threads=1,
                                                                                     rules=NO_RULES)}
    rng = np.random.default_rng(0)
    v, p_, o, _ = rng.uniform(0, 1, (4, 21, 2))
    shape = (480, 640, 3)

    def hands(k: int, wobble: float) -> list:
        """k hands in camera pixels (v, then o), the finder's way."""
        return [Hand(np.c_[(x + wobble) * 300 + 100, np.zeros(21)], 0.99, "right", 0.9, Rect(250, 250, 200, 0.0),
                     i + 1, True, (640, 480)) for i, x in enumerate((v, o)[:k])]
    state = [pred.initial_state(1)]
    tick = [0]
    zeros = np.zeros((1, 21, 3), np.float32)
    v1 = old_rule()

    def model_step() -> None:
        state[0] = pred.predict(zeros, state[0])[1]

    frames = {k: [hands(k, 0.0), hands(k, 0.001)] for k in (1, 2)}

    def live(rules: str, k: int):
        model = models[rules]

        def f() -> None:
            tick[0] += 1
            found = frames[k][tick[0] % 2]
            probs = model.classify(found, shape, tick[0] / 30)
            for hand, p in zip(found, probs):
                model.gate(hand.track_id, p)
        return f

    paths = [("model step alone (ONNX)", model_step, 1)]
    if v1 is not None:
        paths.append(("version-1 rule + step (before issue 35)",
                      lambda: state.__setitem__(0, pred.predict(v1.motion_features(v, p_)[None], state[0])[1]), 1))
    paths += [("live motion side, rules off, one hand", live("off", 1), 1),
              ("live motion side, rules on, one hand", live("on", 1), 1),
              ("live motion side, rules off, two hands (per hand)", live("off", 2), 2),
              ("live motion side, rules on, two hands (per hand)", live("on", 2), 2)]
    times: dict[str, list[float]] = {name: [] for name, _, _ in paths}
    for _ in range(args.rounds):
        for name, f, per in paths:
            for _ in range(100):
                f()
            t0 = time.perf_counter()
            for _ in range(args.calls):
                f()
            times[name].append((time.perf_counter() - t0) / args.calls / per * 1e3)
    print("| path | median ms | fastest round ms |\n|---|---|---|")
    for name, x in times.items():
        print(f"| {name} | {np.median(x):.4f} | {np.min(x):.4f} |")
    if v1 is None:
        print(f"(the version-1 rule was not found: git show {OLD_RULE})")
    return 0


if __name__ == "__main__":
    main_guard(main)
