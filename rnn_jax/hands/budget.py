"""The live palm search's budget: which region (the whole frame or one tile) gets a palm run now.

Why: on one laptop core a palm run costs ~22 ms and a landmark run ~10 ms, and most webcam
frames show no hand. Searching every frame (whole frame + two tiles) spent ~3 palm runs on
every idle frame. Here every search beyond the tracked hands' landmark runs spends tokens of
one bucket: ``rate`` palm runs per frame on average whenever a hand is missing (none tracked,
or one of two), one region per frame (the cost is spread over frames), up to ``burst`` saved
while nothing needed a look. A region is looked at again only when its picture changed since
its last look (frame differencing on a grey picture ``MOTION_SCALE`` times smaller than the
frame, ~0.1 ms): a still scene, or a still picture held in front of the camera, costs nothing
after one look at each region. Where something appears (a cell of the small picture changes
much more than it usually does) a square around it (``hot_margin`` times its side, at most a tile)
is looked at at once, paid from a
``reserve`` that routine looks leave in the bucket: in a scene that keeps moving the routine
looks come every 1/rate frames, a hand that appears should not wait for them. A new scene
(most of the picture changed since the previous frame: a cut, the next photo) earns one look
at each of its regions, outside the bucket; the frames after it are the same scene. Looks
around a hand just lost are lent (the bucket may go into debt, and pays it back). ``max_gap``
frames without a look at the whole frame force one (slow changes stay under the threshold).
Pure bookkeeping: the finder runs the palm model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

MOTION_SCALE = 8  # the motion picture is 1/8 of the frame per side (80x60 for 640x480)
MOTION_DELTA = 12  # grey levels (of 255) a pixel of the small picture must change by to count as changed
# share of the small picture changed since the previous frame that makes a new scene (HaGRID's
# next photo; Megamind's shot changes 0.52-0.66, its frames within a shot at most 0.09-0.34 at p99),
# when the frame before it was steady (under half this changed: see SearchBudget.see)
CUT_FRACTION = 0.3
CELL = 5  # small-picture pixels per side of a cell of the activity map (40 frame pixels at MOTION_SCALE 8)
ACTIVITY_DECAY = 0.95  # per frame: each cell's usual share of changed pixels is its recent peak, fading ~5% a frame
HOT_FRAMES = 15  # frames a place where something appeared waits for a look (then forgotten)
HOT_MIN_SIDE = 192  # the square around where something appeared is at least the palm model's input (SearchBudget.hot_margin)
SURPRISE = 0.3  # a cell is surprised when the share of it changed since the previous frame exceeds its usual share by this

Region = tuple[int, int, int]  # (x, y, side) in frame pixels; the whole frame is region 0


def motion_image(frame_rgb: np.ndarray) -> np.ndarray:
    """Small grey picture for frame differencing (area-averaged: camera noise mostly averages out)."""
    h, w = frame_rgb.shape[:2]
    small = cv2.resize(frame_rgb, (max(1, w // MOTION_SCALE), max(1, h // MOTION_SCALE)),
                       interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY) if small.ndim == 3 else small


def cell_changes(now: np.ndarray, then: np.ndarray) -> np.ndarray:
    """Share of changed pixels per CELL x CELL cell of the small picture (partial edge cells dropped)."""
    diff = (cv2.absdiff(now, then) > MOTION_DELTA).astype(np.float32)
    rows, cols = diff.shape[0] // CELL, diff.shape[1] // CELL
    if rows == 0 or cols == 0:
        return np.zeros((0, 0), np.float32)
    return diff[: rows * CELL, : cols * CELL].reshape(rows, CELL, cols, CELL).mean(axis=(1, 3))


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
    """Token bucket + per-region memory of the last look + the new scene's looks (see the module doc)."""

    burst: float = 4.0  # tokens saved at most (consecutive frames a change may get a palm run)
    motion_threshold: float = 0.01  # a region whose small picture changed on less than this share is skipped
    max_gap: int = 30  # frames: the whole frame is looked at least this often while a search is wanted
    tokens: float = field(default=3.0)  # a fresh finder looks at its first frame at once (and keeps its reserve)
    turn: int = 0  # next tile to consider (0 = the middle one)
    looks: dict[int, tuple[np.ndarray, int]] = field(default_factory=dict)  # region -> (small picture, frame)
    focus: list[Region] = field(default_factory=list)  # around hands just lost: looked at first
    prev: np.ndarray | None = None  # the small picture of the previous frame (:meth:`see`)
    cut_at: int = -1  # the frame the last new scene was seen on
    scene_looks: int = 0  # looks the last new scene still has (outside the bucket)
    reserve: float = 2.0  # tokens a routine look leaves in the bucket, for looks where something appeared
    activity: np.ndarray | None = None  # per cell: the usual share of changed pixels from frame to frame
    hot: Region | None = None  # where something appeared lately (frame pixels), not looked at yet
    hot_at: int = -1  # the frame it appeared on
    lent: int = 0  # looks a lost hand may still take at once, in debt (:meth:`restart`)
    change: float = 0.0  # share of the small picture that changed on the previous frame (:meth:`see`)
    frame_shape: tuple[int, int] | None = None  # (height, width) of the frames, in pixels
    # where something appeared is looked at in a square this many times its side (the lost hand's margin,
    # :func:`around`), at least HOT_MIN_SIDE (a smaller square is only upsampled) and at most a tile; None:
    # the tile that holds it. In a tile a 70-px hand entering a 640-px frame is ~40 px at the palm model's
    # 192 px and was missed (the entry videos: 8 of 12 hands found within 6 frames; with the square, 11)
    hot_margin: float | None = 2.5

    def earn(self, rate: float) -> None:
        """One frame with a hand missing passes: ``rate`` palm runs' worth of tokens (capped at ``burst``)."""
        self.tokens = min(max(self.burst, 1.0), self.tokens + rate)

    def see(self, small: np.ndarray, frame: int, regions: int) -> bool:
        """Once per frame, before any plan: is it a new scene (``CUT_FRACTION`` of the small picture
        changed since the previous frame, after a steady frame: less than half that changed on the one
        before)? A cut and the next photo jump from a still picture (Megamind's cut: 0.00 -> 0.61);
        wind in a tree or a body moving close builds up over frames (the tree: 0.14 -> 0.27 -> 0.34,
        each such gust was a new scene and its ten looks before this rule). A new scene earns a look
        at each of its ``regions`` (HaGRID's next photo in its val video showed a small gesture hand in
        the 5th tile only after 23 frames at the idle rate) and drops the looks around lost hands.
        Compared with the previous frame, not the last look: a picture held still is a new scene on
        its first frame only."""
        self.frame_shape = (small.shape[0] * MOTION_SCALE, small.shape[1] * MOTION_SCALE)
        first = self.prev is None or self.prev.shape != small.shape  # (the first frame is one too)
        change = 0.0 if first else changed_fraction(small, self.prev, None)
        cut = first or (change >= CUT_FRACTION and self.change < CUT_FRACTION / 2)
        self.change = change
        if self.hot is not None and frame - self.hot_at > HOT_FRAMES:
            self.hot = None  # nothing was looked at there in time: forget it
        if self.prev is not None and self.prev.shape == small.shape and not cut:
            cells = cell_changes(small, self.prev)
            if self.activity is None or self.activity.shape != cells.shape:
                self.activity = cells
            else:
                hot = np.argwhere(cells >= self.activity + SURPRISE)
                if hot.size:
                    (r0, c0), (r1, c1) = hot.min(0), hot.max(0) + 1
                    side = max(r1 - r0, c1 - c0) * CELL * MOTION_SCALE
                    self.hot = (int(c0 * CELL * MOTION_SCALE), int(r0 * CELL * MOTION_SCALE), int(side))
                    self.hot_at = frame
                self.activity = np.maximum(cells, ACTIVITY_DECAY * self.activity)  # peak, fading
        elif cut:
            self.activity = None
        self.prev = small
        if cut:
            self.cut_at, self.scene_looks = frame, regions
            self.focus.clear()
        return cut

    def restart(self, lost: list[Region] | None = None, frame: int | None = None) -> None:
        """A hand was lost: every region is looked at afresh, tiles from the middle; ``lost``: a region
        around each lost hand, looked at first and at once (a hand lost for a frame is most often still
        there: waiting for tokens lost Megamind's hand for 5-8 frames at a time).
        Those looks are lent by the bucket (it may go ``burst`` - 1 tokens into debt, paid back before
        the next look), so hands lost again and again (leaves taken for a hand) do not raise the average.
        On a new scene's frame nothing is restarted: its looks are already planned."""
        if frame is not None and frame == self.cut_at:
            return
        self.turn = 0
        self.looks.clear()
        self.focus = list(lost or [])
        self.lent = len(self.focus)  # the looks around them (lending the whole frame a look too: 94.9% right, 95.3 without)

    def _around_hot(self, tiles: list[Region], small: np.ndarray, frame: int) -> tuple[str, Region | None]:
        """Where something appeared: ("near", a square ``hot_margin`` times its side around it) when that is
        smaller than a tile, else the tile holding it (the one whose centre is nearest it), else the
        whole frame; a tile's or the whole frame's look is recorded."""
        x, y, side = self.hot
        if self.hot_margin is not None and tiles and self.frame_shape is not None:
            h, w = self.frame_shape
            look = int(min(max(HOT_MIN_SIDE, self.hot_margin * side), h, w))
            if look < tiles[0][2]:
                return ("near", square_at(x + side / 2, y + side / 2, look, self.frame_shape))
        inside = [k for k, (tx, ty, ts) in enumerate(tiles)
                  if tx <= x and ty <= y and x + side <= tx + ts and y + side <= ty + ts]
        if not inside:
            self.looks[0] = (small, frame)
            return ("whole", None)
        k = min(inside, key=lambda i: (tiles[i][0] + tiles[i][2] / 2 - x - side / 2) ** 2
                + (tiles[i][1] + tiles[i][2] / 2 - y - side / 2) ** 2)
        self.looks[k + 1] = (small, frame)
        return ("tile", tiles[k])

    def _changed(self, key: int, region: Region | None, small: np.ndarray, frame: int) -> bool:
        last = self.looks.get(key)
        if last is None or last[0].shape != small.shape:
            return True
        if key == 0 and frame - last[1] >= self.max_gap:
            return True
        return changed_fraction(small, last[0], region) >= self.motion_threshold if self.motion_threshold > 0 else True

    def plan(self, small: np.ndarray, tiles: list[Region], frame: int,
             scene: bool = True) -> tuple[str, Region | None] | None:
        """What to look at on this frame, or None: ("focus", region) around a hand just lost, else the
        region where something appeared, else ("whole", None) when the whole frame changed, else
        ("tile", the next changed tile in turn).

        Who pays: a new scene's looks while they last (``scene``: the caller lets them be spent now);
        else the looks lent after a hand was lost (:meth:`restart`); else one token, for a look where
        something appeared, or for a routine look when ``reserve`` tokens stay in the bucket after it."""
        cap = max(self.burst, 1.0)
        if self.lent > 0 and self.tokens < 2.0 - cap:  # the debt is at its limit: nothing more is lent
            self.lent = 0
        if self.lent == 0:
            self.focus.clear()
        if self.focus:
            self.lent -= 1
            self.tokens -= 1.0
            return ("focus", self.focus.pop(0))
        if scene and self.scene_looks > 0:
            pay = "scene"
        elif self.lent > 0:
            pay = "lent"
        elif self.tokens >= 1.0 and (self.hot is not None or self.tokens >= 1.0 + self.reserve):
            pay = "token"
        else:
            return None
        choice: tuple[str, Region | None] | None = None
        if pay != "scene" and self.hot is not None:  # something appeared: the smallest region around it
            choice, self.hot = self._around_hot(tiles, small, frame), None
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
        if choice is None:  # every region seen as it is now
            if pay == "scene":
                self.scene_looks = 0
            elif pay == "lent":
                self.lent = 0
        elif pay == "scene":
            self.scene_looks -= 1
        else:
            self.lent -= pay == "lent"
            self.tokens -= 1.0
        return choice

def around(box: tuple[float, float, float, float], frame_shape: tuple[int, ...], tile_side: int,
           step: tuple[float, float] = (0.0, 0.0)) -> Region:
    """A square region centred on a hand's box (x, y, w, h): a tile's side, or 2.5x the hand when it is
    bigger than half a tile, clipped inside the frame. ``step``: the hand's move over its last frame
    (pixels); the region is centred one step ahead and grows by the step, so a fast hand lost in a
    swipe (45 px a frame at 15 frames/s) is looked for where it went, and a still one where it was."""
    h, w = frame_shape[:2]
    x, y, bw, bh = box
    dx, dy = step
    side = int(min(max(tile_side, 2.5 * max(bw, bh)) + 2 * max(abs(dx), abs(dy)), max(h, w)))
    side = max(1, min(side, max(h, w)))
    return square_at(x + bw / 2 + dx, y + bh / 2 + dy, side, frame_shape)


def square_at(cx: float, cy: float, side: int, frame_shape: tuple[int, ...]) -> Region:
    """The square of ``side`` centred on (cx, cy), moved inside the frame (height, width, ...)."""
    h, w = frame_shape[:2]
    x0 = int(round(min(max(cx - side / 2, 0), max(w - side, 0))))
    y0 = int(round(min(max(cy - side / 2, 0), max(h - side, 0))))
    return (x0, y0, side)


def box_step(earlier: tuple[float, float, float, float] | None,
             latest: tuple[float, float, float, float]) -> tuple[float, float]:
    """A box's centre move from ``earlier`` to ``latest`` (pixels; none without an earlier box)."""
    if earlier is None:
        return (0.0, 0.0)
    return (latest[0] + latest[2] / 2 - earlier[0] - earlier[2] / 2, latest[1] + latest[3] / 2 - earlier[1] - earlier[3] / 2)
