"""Bench section ``budget``: the hand finder's cost per frame, a6a6dc6 (before the tile search) vs today.

Videos (made here from real material): idle scenes without a hand (Megamind's no-hand shots;
with OpenCV's sample data, a slow pan over a real street photo and a tree moving behind a
window), the whole of Megamind, HaGRID val photos held 12 frames each (a new hand every 12
frames), Sign Language Digits photos held 15 frames (one hand, tracked). Each finder runs in its
own process (:mod:`tools.benchkit.finder_probe`) pinned to one core, on one onnxruntime thread,
frames handed over at 30 fps like a camera; finders in alternating order, rounds repeated,
medians of the rounds reported. Per video and finder: the wall time of ``find`` per frame
(p50 / p90 / max / mean), CPU ms per frame (every thread of the process), palm and landmark
runs per frame, CPU seconds per second of 30 fps video, frames/s one core sustains (frames /
CPU seconds), and for held photos how soon a new photo's hand is found.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from tools.benchkit.context import REPO, Context
from tools.benchkit.report import Section, fmt
from tools.benchkit.timing import load, progress

BASELINE = "a6a6dc6"  # the commit before the tile search (issue 34)
PACE = 30.0
PROBE = Path(__file__).with_name("finder_probe.py")
SAMPLES_ENV = "RNN_JAX_OPENCV_SAMPLES"  # OpenCV's sample data (Debian opencv-doc: .../examples/data)
SAMPLES_DEFAULT = Path("/usr/share/doc/opencv-doc/examples/data")
MEGAMIND_NO_HAND = ((98, 153), (200, 269))  # the man alone, then the face close-up (tests/test_hands.py)
def finders(vs: str | None = None) -> dict[str, tuple[str, dict]]:
    """label -> (the commit whose files run it, "" for this checkout; FinderConfig fields): the
    baseline, today's every-frame and default modes (as over a file: a frame waits for its search;
    and as with a camera: frames never wait, ``search_wait`` False), and with ``vs`` that commit's
    finder under today's default mode's fields."""
    from rnn_jax.live.settings import DEFAULT_HAND_SEARCH, HAND_SEARCH

    rows = {f"{BASELINE} (before tiles)": (BASELINE, {}),
            "today --hand-search every-frame": ("", HAND_SEARCH["every-frame"])}
    if vs:
        rows[f"{vs} --hand-search {DEFAULT_HAND_SEARCH}"] = (vs, HAND_SEARCH[DEFAULT_HAND_SEARCH])
    rows[f"today --hand-search {DEFAULT_HAND_SEARCH}"] = ("", HAND_SEARCH[DEFAULT_HAND_SEARCH])
    rows[f"today --hand-search {DEFAULT_HAND_SEARCH}, camera"] = ("", {**HAND_SEARCH[DEFAULT_HAND_SEARCH],
                                                                      "search_wait": False})
    return rows


def _writer(path: Path, size: tuple[int, int]):
    import cv2

    return cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), PACE, size)


def megamind_no_hand(video: Path, out: Path) -> Path:
    """Megamind's two shots without a hand (126 frames): a man talking, a face close-up."""
    import cv2

    capture, writer, index = cv2.VideoCapture(str(video)), None, 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if any(a <= index <= b for a, b in MEGAMIND_NO_HAND):
            writer = writer or _writer(out, (frame.shape[1], frame.shape[0]))
            writer.write(frame)
        index += 1
    capture.release()
    writer.release()
    return out


def street_pan(photo: Path, out: Path, frames: int = 240) -> Path:
    """A slow camera pan (and zoom) over a real street photo, 640x480: every pixel moves a little."""
    import cv2

    image = cv2.imread(str(photo))
    h, w = image.shape[:2]
    writer = _writer(out, (640, 480))
    for i in range(frames):
        t = i / max(frames - 1, 1)
        scale = 0.8 - 0.1 * t  # crop side as a share of the photo
        cw, ch = int(w * scale), int(h * scale)
        x, y = int((w - cw) * t), int((h - ch) * 0.5)
        writer.write(cv2.resize(image[y : y + ch, x : x + cw], (640, 480), interpolation=cv2.INTER_AREA))
    writer.release()
    return out


def tree_window(video: Path, out: Path, frames: int = 240) -> Path:
    """OpenCV's tree.avi (leaves moving behind a window, no person) played back and forth, 640x480."""
    import cv2

    capture, clip = cv2.VideoCapture(str(video)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        clip.append(cv2.resize(frame, (640, 480), interpolation=cv2.INTER_LINEAR))
    capture.release()
    order = clip + clip[-2:0:-1]
    writer = _writer(out, (640, 480))
    for i in range(frames):
        writer.write(order[i % len(order)])
    writer.release()
    return out


def hagrid_held(root: Path, out: Path, hold: int, limit: int | None) -> Path | None:
    """HaGRID val photos letterboxed into 640x640 and held ``hold`` frames (as tools/live_accuracy.py)."""
    from tools.live_checks.hagrid import _photo_video, annotated_photos

    if not (root / "hagrid_annotations").is_dir():
        return None
    items = annotated_photos(root, "val")[:limit]
    _photo_video(items, 640, hold, out)
    return out


def make_videos(ctx: Context, folder: Path) -> dict[str, tuple[Path, int | None]]:
    """name -> (video, frames each photo is held or None)."""
    from tools.benchkit.hands_sections import _photo_video as digits_video

    videos: dict[str, tuple[Path, int | None]] = {}
    samples = Path(os.environ.get(SAMPLES_ENV, SAMPLES_DEFAULT))
    if ctx.video is not None:
        videos["idle: Megamind no-hand shots"] = (megamind_no_hand(ctx.video, folder / "idle_megamind.avi"), None)
    if (samples / "leuvenA.jpg").is_file():
        videos["idle: street photo, camera pan"] = (street_pan(samples / "leuvenA.jpg", folder / "street.avi"), None)
    if (samples / "tree.avi").is_file():
        videos["idle: tree behind a window"] = (tree_window(samples / "tree.avi", folder / "tree.avi"), None)
    if ctx.video is not None:
        videos["Megamind (hand in 1 shot of 4)"] = (ctx.video, None)
        shared = ctx.video.parent.parent
        made = hagrid_held(shared / "hagrid-sample", folder / "hagrid.avi", 12, 30 if ctx.quick else None)
        if made is not None:
            videos["HaGRID val photos held 12 frames"] = (made, 12)
        digits = shared / "sign-language-digits" / "val"
        if digits.is_dir() and digits_video(digits, folder / "digits.avi") is not None:
            videos["Sign Language Digits photos held 15 (tracked)"] = (folder / "digits.avi", 15)
    return videos


def baseline_tree(folder: Path, commit: str = BASELINE) -> Path | None:
    """A commit's files, unpacked (git archive) into ``folder``; None without it in git history."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "rnn_jax"], capture_output=True)
    if archive.returncode != 0:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def pin_prefix() -> list[str]:
    """``taskset -c N`` (the last core) where taskset exists: one core, as on a laptop left to the camera."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return ["taskset", "-c", str(cores[-1])] if shutil.which("taskset") and cores else []


def probe(tree: Path, video: Path, fields: dict, out: Path, limit: int | None = None) -> dict:
    """One paced pass in a fresh process; its JSON."""
    cmd = [*pin_prefix(), sys.executable, str(PROBE), "--tree", str(tree), "--video", str(video), "--json",
           str(out), "--pace", str(PACE), "--config", json.dumps(fields)]
    if limit:
        cmd += ["--limit", str(limit)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"finder probe failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return json.loads(out.read_text())


def entry_frames(hands: list[int], hold: int) -> list[int | None]:
    """Per held photo: frames from its first frame to the first frame with a hand (None = not found)."""
    out = []
    for start in range(0, len(hands) - hold + 1, hold):
        seen = [k for k in range(hold) if hands[start + k] > 0]
        out.append(seen[0] if seen else None)
    return out


def entry_ms(hands: list[int], hold: int, done_s: list[float] | None = None) -> list[float | None]:
    """Per held photo: ms from when its first frame was handed over to when the first frame with a hand
    was done (wall clock: a finder that falls behind the camera pays for it); without ``done_s``
    (an older probe's JSON) frames x 1000/PACE. None = not found while the photo was held."""
    return [None if k is None else k * 1000.0 / PACE if done_s is None
            else (done_s[start + k] - start / PACE) * 1000.0
            for start, k in zip(range(0, len(hands), hold), entry_frames(hands, hold))]


def summarise(passes: list[dict], hold: int | None) -> dict:
    """Median over rounds of each pass's figures."""

    def med(f) -> float:
        return float(np.median([f(p) for p in passes]))

    rec = {
        "p50_ms": med(lambda p: np.percentile(p["ms"], 50)), "p90_ms": med(lambda p: np.percentile(p["ms"], 90)),
        "max_ms": med(lambda p: max(p["ms"])), "mean_ms": med(lambda p: float(np.mean(p["ms"]))),
        "cpu_ms_per_frame": med(lambda p: 1000 * p["cpu_s"] / p["frames"]),
        "palm_per_frame": med(lambda p: p["palm_runs"] / p["frames"]),
        "landmark_per_frame": med(lambda p: p["landmark_runs"] / p["frames"]),
        "cpu_s_per_video_s": med(lambda p: p["cpu_s"] / (p["frames"] / PACE)),
        "fps_one_core": med(lambda p: p["frames"] / max(p["cpu_s"], 1e-9)),
        "frames": passes[0]["frames"], "rounds": len(passes),
        "hand_frames": med(lambda p: sum(h > 0 for h in p["hands"])),
    }
    if hold:
        entries = [e for p in passes for e in entry_ms(p["hands"], hold, p.get("done_s"))]
        found = [e for e in entries if e is not None]
        rec["entry_p50_ms"] = float(np.percentile(found, 50)) if found else None
        rec["entry_p90_ms"] = float(np.percentile(found, 90)) if found else None
        rec["photos_found_share"] = len(found) / max(len(entries), 1)
        rec["found_within_200ms_share"] = sum(e <= 200 for e in found) / max(len(entries), 1)
    return rec


def section_budget(ctx: Context) -> Section:
    """The finder's cost per frame on idle and hand videos: a6a6dc6 vs today, paired rounds."""
    from rnn_jax.hands import BUILD_COMMAND, models_present

    sec = Section("budget", f"Hand finder per frame, 1 core, 1 thread, frames at {PACE:g} fps: {BASELINE} "
                  "(before the tile search) vs today", [
                      "video", "finder", "p50 ms", "p90 ms", "max ms", "mean ms", "CPU ms/frame", "palm/frame",
                      "landmark/frame", "CPU s per video s", "frames/s (1 core)", "hand frames",
                      "entry p50/p90 ms", "found <=200 ms"])
    if not models_present():
        sec.skipped = f"hand models not built: {BUILD_COMMAND}"
        return sec
    tmp = Path(tempfile.mkdtemp(prefix="rnn_jax_budget_"))
    try:
        trees: dict[str, Path | None] = {"": REPO}
        for commit in {where for where, _ in finders(ctx.budget_vs).values() if where}:
            trees[commit] = baseline_tree(tmp / commit, commit)
            if trees[commit] is None:
                sec.notes.append(f"{commit} is not in this checkout's history: left out")
        candidates = {k: v for k, v in finders(ctx.budget_vs).items() if trees[v[0]] is not None}
        videos = make_videos(ctx, tmp)
        if not videos:
            sec.skipped = "no video: ../shared/data/video/Megamind.avi is absent"
            return sec
        rounds = 1 if ctx.quick else max(2, min(ctx.rounds, 3))
        passes: dict[tuple[str, str], list[dict]] = {}
        labels = list(candidates)
        for r in range(rounds):
            for name, (video, _) in videos.items():
                order = labels if r % 2 == 0 else labels[::-1]  # alternate who goes first
                for label in order:
                    where, fields = candidates[label]
                    tree = trees[where]
                    progress(f"budget: round {r + 1}/{rounds}, {name}, {label}")
                    passes.setdefault((name, label), []).append(
                        probe(tree, video, fields, tmp / "probe.json"))
        for name, (_, hold) in videos.items():
            for label in labels:
                rec = {"video": name, "finder": label, **summarise(passes[(name, label)], hold), "load": load()}
                entry = (f"{fmt(rec['entry_p50_ms'], 0)} / {fmt(rec['entry_p90_ms'], 0)}"
                         if rec.get("entry_p50_ms") is not None else "")
                within = f"{rec['found_within_200ms_share']:.0%}" if hold else ""
                sec.add([name, label, fmt(rec["p50_ms"], 1), fmt(rec["p90_ms"], 1), fmt(rec["max_ms"], 0),
                         fmt(rec["mean_ms"], 1), fmt(rec["cpu_ms_per_frame"], 1), f"{rec['palm_per_frame']:.2f}",
                         f"{rec['landmark_per_frame']:.2f}", f"{rec['cpu_s_per_video_s']:.2f}",
                         fmt(rec["fps_one_core"], 0), f"{rec['hand_frames']:.0f}/{rec['frames']}", entry, within], rec)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sec.notes += [
        f"each finder in its own process, pinned with `{' '.join(pin_prefix()) or '(no taskset)'}`, 1 onnxruntime "
        f"thread; {rounds} rounds, finders in alternating order, medians of the rounds; the machine may be shared",
        "p50/p90/max/mean: wall ms of find() per frame as the loop sees it; CPU ms/frame counts every thread "
        "(today's palm search runs on a worker thread beside the loop); frames/s (1 core) = frames / CPU seconds",
        "entry: ms (wall clock) from when a held photo's first frame was handed over to when the first frame "
        "with a hand was done (a finder behind the camera pays for it); found <=200 ms: share of all photos",
        f"idle street/tree videos need OpenCV's sample data (Debian opencv-doc, or ${SAMPLES_ENV})",
    ]
    return sec
