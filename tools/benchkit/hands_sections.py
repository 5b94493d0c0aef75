"""Bench section ``hands``: the whole live loop with the hand finder on a video file, headless.

Per frame: decode -> palm detection (no hand tracked) or tracking from last frame's landmarks
-> landmark model -> hand crop -> classifier -> smoothing. Everything on 1 thread, as a
laptop leaving cores for the camera and display would run it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tools.benchkit.context import LIVE_MODEL, Context, load1
from tools.benchkit.deploy_sections import _predictor, export_fresh
from tools.benchkit.report import Section, fmt
from tools.benchkit.timing import alternate, load, progress


def _photo_video(folder: Path, path: Path, hold: int = 15, limit: int = 20) -> Path | None:
    """A video of padded hand photos (one hand in view, tracked), or None without the photos."""
    import cv2

    from rnn_jax.hands import pad_for_detection

    photos = sorted(folder.glob("*/*.JPG"))[:: max(1, len(sorted(folder.glob("*/*.JPG"))) // limit)][:limit]
    if not photos:
        return None
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (300, 300))
    for photo in photos:
        frame = cv2.resize(pad_for_detection(cv2.imread(str(photo))), (300, 300))
        for _ in range(hold):
            writer.write(frame)
    writer.release()
    return path


def section_hands(ctx: Context) -> Section:
    """Live loop with hands on: p50 ms per frame and frames/s, on 1 thread."""
    from rnn_jax.hands import BUILD_COMMAND, HandFinder, models_present
    from rnn_jax.live import iter_predictions
    from rnn_jax.models.registry import model_spec

    sec = Section("hands", "Live loop with the hand finder, headless, 1 thread (decode + detect/track + "
                  "crop + classifier + smoothing)",
                  ["video", "frames/s", "loop p50 ms", "loop p95 ms", "hands p50 ms", "model p50 ms",
                   "palm runs/frame", "spread", "load 1m"])
    if not models_present():
        sec.skipped = f"hand models not built: {BUILD_COMMAND}"
        return sec
    videos: dict[str, Path] = {}
    if ctx.video is not None:
        videos[f"{ctx.video.name} (hands in 1 shot of 4)"] = ctx.video
    tmp = tempfile.TemporaryDirectory()
    digits = ctx.video.parent.parent / "sign-language-digits" / "val" if ctx.video else None
    if digits is not None and digits.is_dir():
        made = _photo_video(digits, Path(tmp.name) / "hands.avi")
        if made is not None:
            videos["20 hand photos x 15 frames (one hand, tracked)"] = made
    if not videos:
        sec.skipped = "no video: ../shared/data/video/Megamind.avi is absent"
        return sec
    name, size, px = ("resnet", "tiny", 32) if ctx.quick else LIVE_MODEL
    progress(f"hands: exporting the live model {model_spec(name, size).label} {px}px")
    fp32, _ = export_fresh(ctx, name, size, px)
    predictor = _predictor(fp32, 1, True)
    summaries: dict[str, list] = {}
    finders: dict[str, HandFinder] = {}

    def live(label: str, video: Path) -> Callable[[], float]:
        finder = finders[label] = HandFinder.load(threads=1)

        def work() -> float:
            finder.reset()
            with iter_predictions(predictor, str(video), hands=finder) as stream:
                n = sum(1 for _ in stream)
                summaries.setdefault(label, []).append(stream.summary())
            return float(n)

        return work

    cands = {label: live(label, path) for label, path in videos.items()}
    progress(f"hands: {len(cands)} videos, alternating")
    try:
        res = alternate(cands, 1 if ctx.quick else 3, warmup=0 if ctx.quick else 1)
    finally:
        tmp.cleanup()
    for label, m in res.items():
        sums = summaries[label]

        def med(attr: str, sums: list = sums) -> float:
            return float(np.median([getattr(s, attr) for s in sums]))

        stats = finders[label].stats
        palm_rate = stats.palm_runs / max(stats.frames, 1)
        rec = {"video": label, "fps": m.median, "loop_p50_ms": med("loop_p50_ms"), "loop_p95_ms": med("loop_p95_ms"),
               "hands_p50_ms": med("hands_p50_ms"), "model_p50_ms": med("latency_p50_ms"),
               "palm_runs_per_frame": palm_rate, **m.to_dict(), "load": load()}
        sec.add([label, fmt(m.median, 1), fmt(rec["loop_p50_ms"], 2), fmt(rec["loop_p95_ms"], 2),
                 fmt(rec["hands_p50_ms"], 2), fmt(rec["model_p50_ms"], 2), f"{palm_rate:.2f}",
                 f"{m.spread:.0%}", f"{load1():.1f}"], rec)
    sec.notes.append("palm detector (full) + landmark model (full) from `python tools/build_hand_models.py`, "
                     f"classifier {model_spec(name, size).label} {px}px freshly initialised; all on 1 onnxruntime "
                     "thread; frames/s = frames / wall time of the whole pass; goal: p50 <= 20 ms, >= 30 frames/s")
    return sec
