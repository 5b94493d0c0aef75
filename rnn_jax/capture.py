"""``python -m rnn_jax.capture``: record your own gesture images into class folders.

Frames are saved as ``<out>/<split>/<label>/<timestamp>_<n>.jpg``, the plain class-folder
layout the training side reads (``<root>/{train,val}/<class>/*.jpg``). Record each gesture
once per split (ideally val on another day / in another room, so validation is honest).

JAX-free (numpy + OpenCV), and works with a video file or image folder as the source,
so it can be tested and scripted without a camera.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from rnn_jax import preprocess
from rnn_jax.errors import ConfigError, RnnJaxError, exit_code, main_guard
from rnn_jax.live.sources import FrameSource, open_source

SPLITS = ("train", "val")
WINDOW = "rnn-jax capture"
JPEG_QUALITY = 95  # high: the training side re-encodes nothing, so keep detail
_BAD_LABEL = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


@dataclass(frozen=True)
class CaptureConfig:
    """What to record and where (validated before the camera opens)."""

    label: str
    out: Path
    split: str = "train"
    count: int = 50  # images to save
    countdown: float = 3.0  # seconds before recording starts (time to get into position)
    every: int = 1  # save every K-th frame (consecutive camera frames are near-duplicates)
    roi: bool = False  # save only the centred square (as ``rnn_jax.live --roi`` classifies)
    roi_fraction: float = 0.6

    def __post_init__(self) -> None:
        label = self.label.strip()
        if not label or label in (".", "..") or _BAD_LABEL.search(label):
            raise ConfigError(
                f"label {self.label!r} cannot be a folder name; use letters, digits, '-' or '_'")
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "out", Path(self.out))
        if self.split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {self.split!r}")
        if self.count < 1:
            raise ConfigError(f"count must be >= 1, got {self.count}")
        if self.every < 1:
            raise ConfigError(f"every must be >= 1 frame, got {self.every}")
        if self.countdown < 0:
            raise ConfigError(f"countdown must be >= 0 seconds, got {self.countdown}")
        if not 0.05 <= self.roi_fraction <= 1.0:
            raise ConfigError(f"roi size must be a fraction in [0.05, 1], got {self.roi_fraction}")

    @property
    def folder(self) -> Path:
        return self.out / self.split / self.label


@dataclass(frozen=True)
class CaptureResult:
    folder: Path
    saved: tuple[Path, ...]
    requested: int
    source_ended: bool  # True if the source ran out before ``requested`` images

    @property
    def complete(self) -> bool:
        return len(self.saved) >= self.requested


def _draw(frame: np.ndarray, cfg: CaptureConfig, roi: tuple[int, int, int] | None, big: str,
          status: str) -> np.ndarray:
    img = frame.copy()
    h, w = img.shape[:2]
    if roi is not None:
        left, top, side = roi
        cv2.rectangle(img, (left, top), (left + side, top + side), (80, 220, 80), 2)
    scale = max(0.5, min(w, h) / 720)
    if big:
        (tw, th), _ = cv2.getTextSize(big, cv2.FONT_HERSHEY_SIMPLEX, 4 * scale, 6)
        org = ((w - tw) // 2, (h + th) // 2)
        cv2.putText(img, big, org, cv2.FONT_HERSHEY_SIMPLEX, 4 * scale, (0, 0, 0), 12, cv2.LINE_AA)
        cv2.putText(img, big, org, cv2.FONT_HERSHEY_SIMPLEX, 4 * scale, (0, 215, 255), 6, cv2.LINE_AA)
    text = f"{cfg.split}/{cfg.label}  {status}   q/Esc stop"
    cv2.putText(img, text, (10, round(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (0, 0, 0), 4,
                cv2.LINE_AA)
    cv2.putText(img, text, (10, round(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale,
                (255, 255, 255), 1, cv2.LINE_AA)
    return img


def _save(image: np.ndarray, path: Path) -> None:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RnnJaxError(f"could not encode a frame as JPEG for {path}")
    try:
        data.tofile(str(path))  # tofile: non-ASCII paths work, unlike cv2.imwrite on Windows
    except OSError as exc:
        raise RnnJaxError(f"cannot write {path}: {exc.strerror or exc}") from None


def capture_gestures(
    cfg: CaptureConfig,
    source: FrameSource,
    *,
    show: bool = False,
    log: TextIO = sys.stderr,
    sleep: Callable[[float], None] = time.sleep,
) -> CaptureResult:
    """Count down, then save every ``cfg.every``-th frame until ``cfg.count`` are saved.

    ``show`` opens a preview window (countdown drawn on it; q/Esc stops early); otherwise
    the countdown is printed to ``log``. During the countdown a live source keeps being
    read (so the first saved frame is fresh); a file source waits, so no frames are lost.
    """
    folder = cfg.folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RnnJaxError(f"cannot create {folder}: {exc.strerror or exc}") from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    saved: list[Path] = []

    def roi_of(frame: np.ndarray) -> tuple[int, int, int] | None:
        return preprocess.center_square(frame, cfg.roi_fraction) if cfg.roi else None

    def show_frame(frame: np.ndarray, big: str, status: str, wait_ms: int = 1) -> bool:
        """Show a preview; False if the user pressed q/Esc."""
        cv2.imshow(WINDOW, _draw(frame, cfg, roi_of(frame), big, status))
        return (cv2.waitKey(wait_ms) & 0xFF) not in (ord("q"), 27)

    frame = source.read()
    if frame is None:
        return CaptureResult(folder, (), cfg.count, source_ended=True)

    # Countdown: time to get into position. A live source keeps being read so the first
    # saved frame is fresh; a file source just waits, so no frames are skipped.
    seconds = int(np.ceil(cfg.countdown))
    if show or source.live:
        deadline = time.monotonic() + cfg.countdown
        announced = None
        while (left := deadline - time.monotonic()) > 0:
            second = int(np.ceil(left))
            if not show and second != announced:
                print(f"recording {cfg.split}/{cfg.label} in {second}...", file=log, flush=True)
            announced = second
            if show and not show_frame(frame, str(second), "get ready", wait_ms=1 if source.live else 30):
                return CaptureResult(folder, (), cfg.count, source_ended=False)
            if source.live:
                frame = source.read()
                if frame is None:
                    return CaptureResult(folder, (), cfg.count, source_ended=True)
    else:
        for i, second in enumerate(range(seconds, 0, -1)):
            print(f"recording {cfg.split}/{cfg.label} in {second}...", file=log, flush=True)
            sleep(cfg.countdown - (seconds - 1) if i == 0 else 1.0)
    print(f"recording {cfg.count} images of {cfg.label!r} into {folder}", file=log, flush=True)

    n_frame = 0
    while True:
        if n_frame % cfg.every == 0:
            roi = roi_of(frame)
            image = frame if roi is None else preprocess.crop_square(frame, *roi, size=roi[2])
            path = folder / f"{stamp}_{len(saved):04d}.jpg"
            while path.exists():  # two sessions in the same second: never overwrite
                path = path.with_name(path.stem + "b.jpg")
            _save(image, path)
            saved.append(path)
        if show and not show_frame(frame, "", f"REC {len(saved)}/{cfg.count}"):
            return CaptureResult(folder, tuple(saved), cfg.count, source_ended=False)
        if len(saved) >= cfg.count:
            return CaptureResult(folder, tuple(saved), cfg.count, source_ended=False)
        n_frame += 1
        frame = source.read()
        if frame is None:
            return CaptureResult(folder, tuple(saved), cfg.count, source_ended=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m rnn_jax.capture",
        description="Record images of one gesture into <out>/<split>/<label>/ for training.",
        epilog="example: python -m rnn_jax.capture --label like --out my_gestures/ --count 100 "
               "--every 3\n  then again with --split val (ideally another day/room/person).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--label", required=True, help="gesture name = class folder name")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="data set root folder")
    p.add_argument("--split", choices=SPLITS, default="train", help="sub-folder (default: train)")
    p.add_argument("--source", default="0", metavar="SRC",
                   help="camera index, video file, image folder or stream URL (default: 0)")
    p.add_argument("--width", type=int, metavar="PX", help="requested camera width")
    p.add_argument("--height", type=int, metavar="PX", help="requested camera height")
    p.add_argument("--count", type=int, default=50, help="images to save (default: 50)")
    p.add_argument("--countdown", type=float, default=3.0, metavar="SEC",
                   help="seconds to get ready before recording (default: 3)")
    p.add_argument("--every", type=int, default=1, metavar="K",
                   help="save every K-th frame; >1 gives more varied images (default: 1)")
    p.add_argument("--roi", action="store_true",
                   help="save only the centred square (for models trained on hand crops, "
                        "matching `rnn_jax.live --roi`)")
    p.add_argument("--roi-size", type=float, default=0.6, metavar="F",
                   help="ROI side as a fraction of the frame's short side (default: 0.6)")
    p.add_argument("--headless", action="store_true", help="no preview window; countdown printed")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # --debug prints the traceback and still exits 2; Ctrl-C ends quietly
    return exit_code(lambda: _capture(args), debug=args.debug, debug_raises=False, interrupted=None)


def _capture(args: argparse.Namespace) -> int:
    cfg = CaptureConfig(label=args.label, out=args.out, split=args.split, count=args.count,
                        countdown=args.countdown, every=args.every, roi=args.roi,
                        roi_fraction=args.roi_size)
    if not args.headless:
        try:
            cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise RnnJaxError("this OpenCV build cannot open windows (opencv-python-headless?); "
                              "run with --headless") from None
    with open_source(args.source, args.width, args.height) as source:
        try:
            result = capture_gestures(cfg, source, show=not args.headless)
        finally:
            if not args.headless:
                cv2.destroyAllWindows()
    n = len(result.saved)
    if result.complete:
        print(f"saved {n} images to {result.folder}", file=sys.stderr)
    elif result.source_ended:
        print(f"warning: the source ended after {n} of {result.requested} images; saved {n} to "
              f"{result.folder}", file=sys.stderr)
    else:
        print(f"stopped early: saved {n} of {result.requested} images to {result.folder}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    main_guard(main)
