"""Bench section ``budget-counts``: the hand finder's model runs per frame in each ``--hand-search`` mode.

Why counts: on a shared machine wall-clock milliseconds move with the load, but the palm,
landmark and face runs a finder spends on a video are exact (the finder is deterministic: a
search beside the loop is waited for at the frame its palms join). Their cost on one free core
(1 onnxruntime thread, this machine: a palm run ~22 ms, a landmark run ~12 ms, the face check
~1.5 ms) turns them into a CPU cost per frame and, frame by frame, into the time the loop would
spend (:func:`modelled_loop_ms`). One in-process pass per mode and video, frames handed over at
once. Videos: those of the ``budget`` section, plus "entry" videos: real hands (cut from HaGRID
val photos) appearing in a scene that keeps moving, six times each (frames until found).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tools.benchkit.context import Context
from tools.benchkit.report import Section
from tools.benchkit.timing import load, progress

PALM_MS, LANDMARK_MS, FACE_MS, FRAME_MS = 22.0, 12.0, 1.5, 0.5  # one free core, 1 thread (module doc)
GAP_MS = 1000.0 / 30  # frames of a 30 fps camera
ENTRY_FRAMES = 30  # frames a pasted hand stays; an entry not found by then counts as missed
ENTRIES = ((0.5, 0.5, 110), (0.2, 0.3, 80), (0.8, 0.6, 140), (0.35, 0.7, 95), (0.7, 0.25, 120), (0.5, 0.4, 70))


def modelled_loop_ms(in_frame: np.ndarray, beside: np.ndarray) -> np.ndarray:
    """Per frame, the loop's time on one core at 30 fps: its own runs (``in_frame`` ms) plus the wait
    for a palm run started beside the loop on the frame before (``beside`` ms), which had the rest of
    that frame's 33 ms to itself."""
    out = np.zeros(len(in_frame))
    for i in range(len(in_frame)):
        wait = max(0.0, beside[i - 1] - max(GAP_MS - out[i - 1], 0.0)) if i else 0.0
        out[i] = in_frame[i] + wait
    return out


def entry_video(scene: Path, root: Path, out: Path) -> tuple[Path, list] | None:
    """``scene`` (240 frames, looped) with a hand cut from a HaGRID val photo (gesture box x1.8) pasted
    in six times for ENTRY_FRAMES frames at ENTRIES' places and widths (px at 640 wide); the video and
    the pasted (start frame, [x0, y0, x1, y1]) list."""
    import cv2

    from tools.live_checks.hagrid import annotated_photos

    if not (root / "hagrid_annotations").is_dir():
        return None
    crops = []
    for path, meta in annotated_photos(root, "val")[::17]:
        image = cv2.imread(str(path))
        h, w = image.shape[:2]
        box = next((b for b, lab in zip(meta["boxes"], meta["labels"], strict=True) if lab != "no_gesture"), None)
        if box is None:
            continue
        bx, by, bw, bh = box
        cx, cy, side = (bx + bw / 2) * w, (by + bh / 2) * h, 1.8 * max(bw * w, bh * h)
        crop = image[int(max(cy - side / 2, 0)) : int(min(cy + side / 2, h)),
                     int(max(cx - side / 2, 0)) : int(min(cx + side / 2, w))]
        if min(crop.shape[:2]) > 40:
            crops.append(crop)
        if len(crops) == len(ENTRIES):
            break
    capture, frames = cv2.VideoCapture(str(scene)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not crops or not frames:
        return None
    frames = (frames * (240 // len(frames) + 1))[:240]
    height, width = frames[0].shape[:2]
    events = []
    for k, (fx, fy, side) in enumerate(ENTRIES):
        crop = crops[k % len(crops)]
        cw = int(side * width / 640)
        crop = cv2.resize(crop, (cw, int(cw * crop.shape[0] / crop.shape[1])))
        ch = crop.shape[0]
        x = max(0, min(int(fx * width - cw / 2), width - cw))
        y = max(0, min(int(fy * height - ch / 2), height - ch))
        start = 10 + 38 * k
        events.append((start, [x, y, x + cw, y + ch]))
        for i in range(start, start + ENTRY_FRAMES):
            frames[i] = frames[i].copy()
            frames[i][y : y + ch, x : x + cw] = crop
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return out, events


def count_pass(finder, frames: list) -> dict:
    """One pass: per frame the palm runs on the loop's thread and beside it, landmark and face runs,
    and the hands' centres."""
    import threading

    calls: list[str] = []
    session = finder.palm_session

    class Counted:  # the palm session, noting which thread ran it
        def __getattr__(self, name):
            return getattr(session, name)

        def run(self, *args, **kwargs):
            calls.append(threading.current_thread().name)
            return session.run(*args, **kwargs)

    finder.palm_session = Counted()
    rows, centres = [], []
    for frame in frames:
        n0, lm0, face0 = len(calls), finder.stats.landmark_runs, finder.stats.face_runs
        hands = finder.find(frame)
        main = sum(1 for t in calls[n0:] if t == threading.main_thread().name)
        pending = getattr(finder, "_pending", None)
        if pending is not None:
            pending[1].result()  # (only to count it with its frame; the finder waits for it anyway)
        rows.append((main, len(calls) - n0 - main, finder.stats.landmark_runs - lm0, finder.stats.face_runs - face0))
        centres.append([(h.box[0] + h.box[2] / 2, h.box[1] + h.box[3] / 2) for h in hands])
    finder.close()
    finder.palm_session = session
    runs = np.array(rows, float)
    in_frame = PALM_MS * runs[:, 0] + LANDMARK_MS * runs[:, 2] + FACE_MS * runs[:, 3] + FRAME_MS
    loop = modelled_loop_ms(in_frame, PALM_MS * runs[:, 1])
    return {"frames": len(frames), "palm_per_frame": float(runs[:, :2].sum(1).mean()),
            "palm_beside_per_frame": float(runs[:, 1].mean()), "landmark_per_frame": float(runs[:, 2].mean()),
            "face_per_frame": float(runs[:, 3].mean()),
            "cpu_ms_per_frame": float((in_frame + PALM_MS * runs[:, 1]).mean()),
            "loop_p50_ms": float(np.percentile(loop, 50)), "loop_p90_ms": float(np.percentile(loop, 90)),
            "loop_max_ms": float(loop.max()), "hand_frames": sum(1 for c in centres if c), "centres": centres}


def entries_found(centres: list, events: list) -> list[int | None]:
    """Per pasted hand: frames from its first frame to the first frame with a hand inside it."""
    found = []
    for start, (x0, y0, x1, y1) in events:
        hit = [k for k in range(ENTRY_FRAMES)
               if any(x0 <= cx <= x1 and y0 <= cy <= y1 for cx, cy in centres[start + k])]
        found.append(hit[0] if hit else None)
    return found


def section_budget_counts(ctx: Context) -> Section:
    """Model runs per frame of each --hand-search mode (exact), with their cost on one free core."""
    from rnn_jax.hands import BUILD_COMMAND, FinderConfig, HandFinder, models_present
    from rnn_jax.live.settings import HAND_SEARCH
    from tools.benchkit.finder_probe import decode
    from tools.benchkit.live_budget import entry_frames, make_videos

    sec = Section("budget-counts", "Hand finder model runs per frame per --hand-search mode (exact counts; "
                  f"ms = counts x {PALM_MS:g} / {LANDMARK_MS:g} / {FACE_MS:g} ms per palm / landmark / face run, "
                  "1 free core, 30 fps)", [
                      "video", "mode", "palm/frame", "(beside)", "landmark/frame", "CPU ms/frame",
                      "loop p50/p90 ms", "hand frames", "found (frames)"])
    if not models_present():
        sec.skipped = f"hand models not built: {BUILD_COMMAND}"
        return sec
    tmp = Path(tempfile.mkdtemp(prefix="rnn_jax_counts_"))
    try:
        videos: dict[str, tuple[Path, object]] = dict(make_videos(ctx, tmp))
        if ctx.video is not None:
            root = ctx.video.parent.parent / "hagrid-sample"
            for name, scene in (("street photo, camera pan", "street.avi"), ("Megamind no-hand shots", "idle_megamind.avi")):
                made = entry_video(tmp / scene, root, tmp / f"entry_{scene}") if (tmp / scene).is_file() else None
                if made is not None:
                    videos[f"entry: 6 hands appear in the {name}"] = made
        if not videos:
            sec.skipped = "no video: ../shared/data/video/Megamind.avi is absent"
            return sec
        base = HandFinder.load(threads=1)
        for name, (video, hold) in videos.items():
            frames = decode(video, None)
            for mode, fields in HAND_SEARCH.items():
                progress(f"budget-counts: {name}, {mode}")
                finder = HandFinder(base.palm_session, base.landmark_session, FinderConfig(**fields),
                                    base.face_session)
                rec = count_pass(finder, frames)
                centres = rec.pop("centres")
                if isinstance(hold, list):
                    found = entries_found(centres, hold)
                    shown = " ".join("-" if f is None else str(f) for f in found)
                elif hold:
                    seen = entry_frames([len(c) for c in centres], hold)
                    found = [f for f in seen if f is not None]
                    shown = (f"{len(found)}/{len(seen)} photos, p90 {np.percentile(found, 90):.0f}"
                             if found else f"0/{len(seen)}")
                else:
                    found, shown = None, ""
                rec.update(video=name, mode=mode, fields=fields, found=found, load=load())
                sec.add([name, mode, f"{rec['palm_per_frame']:.3f}", f"{rec['palm_beside_per_frame']:.3f}",
                         f"{rec['landmark_per_frame']:.3f}", f"{rec['cpu_ms_per_frame']:.1f}",
                         f"{rec['loop_p50_ms']:.1f} / {rec['loop_p90_ms']:.1f}",
                         f"{rec['hand_frames']}/{rec['frames']}", shown], rec)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sec.notes += [
        "one in-process pass per mode and video (the counts do not depend on the machine); (beside) = palm "
        "runs on the worker thread beside the loop",
        "loop p50/p90: modelled per frame (tools/benchkit/budget_counts.modelled_loop_ms): the loop's own runs "
        "plus the wait for a palm run started beside it on the frame before",
        "found (frames): held photos: photos with a hand found and the p90 of frames until then; entry videos: "
        f"frames until each pasted hand is found ('-' = not within {ENTRY_FRAMES})",
        "JSON records: " + json.dumps({"palm_ms": PALM_MS, "landmark_ms": LANDMARK_MS, "face_ms": FACE_MS}),
    ]
    return sec
