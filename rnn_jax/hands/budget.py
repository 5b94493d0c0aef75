"""The live palm search's budget: which region (the whole frame or one tile) gets a palm run now.

Why: on one laptop core a palm run costs ~22 ms and a landmark run ~10 ms, and most webcam
frames show no hand. Searching every frame (whole frame + two tiles) spent ~3 palm runs on
every idle frame. Here a search spends tokens: ``rate`` palm runs per frame on average (the
finder decides when a search is wanted), one region per frame (the cost is spread over
frames), up to ``burst`` saved while nothing needed a look. A region is looked at again only when its picture changed since its last
look (frame differencing on a grey picture ``MOTION_SCALE`` times smaller than the frame,
~0.1 ms): a still scene costs nothing after one look at each region; a hand that enters
changes the whole frame, which has priority, and finds saved tokens. A new scene (most of
the picture changed at once) earns a look at every region, which the finder may take a few
per frame. ``max_gap`` frames
without a look at the whole frame force one (slow changes stay under the threshold).
Pure bookkeeping: the finder runs the palm model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

MOTION_SCALE = 8  # the motion picture is 1/8 of the frame per side (80x60 for 640x480)
MOTION_DELTA = 12  # grey levels (of 255) a pixel of the small picture must change by to count as changed
# share of the small picture changed since the last frame planned for that makes a new scene (HaGRID's
# next photo; Megamind's shot changes 0.52-0.66, its frames within a shot at most 0.09-0.34 at p99)
CUT_FRACTION = 0.3

Region = tuple[int, int, int]  # (x, y, side) in frame pixels; the whole frame is region 0


def motion_image(frame_rgb: np.ndarray) -> np.ndarray:
    """Small grey picture for frame differencing (area-averaged: camera noise mostly averages out)."""
    h, w = frame_rgb.shape[:2]
    small = cv2.resize(frame_rgb, (max(1, w // MOTION_SCALE), max(1, h // MOTION_SCALE)),
                       interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY) if small.ndim == 3 else small


def changed_fraction(now: np.ndarray, then: np.ndarray, region: Region | None) -> float:
    """Share of the region's small-picture pixels that changed by more than MOTION_DELTA."""
    if region is not None:
        x, y, side = (v // MOTION_SCALE for v in region)
        side = max(side, 1)
        now, then = now[y : y + side, x : x + side], then[y : y + side, x : x + side]
    if now.size == 0:
        return 0.0
    diff = cv2.absdiff(now, then)
    return float(np.count_nonzero(diff > MOTION_DELTA)) / diff.size


@dataclass
class SearchBudget:
    """Token bucket + per-region memory of the last look (see the module doc)."""

    burst: float = 4.0  # tokens saved at most (consecutive frames a change may get a palm run)
    motion_threshold: float = 0.01  # a region whose small picture changed on less than this share is skipped
    max_gap: int = 30  # frames: the whole frame is looked at least this often while a search is wanted
    tokens: float = field(default=1.0)  # a fresh finder looks at its first frame at once
    turn: int = 0  # next tile to consider (0 = the middle one)
    looks: dict[int, tuple[np.ndarray, int]] = field(default_factory=dict)  # region -> (small picture, frame)
    focus: list[Region] = field(default_factory=list)  # around hands just lost: looked at first
    prev: np.ndarray | None = None  # the small picture of the last frame planned for
    cut_at: int = -1  # the frame the last new scene was seen on

    def earn(self, rate: float) -> None:
        """One frame passes: ``rate`` palm runs' worth of tokens (capped at ``burst``)."""
        cap = max(self.burst, 1.0)
        if self.tokens < cap:  # (a new scene's grant above the cap is kept until spent)
            self.tokens = min(cap, self.tokens + rate)

    def restart(self, lost: list[Region] | None = None) -> None:
        """A hand was lost (or the finder reset): every region is looked at afresh, tiles from the middle.

        ``lost``: a region around each lost hand, looked at first, with a token each at once (a hand
        lost for a frame is most often still there: waiting for tokens, and looking at the whole
        frame first, lost Megamind's hand for 5-8 frames at a time)."""
        self.turn = 0
        self.looks.clear()
        self.focus = list(lost or [])
        self.tokens = max(self.tokens, len(self.focus) + 1.0)  # the looks around them, then the whole frame

    def _changed(self, key: int, region: Region | None, small: np.ndarray, frame: int) -> bool:
        last = self.looks.get(key)
        if last is None or last[0].shape != small.shape:
            return True
        if key == 0 and frame - last[1] >= self.max_gap:
            return True
        return changed_fraction(small, last[0], region) >= self.motion_threshold if self.motion_threshold > 0 else True

    def plan(self, small: np.ndarray, tiles: list[Region], frame: int) -> tuple[str, Region | None] | None:
        """What to look at on this frame, or None: ("focus", region) around a hand just lost, else
        ("whole", None) when the whole frame changed, else ("tile", the next changed tile in turn).

        Spends one token when it returns something. A new scene (``CUT_FRACTION`` of the small picture
        changed since the last call) earns a look at every region: HaGRID's next photo in its val video
        showed a small gesture hand in the 5th tile only after 23 frames at the idle rate."""
        cut = self.prev is not None and self.prev.shape == small.shape and (
            changed_fraction(small, self.prev, None) >= CUT_FRACTION)
        self.prev = small
        if cut:  # a new scene: the lost hand is not where it was, and every region deserves a look
            self.cut_at = frame
            self.focus.clear()
            self.tokens = max(self.tokens, 1.0 + len(tiles))
        if self.tokens < 1.0:
            return None
        choice: tuple[str, Region | None] | None = None
        if self.focus:
            choice = ("focus", self.focus.pop(0))
        elif self._changed(0, None, small, frame):
            choice = ("whole", None)
            self.looks[0] = (small, frame)
        else:
            for step in range(len(tiles)):
                k = (self.turn + step) % len(tiles)
                if self._changed(k + 1, tiles[k], small, frame):
                    choice, self.turn = ("tile", tiles[k]), (k + 1) % len(tiles)
                    self.looks[k + 1] = (small, frame)
                    break
        if choice is not None:
            self.tokens -= 1.0
        return choice


def around(box: tuple[float, float, float, float], frame_shape: tuple[int, ...], tile_side: int) -> Region:
    """A square region centred on a hand's box (x, y, w, h): a tile's side, or 2.5x the hand when it is
    bigger than half a tile, clipped inside the frame."""
    h, w = frame_shape[:2]
    x, y, bw, bh = box
    side = int(min(max(tile_side, 2.5 * max(bw, bh)), max(h, w)))
    side = max(1, min(side, max(h, w)))
    cx, cy = x + bw / 2, y + bh / 2
    x0 = int(round(min(max(cx - side / 2, 0), max(w - side, 0))))
    y0 = int(round(min(max(cy - side / 2, 0), max(h - side, 0))))
    return (x0, y0, side)
