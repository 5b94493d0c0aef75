"""Where frames come from: a camera index, a video file, a folder of images or a stream URL.

Every source yields OpenCV BGR uint8 frames and returns None at its end, so the live
loop stops cleanly at the end of a video. Problems the user can fix (no camera, missing
file, unreadable video) raise :class:`~rnn_jax.errors.SourceError` with a hint.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from rnn_jax.errors import SourceError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
PROBE_INDICES = range(6)  # cameras listed when the requested one does not open
# A webcam sometimes drops a frame; give up only after this many failed reads in a row.
MAX_LIVE_READ_FAILURES = 10


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own warnings while probing (we raise one clear error instead)."""
    logging_mod = cv2.utils.logging
    level = logging_mod.getLogLevel()
    logging_mod.setLogLevel(logging_mod.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging_mod.setLogLevel(level)


def _natural_key(path: Path) -> list[object]:
    """Sort "img2" before "img10" (frames dumped by other tools are rarely zero-padded)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


class FrameSource:
    """Base class: ``read()`` -> BGR frame or None at the end; iterable; a context manager."""

    kind = "source"  # "camera", "stream", "video" or "images"
    live = False  # True: frames arrive in real time (camera/stream); False: a file

    def __init__(self, description: str) -> None:
        self.description = description

    @property
    def fps(self) -> float | None:
        """Nominal frames per second, if the source knows it."""
        return None

    @property
    def frame_count(self) -> int | None:
        """Number of frames, if known in advance (files only)."""
        return None

    @property
    def skipped(self) -> int:
        """Files passed over because they could not be decoded (image folders only)."""
        return 0

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device/file (safe to call twice)."""

    def __iter__(self) -> Iterator[np.ndarray]:
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class CaptureSource(FrameSource):
    """A cv2.VideoCapture: camera, video file or stream URL."""

    def __init__(self, capture: cv2.VideoCapture, kind: str, description: str) -> None:
        super().__init__(description)
        self.capture = capture
        self.kind = kind
        self.live = kind in ("camera", "stream")
        self._pending: np.ndarray | None = None

    @property
    def fps(self) -> float | None:
        fps = self.capture.get(cv2.CAP_PROP_FPS) if self.capture is not None else 0.0
        return float(fps) if fps and fps > 0 else None

    @property
    def frame_count(self) -> int | None:
        if self.live or self.capture is None:
            return None
        n = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return n if n > 0 else None

    def prime(self) -> None:
        """Read the first frame now, so a device that opens but delivers nothing fails early."""
        frame = self.read()
        if frame is None:
            self.close()
            raise SourceError(f"{self.description} opened but delivered no frame")
        self._pending = frame

    def read(self) -> np.ndarray | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        if self.capture is None:
            return None
        failures = 0
        while True:
            ok, frame = self.capture.read()
            if ok and frame is not None:
                return frame
            failures += 1
            if not self.live or failures >= MAX_LIVE_READ_FAILURES:
                if self.live:
                    log.warning("%s stopped delivering frames", self.description)
                return None

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None


class ImageFilesSource(FrameSource):
    """Image files in a fixed order (a folder, naturally sorted, or a single image)."""

    kind = "images"

    def __init__(self, paths: list[Path], description: str) -> None:
        super().__init__(description)
        self.paths = paths
        self.skipped_paths: list[Path] = []
        self._next = 0
        self._pending: np.ndarray | None = None

    @property
    def frame_count(self) -> int | None:
        return len(self.paths)

    @property
    def skipped(self) -> int:
        return len(self.skipped_paths)

    def prime(self) -> None:
        """Decode up to the first readable image now: a folder where none decodes is one error
        line, not a run that reports "no gesture on 0 of 0 frames"."""
        frame = self._decode_next()
        if frame is None:
            example = f" (e.g. {self.skipped_paths[0].name})" if self.skipped_paths else ""
            raise SourceError(f"no frame could be read from {self.description}: none of its "
                              f"{self.skipped} file(s) decodes as an image{example}")
        for path in self.skipped_paths:
            log.warning("skipping %s: not a decodable image", path)
        self._pending = frame

    def read(self) -> np.ndarray | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        before = self.skipped
        frame = self._decode_next()
        for path in self.skipped_paths[before:]:
            log.warning("skipping %s: not a decodable image", path)
        return frame

    def _decode_next(self) -> np.ndarray | None:
        """The next decodable image (None at the end); the others are counted as skipped."""
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            data = np.fromfile(str(path), dtype=np.uint8)  # fromfile: non-ASCII paths work
            frame = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
            if frame is not None:
                return frame
            self.skipped_paths.append(path)
        return None


def working_cameras(indices: range = PROBE_INDICES) -> list[int]:
    """Camera indices that open (used to make 'camera N does not open' actionable)."""
    found = []
    with _quiet_opencv():
        for index in indices:
            cap = cv2.VideoCapture(index)
            try:
                if cap.isOpened():
                    found.append(index)
            finally:
                cap.release()
    return found


def open_camera(index: int, width: int | None = None, height: int | None = None) -> CaptureSource:
    """Open camera ``index``; SourceError lists the indices that do open if it fails."""
    with _quiet_opencv():
        cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        cap.release()
        others = [i for i in working_cameras() if i != index]
        hint = (f"cameras that do open: {', '.join(map(str, others))}" if others else
                f"no camera opens at indices {PROBE_INDICES.start}..{PROBE_INDICES.stop - 1} "
                "(is one connected and not in use by another program?)")
        raise SourceError(f"cannot open camera {index}; {hint}")
    if width:
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    if height:
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    source = CaptureSource(cap, "camera", f"camera {index}")
    source.prime()
    return source


class PacedSource(FrameSource):
    """A file's frames handed over like a camera's: frame i at start + i/fps. When the reader is behind,
    the frames come at once (``drop`` False: none lost, the reader falls behind), or, as a camera does,
    the newest frame due comes and the ones before it are skipped (``drop`` True). ``index`` is the
    file position of the frame last handed over. ``live`` is True, so the hand finder behaves as with
    a camera (a frame never waits for its search, which runs in the time the loop leaves)."""

    live = True

    def __init__(self, source: FrameSource, fps: float, drop: bool = False) -> None:
        if not fps > 0:
            raise SourceError(f"the pace must be > 0 frames/s, got {fps}")
        super().__init__(f"{source.description} at {fps:g} frames/s")
        self.kind, self.source, self.pace, self.drop = source.kind, source, float(fps), drop
        self._start: float | None = None
        self.index = -1  # file position of the last frame handed over
        self.dropped = 0

    @property
    def fps(self) -> float | None:
        return self.pace

    @property
    def frame_count(self) -> int | None:
        return self.source.frame_count

    def read(self) -> np.ndarray | None:
        frame = self.source.read()
        if frame is None:
            return None
        now = time.perf_counter()
        if self._start is None:
            self._start = now
        position = self.index + 1
        if self.drop:
            newest = int((now - self._start) * self.pace)
            while position < newest:  # the camera has newer frames: the older ones are gone
                later = self.source.read()
                if later is None:
                    break
                frame, position, self.dropped = later, position + 1, self.dropped + 1
        wait = self._start + position / self.pace - now
        if wait > 0:
            time.sleep(wait)
        self.index = position
        return frame

    def close(self) -> None:
        self.source.close()


def live_spec(spec: str | int | Path) -> bool:
    """Does ``--source`` name a camera index or a stream URL (frames in real time), not a file?"""
    return isinstance(spec, int) or (isinstance(spec, str) and (spec.strip().isdigit() or "://" in spec))


def open_source(spec: str | int | Path, width: int | None = None, height: int | None = None) -> FrameSource:
    """Open what ``--source`` names: camera index, stream URL, image folder, image or video file.

    ``width``/``height`` request a camera resolution (the driver may pick the nearest).
    """
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return open_camera(int(spec), width, height)
    text = str(spec)
    if width or height:
        log.warning("--width/--height only apply to cameras; ignored for %s", text)
    if "://" in text:
        with _quiet_opencv():
            cap = cv2.VideoCapture(text)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open stream {text} (check the URL and that the stream is up)")
        source = CaptureSource(cap, "stream", f"stream {text}")
        source.prime()
        return source
    path = Path(text).expanduser()
    if not path.exists():
        raise SourceError(f"no such file or folder: {path} (for a camera, pass its index, e.g. --source 0)")
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                       key=_natural_key)
        if not files:
            raise SourceError(f"folder {path} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        source = ImageFilesSource(files, f"folder {path} ({len(files)} images)")
        source.prime()
        return source
    if path.suffix.lower() in IMAGE_SUFFIXES:
        source = ImageFilesSource([path], f"image {path}")
        source.prime()
        return source
    with _quiet_opencv():
        cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"cannot open video file {path}: not a video OpenCV can decode")
    source = CaptureSource(cap, "video", f"video {path}")
    source.prime()  # a file that opens but holds no readable frame fails here, in one line
    return source
