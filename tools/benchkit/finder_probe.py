"""One timed pass of a hand finder over a video, in its own process (``tools/bench.py --only budget``).

    python tools/benchkit/finder_probe.py --tree DIR --video V.avi --json OUT [--pace 30] [--config JSON]

``--tree`` is the checkout whose ``rnn_jax`` is imported (this one, or an older commit unpacked
with ``git archive``), so two commits' finders are measured by the same code on the same frames.
Only API every commit since the hand finder has shares is used: ``HandFinder.load(threads=1)``,
``find(frame_bgr)``, ``reset()``, ``stats.palm_runs/landmark_runs/frames``.

Frames are decoded before timing (identical consecutive frames kept once, so a photo held
12 frames costs one frame of memory). ``--pace 30`` hands them over like a 30 fps camera: frame
i is given at start + i/30 s (at once when the finder is behind), so a finder that searches
beside the loop can use the wait between frames, as it would live. Per frame: the wall time of
``find``. For the pass: process CPU seconds (every thread), palm and landmark runs, hands per frame, and when
each frame's ``find`` returned (seconds from the start: how late, in wall time, a hand was found).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def decode(video: Path, limit: int | None) -> list:
    """Every frame of the video (BGR), identical consecutive frames shared."""
    import cv2
    import numpy as np

    capture = cv2.VideoCapture(str(video))
    frames: list = []
    while limit is None or len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frames[-1] if frames and np.array_equal(frames[-1], frame) else frame)
    capture.release()
    if not frames:
        raise SystemExit(f"finder_probe: no frames in {video}")
    return frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", required=True, help="checkout whose rnn_jax to import")
    parser.add_argument("--video", required=True)
    parser.add_argument("--json", required=True, help="where to write the pass's figures")
    parser.add_argument("--pace", type=float, default=0.0, help="frames per second to hand frames over at (0 = at once)")
    parser.add_argument("--config", default="{}", help="FinderConfig fields as JSON (today's code only)")
    parser.add_argument("--limit", type=int, default=None, help="first N frames only")
    parser.add_argument("--warmup", type=int, default=8, help="frames run (and forgotten) before timing")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(args.tree).resolve()))
    from rnn_jax.hands import FinderConfig, HandFinder

    frames = decode(Path(args.video), args.limit)
    fields = json.loads(args.config)
    finder = HandFinder.load(threads=1, config=FinderConfig(**fields) if fields else None)
    for frame in frames[: args.warmup]:  # first onnxruntime runs allocate; not what a long session pays
        finder.find(frame)
    finder.reset()
    finder.stats = type(finder.stats)()
    per_frame, hands, done = [], [], []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i, frame in enumerate(frames):
        if args.pace:
            wait = wall0 + i / args.pace - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        t = time.perf_counter()
        found = finder.find(frame)
        end = time.perf_counter()
        per_frame.append((end - t) * 1000.0)
        done.append(end - wall0)
        hands.append(len(found))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if hasattr(finder, "close"):
        finder.close()
    stats = finder.stats
    Path(args.json).write_text(json.dumps({
        "frames": len(frames), "ms": per_frame, "hands": hands, "done_s": done, "cpu_s": cpu, "wall_s": wall,
        "palm_runs": stats.palm_runs, "landmark_runs": stats.landmark_runs,
        "face_runs": getattr(stats, "face_runs", 0), "pace": args.pace}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
