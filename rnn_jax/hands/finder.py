"""Find hands in frames: palm detection, 21 landmarks, tracking between frames, one crop rule.

Per frame: hands tracked from the previous frame get their landmark square from last
frame's landmarks (no palm model). The palm detector looks at the whole frame and, closer, at
a grid of overlapping tiles (a "second look": the palm model's 192 px input makes a hand 3 m
away a few pixels wide; a tile of half the frame doubles its size). A still picture gets the
whole frame and every tile at once. Live, the search runs under a budget
(:mod:`rnn_jax.hands.budget`, ``idle_palm_rate`` and the fields after it): one bucket of palm
runs earned at a set rate on every frame with a hand missing (none tracked, or the second of
two), one region per frame, only at regions whose picture changed since their last look or
where something just appeared; a new scene (a cut) earns a look at every region, a lost hand
a look around where it was; with ``search_lag`` the palm run happens on a worker thread beside
the loop and its palms join a later frame.
(``idle_palm_rate=None``: the search before the budget, whole frame + ``tiles_per_search``
tiles on every frame without a hand.) Tiles are taken in turn from the one in the middle of the frame,
again from the middle whenever a hand is lost (people face their camera: a hand that appears or
comes back is most likely near the middle). Each square goes through the landmark model; a hand whose
presence score drops below ``min_presence`` is lost. A hand only a tile saw must be surer
(faces seen up close fool the palm model), unless the short-range face detector finds no face
under it. :func:`hand_crop` is the one rule that turns a hand (or an
annotated box) into the classifier's input, for training and live alike.
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from rnn_jax.hands.budget import SearchBudget, around, box_step, motion_image
from rnn_jax.hands.crop import Box
from rnn_jax.hands.geometry import (
    Palm,
    Rect,
    decode_faces,
    decode_palms,
    iou_cxcywh,
    letterbox_rgb,
    overlap_fraction,
    rect_from_landmarks,
    rect_from_palm,
    warp_square,
    weighted_nms,
)
from rnn_jax.hands.models import FACE_SIZE, LANDMARK_SIZE, PALM_SIZE, open_face_model, open_models

LANDMARK_MARGIN = 1.15  # landmarks are joint centres: widen their box to cover the skin


def landmark_box(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """Axis-aligned box (x, y, w, h) around 21 landmarks, widened from joint centres to the skin."""
    lo, hi = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    centre, size = (lo + hi) / 2, (hi - lo) * LANDMARK_MARGIN
    return (float(centre[0] - size[0] / 2), float(centre[1] - size[1] / 2), float(size[0]), float(size[1]))


@dataclass(frozen=True, eq=False)
class Hand:
    """One hand in a frame."""

    landmarks: np.ndarray  # (21, 3) x, y in frame pixels; z relative depth (same scale)
    presence: float  # landmark model's "a hand is in the square" score, 0..1
    handedness: str  # "right" or "left", as the landmark model labels it (mirrored-selfie convention)
    handedness_score: float  # probability of ``handedness``
    rect: Rect  # the rotated square the landmarks were found in
    track_id: int  # stays the same while the hand is tracked
    tracked: bool  # True = found from last frame's landmarks, False = from a palm detection
    frame_size: tuple[int, int] = (0, 0)  # (width, height) of the frame

    @property
    def box(self) -> tuple[float, float, float, float]:
        """Axis-aligned box around the hand in frame pixels (x, y, w, h), widened to the skin."""
        return landmark_box(self.landmarks)

    def normalised_box(self) -> Box:
        """:attr:`box` as a normalised COCO box (what the data cache stores)."""
        w, h = self.frame_size
        x, y, bw, bh = self.box
        return (x / w, y / h, bw / w, bh / h)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.track_id, "box": [round(v, 1) for v in self.box],
                "landmarks": np.round(self.landmarks, 1).tolist(), "presence": round(self.presence, 4),
                "handedness": self.handedness, "handedness_score": round(self.handedness_score, 4),
                "tracked": self.tracked}


@dataclass
class FinderConfig:
    """Knobs of the hand finder (defaults suit a webcam at arm's length)."""

    max_hands: int = 2
    min_palm_score: float = 0.5
    min_presence: float = 0.5
    # frames between palm searches while some (not all) hands are tracked: every 3rd frame finds a
    # second, small hand in time (HaGRID val photos held 12 frames, with the face check: gesture hand
    # lost on 2.6% of frames instead of 4.5% with every 10th) for ~1 palm run per frame instead of 0.5
    redetect_every: int = 3
    nms_iou: float = 0.3
    same_hand_iou: float = 0.4  # a palm overlapping a tracked hand this much is that hand
    tile_grid: int = 3  # second look: a tile_grid x tile_grid grid of overlapping tiles (0 = whole frame only)
    tile_fraction: float = 0.5  # tile side / frame's long side
    tiles_per_search: int | None = 2  # tiles looked at per palm search, in turn from the middle (None = all)
    # a new hand only a tile's palm saw must be this sure: the false hands tiles find on
    # Megamind's face close-up reach 0.93 (HaGRID val gesture hands in 640 px frames: 148 found
    # without tiles, 162 with them at this bar; Megamind's no-hand shots keep 1 hand frame)
    min_presence_tile: float = 0.95
    # ... unless it lies on no face: then this is enough (needs the face model of
    # tools/build_hand_models.py). The false tile hands on Megamind's face close-up cover 53-68%
    # of their box with the face the short-range face detector finds; real val hands next to a
    # face 0-49% (that one at presence 0.98). Val gesture hands found in 640 px still frames:
    # 162/167 with the 0.95 bar alone, 165/167 with the face check (docs/hagrid.md)
    min_presence_tile_off_face: float = 0.85
    max_face_overlap: float = 0.3  # a tile-only hand this much inside a face is the face
    # ---- the live search budget (rnn_jax.hands.budget; tiles="turn" only: still pictures never use it,
    # so these stay out of the repr that keys the HaGRID photo cache). Figures: docs/performance.md
    # palm runs per frame on average, earned on every frame with a hand missing (none tracked, or
    # fewer than max_hands: the missing second hand is searched from the same bucket); a new scene's
    # looks and a lost hand's looks come on top (see the budget module). None = no budget: the palm
    # search on every frame without a hand, whole frame + tiles_per_search tiles, and every
    # redetect_every-th frame while a hand is missing, as before the budget
    idle_palm_rate: float | None = field(default=0.15, repr=False)
    palm_burst: float = field(default=4.0, repr=False)  # palm runs saved at most for the frames after a change
    # tokens a routine look leaves in the bucket, for looks where something appeared (a hand entering
    # a scene that keeps moving is looked at on the next frame instead of within 1/idle_palm_rate frames)
    palm_reserve: float = field(default=2.0, repr=False)
    motion_threshold: float = field(default=0.01, repr=False)  # region unchanged below this share: no look
    # where something appeared is looked at in a square this many times its side (at least the palm model's
    # 192 px, at most a tile; None: the tile that holds it). Entry videos: 11 of 12 small hands appearing
    # in a moving scene found within 6 frames, against 8 with the tile (docs/performance.md)
    hot_margin: float | None = field(default=2.5, repr=False)
    max_search_gap: int = field(default=30, repr=False)  # frames: the whole frame is looked at least this often
    # frames between a palm search's frame and the frame its palms join (0 = same frame; >= 1 = the
    # search runs on a worker thread beside the loop, and the loop waits for it only at that frame;
    # a new scene's first looks are taken on its first frame all the same: HaGRID val live 95.3% right
    # with them beside the loop too, 95.4% on the frame, at 1e78eac)
    search_lag: int = field(default=0, repr=False)
    # True: the frame a search is due on waits for it (the same hands on every run over a file: the
    # checks and tests). False: a frame never waits (a camera: the newest frame wins). A search not
    # finished by its due frame joins the first frame after it finished, a new scene's first look stays
    # on its frame and the rest go to the worker, which (lower priority) gets the time the loop leaves.
    # On one core, HaGRID photos held as a 30 fps video waited ~30 ms on 3 frames of each photo
    # (p90 69 ms against p50 14 ms); rnn_jax.live sets False for cameras and streams (docs/performance.md)
    search_wait: bool = field(default=True, repr=False)
    # frames a palm the landmark model turned down is remembered: a palm found again at the same place
    # (IoU > same_hand_iou) gets no landmark run (a face in an idle scene is found again and again).
    # Off (0) by default: with 15, Megamind's hand was found on 77 of its first 97 frames instead of 94
    # (a palm turned down while the hand came into view kept it out for 15 frames)
    reject_memory: int = field(default=0, repr=False)
    # while a hand is tracked, a new scene's looks (one per region) are spent too (HaGRID val photos
    # held: a resting second hand found first; without: 95.1% right instead of 95.4%). A new scene
    # whose tracked hands all carry over the cut (the same hand in the next photo) earns no looks
    new_scene_looks: bool = field(default=True, repr=False)
    # regions looked at per frame while a new scene's looks last (1 elsewhere): a new scene is searched
    # about as fast as before the budget (whole frame + 2 tiles per frame). HaGRID val live (photos held
    # 12 frames, the first 6 not scored): 95.8% right with 3, 94.8% with 2, 92.8% with 1
    scene_looks_per_frame: int = field(default=3, repr=False)
    # a new scene with a face at least this share of the frame's long side in view (a person near the
    # camera, whose hands are big enough for the whole frame's look) is looked at whole first, alone;
    # its tiles follow only if that look found a hand (the other hand may be small or half hidden).
    # An idle new scene then costs one palm run instead of 1 + tile_grid**2 (Megamind's no-hand shots:
    # 20 of 41 palm runs were its two new scenes). The face model (~1 ms) runs once per new scene;
    # without it, or None: every new scene gets its tiles. 0.18 chosen on 500 HaGRID *train* photos
    # (tools/near_face.py, docs/performance.md): of the 80 whose largest face is >= 0.18, 3 had a hand only
    # a tile found; Megamind's faces are 0.19-0.42
    near_face: float | None = field(default=0.18, repr=False)

    def __post_init__(self) -> None:
        if self.tile_grid < 0 or not 0.1 <= self.tile_fraction <= 1.0:
            raise ValueError(f"tile_grid must be >= 0 and tile_fraction in [0.1, 1], got {self.tile_grid}, "
                             f"{self.tile_fraction}")
        if self.tiles_per_search is not None and self.tiles_per_search < 0:
            raise ValueError(f"tiles_per_search must be >= 0 or None, got {self.tiles_per_search}")
        if not 0.0 <= self.min_presence_tile_off_face <= self.min_presence_tile <= 1.0:
            raise ValueError(f"need 0 <= min_presence_tile_off_face <= min_presence_tile <= 1, got "
                             f"{self.min_presence_tile_off_face}, {self.min_presence_tile}")
        if not 0.0 < self.max_face_overlap <= 1.0:
            raise ValueError(f"max_face_overlap must be in (0, 1], got {self.max_face_overlap}")
        if not (self.idle_palm_rate is None or 0.0 < self.idle_palm_rate <= 1.0) or self.palm_burst < 1.0:
            raise ValueError(f"idle_palm_rate must be None or in (0, 1] and palm_burst >= 1, got "
                             f"{self.idle_palm_rate}, {self.palm_burst}")
        if not 0.0 <= self.palm_reserve <= self.palm_burst - 1.0:
            raise ValueError(f"palm_reserve must be in [0, palm_burst - 1], got {self.palm_reserve} "
                             f"(palm_burst {self.palm_burst})")
        if self.redetect_every < 1:
            raise ValueError(f"redetect_every must be >= 1, got {self.redetect_every}")
        if self.hot_margin is not None and not self.hot_margin >= 1.0:
            raise ValueError(f"hot_margin must be None or >= 1, got {self.hot_margin}")
        if (not 0.0 <= self.motion_threshold < 1.0 or self.max_search_gap < 1 or self.search_lag < 0
                or self.reject_memory < 0 or self.scene_looks_per_frame < 1
                or not (self.near_face is None or 0.0 < self.near_face <= 1.0)):
            raise ValueError(f"need motion_threshold in [0, 1), max_search_gap, scene_looks_per_frame >= 1, "
                             f"search_lag, reject_memory >= 0, near_face None or in (0, 1], got "
                             f"{self.motion_threshold}, {self.max_search_gap}, {self.scene_looks_per_frame}, "
                             f"{self.search_lag}, {self.reject_memory}, {self.near_face}")


@dataclass
class _Timing:
    palm_runs: int = 0
    landmark_runs: int = 0
    face_runs: int = 0
    frames: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class HandFinder:
    """Stateful hand finder over a sequence of frames (call :meth:`find` once per frame)."""

    def __init__(self, palm: ort.InferenceSession, landmark: ort.InferenceSession,
                 config: FinderConfig | None = None, face: ort.InferenceSession | None = None) -> None:
        self.palm_session, self.landmark_session, self.face_session = palm, landmark, face
        self.config = config or FinderConfig()
        if self.config.max_hands < 1:
            raise ValueError(f"max_hands must be >= 1, got {self.config.max_hands}")
        self._palm_in = palm.get_inputs()[0].name
        self._lm_in = landmark.get_inputs()[0].name
        self._face_in = face.get_inputs()[0].name if face is not None else None
        self._tracked: list[Hand] = []
        self._before: dict[int, tuple[float, float, float, float]] = {}  # track id -> its box a frame earlier
        self._ids = itertools.count()
        self._next_tile = 0
        self.stats = _Timing()
        self._budget = self._fresh_budget()
        # (frame its palms join, the worker's search, the picture it searched, the frame it was started on)
        self._pending: tuple[int, Future | None, np.ndarray, int] | None = None
        self._deferred: list | None = None  # areas of the pending search, handed to the worker at the end of find()
        self._executor: ThreadPoolExecutor | None = None
        self._rejected: list[tuple[np.ndarray, int]] = []  # (palm box cxcywh, frame) turned down lately
        self._small: np.ndarray | None = None  # this frame's motion picture (budget)
        self._near_cut = -2  # the last new scene with a near person in view (its tiles wait for its whole frame)
        self._faces: tuple[int, list[np.ndarray]] | None = None  # (frame, its faces) from the near-person check

    def _fresh_budget(self) -> SearchBudget:
        cfg = self.config
        return SearchBudget(cfg.palm_burst, cfg.motion_threshold, cfg.max_search_gap,
                            tokens=1.0 + cfg.palm_reserve, reserve=cfg.palm_reserve, hot_margin=cfg.hot_margin)

    @classmethod
    def load(cls, model_dir: str | Path | None = None, threads: int | None = 1,
             config: FinderConfig | None = None) -> HandFinder:
        """Open the models in ``model_dir`` (default ``$RNN_JAX_HANDS`` or ~/.cache/rnn-jax/hands)."""
        palm, landmark = open_models(model_dir, threads)
        return cls(palm, landmark, config, open_face_model(model_dir, threads))

    def reset(self) -> None:
        """Forget tracked hands (next frame starts with a palm search, at the middle tile)."""
        self._tracked = []
        self._before = {}
        self._next_tile = 0
        if self._pending is not None and self._pending[1] is not None:
            self._pending[1].result()  # let the worker finish; its palms belong to another video
            self._pending = None
        self._budget = self._fresh_budget()
        self._rejected = []
        self._near_cut = -2

    def close(self) -> None:
        """Stop the search worker thread (if ``search_lag`` started one)."""
        self.reset()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # ------------------------------------------------------------------ models
    def detect_palms(self, frame_rgb: np.ndarray, tiles: str = "turn") -> list[tuple[Palm, bool]]:
        """Palm detector on the whole frame, then on this search's tiles (see the module doc).

        Returns (palm, tiles only): whether only a tile saw it (its hand must then be surer,
        ``min_presence_tile``: faces and patterns seen up close fool the palm model more often).
        ``tiles``: "turn" = ``tiles_per_search`` tiles in turn (live), "all" = every tile now
        (still pictures), "none" = the whole frame only (close-ups, where the hand is big).
        """
        cfg = self.config
        whole = self._palms_in(frame_rgb, 0, 0)
        palms = [(palm, False) for palm in weighted_nms(whole, cfg.nms_iou, max_out=cfg.max_hands)]
        if tiles not in ("turn", "all", "none"):
            raise ValueError(f"tiles must be 'turn', 'all' or 'none', got {tiles!r}")
        grid = search_tiles(frame_rgb.shape, cfg.tile_grid, cfg.tile_fraction)
        if grid:
            count = (0 if tiles == "none" else len(grid) if tiles == "all" or cfg.tiles_per_search is None
                     else min(cfg.tiles_per_search, len(grid)))
            seen = [b for _, b, _ in whole]
            closer = []
            for k in range(count):
                x, y, side = grid[(self._next_tile + k) % len(grid)]
                closer += self._palms_in(frame_rgb[y : y + side, x : x + side], x, y)
            self._next_tile = (self._next_tile + count) % len(grid)
            # only what the whole frame did not see: whole-frame palms stay exactly as without tiles
            closer = [c for c in closer if not seen or not (iou_cxcywh(c[1], np.stack(seen)) > cfg.nms_iou).any()]
            palms += [(palm, True) for palm in weighted_nms(closer, cfg.nms_iou, max_out=cfg.max_hands)]
        return palms  # whole-frame palms first; find() stops at max_hands hands

    def _palms_in(self, region_rgb: np.ndarray, x0: int, y0: int) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """Palm model on one region (letterboxed to 192 px, pixels scaled to 0..1), in frame pixels.

        (0..1, not -1..1: with -1..1 this model's logits run into the hundreds on every photo.)
        """
        square, box = letterbox_rgb(region_rgb, PALM_SIZE)
        x = _unit_nchw(square)
        raw, logits = self.palm_session.run(None, {self._palm_in: x})
        self.stats.palm_runs += 1
        found = decode_palms(raw[0], logits[0], box, self.config.min_palm_score)
        if x0 or y0:
            shift = np.array([x0, y0], np.float64)
            found = [(score, np.concatenate([b[:2] + shift, b[2:]]), kp + shift) for score, b, kp in found]
        return found

    def detect_faces(self, frame_rgb: np.ndarray) -> list[np.ndarray]:
        """Face boxes (cx, cy, w, h, frame pixels) from the short-range face detector; [] without it."""
        if self.face_session is None:
            return []
        square, box = letterbox_rgb(frame_rgb, FACE_SIZE)
        x = _unit_nchw(square)
        raw, logits = self.face_session.run(None, {self._face_in: x})
        self.stats.face_runs += 1
        found = decode_faces(raw[0], logits[0], box)
        return [face.box for face in weighted_nms(found, self.config.nms_iou, max_out=5)]

    def _off_face(self, hand_box: tuple[float, float, float, float], faces: list[np.ndarray]) -> bool:
        return all(overlap_fraction(hand_box, face) < self.config.max_face_overlap for face in faces)

    def landmarks_in(self, frame_rgb: np.ndarray, rect: Rect) -> tuple[np.ndarray, float, float]:
        """Landmark model on one rotated square -> (21x3 frame-pixel landmarks, presence, right-hand prob)."""
        patch = warp_square(frame_rgb, rect, LANDMARK_SIZE)
        x = _unit_nchw(patch)
        coords, presence, right, _world = self.landmark_session.run(None, {self._lm_in: x})
        self.stats.landmark_runs += 1
        pts = coords.reshape(21, 3).astype(np.float64) / LANDMARK_SIZE
        xy = rect.to_frame(pts[:, :2])
        z = pts[:, 2:3] * rect.side
        return np.concatenate([xy, z], 1), float(presence.reshape(-1)[0]), float(right.reshape(-1)[0])

    # ------------------------------------------------------------------- frame
    def find(self, frame: np.ndarray, colour: str = "bgr", tiles: str = "turn") -> list[Hand]:
        """All hands in ``frame`` (at most ``max_hands``), tracked ones keeping their ``track_id``.

        ``tiles``: which second-look tiles a palm search looks at (see :meth:`detect_palms`)."""
        if frame.ndim == 2 or frame.shape[2] == 1:
            rgb = cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2RGB)
        else:
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if colour == "bgr" else frame
        height, width = rgb.shape[:2]
        cfg = self.config
        self.stats.frames += 1
        candidates: list[tuple[Rect, int, bool, bool]] = []  # rect, track id, tracked, a tile's palm only
        second_try: dict[int, Rect] = {}  # track id -> the other square to try when the first loses the hand
        for h in self._tracked:
            first, other = tracking_squares(rect_from_landmarks(h.landmarks), box_step(self._before.get(h.track_id), h.box))
            candidates.append((first, h.track_id, True, False))
            if other is not None:
                second_try[h.track_id] = other
        budgeted = tiles == "turn" and cfg.idle_palm_rate is not None
        if budgeted:
            grid = search_tiles(rgb.shape, cfg.tile_grid, cfg.tile_fraction)
            self._see(rgb, grid)
            palms = self._due_palms(rgb)
            palms += self._budgeted_search(rgb, grid)
        else:
            search = not self._tracked or (
                len(self._tracked) < cfg.max_hands and self.stats.frames % cfg.redetect_every == 0)
            palms = self.detect_palms(rgb, tiles) if search else []
        tracked_boxes = [np.array(_cxcywh(h.box)) for h in self._tracked]
        frame_no = self.stats.frames
        if budgeted:
            self._rejected = [(b, f) for b, f in self._rejected if frame_no - f <= cfg.reject_memory]
        from_palm: list[Palm | None] = [None] * len(candidates)
        for palm, tiles_only in palms:
            if any(iou_cxcywh(palm.box, b[None])[0] > cfg.same_hand_iou for b in tracked_boxes):
                continue
            if budgeted and any(iou_cxcywh(palm.box, b[None])[0] > cfg.same_hand_iou for b, _ in self._rejected):
                continue  # turned down at this place lately
            candidates.append((rect_from_palm(palm), -1, False, tiles_only))
            from_palm.append(palm)
        hands: list[Hand] = []
        # this frame's faces, if the near-person check already ran the face model on it
        faces = self._faces[1] if self._faces is not None and self._faces[0] == frame_no else None
        moving: dict[int, tuple[float, float]] = {}  # new hand's id -> its palm's step (a lagged search)
        for (rect, track_id, tracked, tiles_only), palm in zip(candidates, from_palm, strict=True):
            if len(hands) >= cfg.max_hands:
                break
            landmarks, presence, right = self.landmarks_in(rgb, rect)
            if presence < cfg.min_presence and tracked and track_id in second_try:
                landmarks, presence, right = self.landmarks_in(rgb, second_try[track_id])
            turned_down = presence < cfg.min_presence
            if not turned_down and tiles_only and presence < cfg.min_presence_tile:
                if self.face_session is None or presence < cfg.min_presence_tile_off_face:
                    turned_down = True
                else:
                    faces = self.detect_faces(rgb) if faces is None else faces  # once per frame, only when needed
                    turned_down = not self._off_face(landmark_box(landmarks), faces)
            if turned_down:
                if budgeted and palm is not None and cfg.reject_memory:
                    self._rejected.append((palm.box, frame_no))
                continue
            hand = Hand(landmarks, presence, "right" if right >= 0.5 else "left", max(right, 1 - right),
                        rect, track_id if track_id >= 0 else next(self._ids), tracked, (width, height))
            box = np.array(_cxcywh(hand.box))
            if any(iou_cxcywh(box, np.array(_cxcywh(o.box))[None])[0] > cfg.same_hand_iou for o in hands):
                continue  # two squares converged on one hand
            hands.append(hand)
            if palm is not None and palm.step != (0.0, 0.0):
                moving[hand.track_id] = palm.step
        lost = [h for h in self._tracked if all(h.track_id != o.track_id for o in hands)]
        if budgeted and self._tracked and not lost and self._budget.cut_at == frame_no:
            self._budget.scene_looks = 0  # the same hands in a changed picture (a held photo of the hand): no new scene
            self._near_cut = -2
        before, self._before = self._before, {h.track_id: h.box for h in self._tracked}
        for track_id, (dx, dy) in moving.items():  # a hand found moving keeps going: look ahead next frame
            x, y, w, h = next(o.box for o in hands if o.track_id == track_id)
            self._before[track_id] = (x - dx, y - dy, w, h)
        self._tracked = hands
        if lost:
            self._next_tile = 0  # a hand was lost: look for it (or the next one) from the middle again
            side = round(cfg.tile_fraction * max(height, width))
            self._budget.restart([around(h.box, rgb.shape, side, step=box_step(before.get(h.track_id), h.box))
                                  for h in lost], frame_no)
            if budgeted and cfg.search_lag > 0:
                self._budgeted_search(rgb, grid, in_frame=False)  # beside the loop: joins the next frame
        if self._deferred is not None:  # the search beside the loop starts once this frame's own runs are done
            due, _, picture, started = self._pending
            self._pending = (due, self._executor.submit(self._palms_of, picture, self._deferred), picture, started)
            self._deferred = None
        return hands

    # ------------------------------------------------------------ live budget
    def _due_palms(self, rgb: np.ndarray) -> list[tuple[Palm, bool]]:
        """The palms of the search started ``search_lag`` frames ago (waits for it only if it is due),
        each moved to where its picture went since (:func:`lag_shift`): a hand in a swipe at 15 frames/s
        moves 45-80 px a frame, and the landmark model, run where the palm was, turned it down frame after
        frame (the pixel check's lost swipes: palms found on 3 frames running, no hand tracked)."""
        if self._pending is None or self._pending[0] > self.stats.frames:
            return []
        _, search, searched, started = self._pending
        if not self.config.search_wait and not search.done():
            return []  # a camera's frame does not wait: the palms join the first frame after the search
        palms = search.result()
        self._pending = None
        if self._budget.cut_at > started:
            return []  # searched in a picture that is gone (a new scene since): its palms are not here
        moved = []
        for palm, tiles_only in palms:
            dx, dy = lag_shift(searched, rgb, palm.box)
            if dx or dy:
                shift, frames = np.array([dx, dy]), max(self.stats.frames - started, 1)
                palm = replace(palm, box=np.concatenate([palm.box[:2] + shift, palm.box[2:]]),
                               keypoints=palm.keypoints + shift, step=(dx / frames, dy / frames))
            moved.append((palm, tiles_only))
        return moved

    def _budgeted_search(self, rgb: np.ndarray, grid: list[tuple[int, int, int]],
                         in_frame: bool = True) -> list[tuple[Palm, bool]]:
        """The live palm search under the budget (:mod:`rnn_jax.hands.budget`): one region a frame
        (up to ``scene_looks_per_frame`` while a new scene's looks last), paid from one bucket that
        earns ``idle_palm_rate`` on every frame with a hand missing (none tracked, or fewer than
        ``max_hands``); its palms now (``search_lag`` 0, a new scene's first frame) or started on the
        worker thread (returns []). ``in_frame`` False: the call after a hand was lost this frame."""
        cfg, frame, budget = self.config, self.stats.frames, self._budget
        missing = len(self._tracked) < cfg.max_hands
        if in_frame and missing:
            budget.earn(cfg.idle_palm_rate)
        if not missing or self._pending is not None:
            return []
        # a new scene's looks: also while a hand is tracked (new_scene_looks)? On the new scene's own frame
        # not while hands are tracked: find() drops them if every tracked hand carries over
        scene = (cfg.new_scene_looks or not self._tracked) and not (in_frame and budget.cut_at == frame
                                                                   and self._tracked)
        areas: list[tuple[int, int, int] | None] = []
        while len(areas) < (cfg.scene_looks_per_frame if scene and budget.scene_looks > 0 else 1):
            look = budget.plan(self._small, grid, frame, scene)
            if look is None:
                break
            areas.append(look[1])
        if not areas:
            return []
        if cfg.search_lag == 0 or (cfg.search_wait and in_frame and budget.cut_at == frame):
            return self._palms_of(rgb, areas)  # (a new scene's first looks are taken on its frame)
        now: list[tuple[Palm, bool]] = []
        if in_frame and budget.cut_at == frame:  # frames never wait: only the first look on the frame itself
            now, areas = self._palms_of(rgb, areas[:1]), areas[1:]
            if not areas:
                return now
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, "palm-search", initializer=_lower_priority)
        picture = rgb.copy()
        self._deferred = areas  # submitted at the end of find(): not beside this frame's landmark runs
        self._pending = (frame + cfg.search_lag, None, picture, frame)
        return now

    def _see(self, rgb: np.ndarray, grid: list[tuple[int, int, int]]) -> None:
        """Once per frame, before the palms of a search beside the loop join: this frame's motion
        picture, and whether it is a new scene (with a person near the camera: its whole frame first)."""
        budget, frame = self._budget, self.stats.frames
        self._small = motion_image(rgb)
        if budget.see(self._small, frame, 1 + len(grid)) and self._person_near(rgb):
            budget.scene_looks, self._near_cut = 1, frame  # the whole frame first, alone
        elif self._near_cut == frame - 1 and self._tracked:
            budget.scene_looks = len(grid)  # it found a hand: the tiles look for the other one

    def _person_near(self, rgb: np.ndarray) -> bool:
        """Is a face at least ``near_face`` of the frame's long side in view (see FinderConfig)?"""
        if self.config.near_face is None or self.face_session is None:
            return False
        limit = self.config.near_face * max(rgb.shape[:2])
        self._faces = (self.stats.frames, self.detect_faces(rgb))  # the face check of this frame reuses them
        return any(float(face[2]) >= limit for face in self._faces[1])

    def _palms_of(self, rgb: np.ndarray, areas: list[tuple[int, int, int] | None]) -> list[tuple[Palm, bool]]:
        """Palms in the whole frame (area None) and in tiles (marked tile-only); a tile's palm that the
        whole frame saw in the same search is dropped, as in :meth:`detect_palms`."""
        cfg = self.config
        whole, closer = [], []
        for area in areas:
            if area is None:
                whole += self._palms_in(rgb, 0, 0)
            else:
                x, y, side = area
                closer += self._palms_in(rgb[y : y + side, x : x + side], x, y)
        seen = [b for _, b, _ in whole]
        closer = [c for c in closer if not seen or not (iou_cxcywh(c[1], np.stack(seen)) > cfg.nms_iou).any()]
        return ([(palm, False) for palm in weighted_nms(whole, cfg.nms_iou, max_out=cfg.max_hands)]
                + [(palm, True) for palm in weighted_nms(closer, cfg.nms_iou, max_out=cfg.max_hands)])


LAG_TEMPLATE = 1.5  # lag_shift's template: this times the palm box (the palm and the base of its fingers)
LAG_REACH = 1.5  # ... looked for this many template sides around where it was
LAG_MIN_MATCH = 0.6  # normalised correlation below this: no shift (the palm's picture is not clearly there)


def lag_shift(then_rgb: np.ndarray, now_rgb: np.ndarray, box: np.ndarray) -> tuple[float, float]:
    """Where the picture around a palm found on ``then_rgb`` went in ``now_rgb`` (pixels; (0, 0) when
    it did not move or cannot be found): template matching on half-resolution grey, ~0.2 ms. Why: the
    palm search beside the loop finds a palm on one frame and the landmark model confirms it on the
    next; for a hand in a swipe that is 45-80 px later at 15 frames/s."""
    if then_rgb.shape != now_rgb.shape:
        return (0.0, 0.0)
    h, w = now_rgb.shape[:2]
    cx, cy, bw, bh = (float(v) for v in box)
    side = LAG_TEMPLATE * max(bw, bh)
    reach = LAG_REACH * side
    tx0, ty0 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
    tx1, ty1 = int(min(cx + side / 2, w)), int(min(cy + side / 2, h))
    sx0, sy0 = int(max(tx0 - reach, 0)), int(max(ty0 - reach, 0))
    sx0, sy0 = sx0 + (tx0 - sx0) % 2, sy0 + (ty0 - sy0) % 2  # even offsets: the half-resolution grid lines up
    sx1, sy1 = int(min(tx1 + reach, w)), int(min(ty1 + reach, h))
    if tx1 - tx0 < 8 or ty1 - ty0 < 8:
        return (0.0, 0.0)

    def grey(rgb: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        part = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
        return cv2.resize(part, ((x1 - x0) // 2 or 1, (y1 - y0) // 2 or 1), interpolation=cv2.INTER_AREA)

    template = grey(then_rgb, tx0, ty0, tx1, ty1)
    search = grey(now_rgb, sx0, sy0, sx1, sy1)
    if search.shape[0] < template.shape[0] or search.shape[1] < template.shape[1] or template.std() < 1.0:
        return (0.0, 0.0)
    scores = cv2.matchTemplate(search, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, (bx, by) = cv2.minMaxLoc(scores)
    dx, dy = float(sx0 + 2 * bx - tx0), float(sy0 + 2 * by - ty0)
    if best < LAG_MIN_MATCH or max(abs(dx), abs(dy)) <= 2:  # (2 px: a half-resolution pixel, jitter)
        return (0.0, 0.0)
    return (dx, dy)


# a step over this share of the hand's square: look ahead first, else where it was first. 0.25 since
# the lagged palms move (9ec6685): on the pixel check's tune people 15 fps swipes fire as with 0.15
# (107/108) and 30 fps has 4 wrong events instead of 8; HaGRID val live 95.8% right instead of 95.6
AHEAD_FIRST = 0.25


def tracking_squares(rect: Rect, step: tuple[float, float]) -> tuple[Rect, Rect | None]:
    """The squares a tracked hand is looked for in, first and (if the first loses it) second: where
    it was, and moved by its last frame's step, where it will be if it keeps going. A hand in a
    swipe at 15 frames/s moves ~45 px a frame, a third of its square: looked for where it was, the
    landmark model loses it and the budgeted search finds it again only frames later (the pixel
    check at 15 fps fired 18 of 36 swipes that way, 35 with this). A big step is tried ahead first;
    a small one (a still hand's jitter: the hand on Megamind's glass) where it was first."""
    if step == (0.0, 0.0):
        return rect, None
    moved = replace(rect, cx=rect.cx + step[0], cy=rect.cy + step[1])
    if max(abs(step[0]), abs(step[1])) >= AHEAD_FIRST * rect.side:
        return moved, rect
    return rect, moved


def _lower_priority() -> None:
    """The search worker yields to the loop's thread on a busy core (Linux: per-thread nice)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not allowed: same priority, still correct
        pass


def _unit_nchw(image_rgb: np.ndarray) -> np.ndarray:
    """uint8 HWC picture -> the models' input: float32 in 0..1, NCHW, batch 1, contiguous."""
    return np.ascontiguousarray((image_rgb.astype(np.float32) * (1.0 / 255.0)).transpose(2, 0, 1)[None])


def _cxcywh(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x, y, w, h = box
    return (x + w / 2, y + h / 2, w, h)


def search_tiles(frame_shape: tuple[int, ...], grid: int, fraction: float) -> list[tuple[int, int, int]]:
    """(x, y, side) of the second-look tiles in search order: a grid x grid of squares ``fraction`` x
    the long side, spread evenly over the frame (overlapping), each clipped to the frame, the one
    nearest the frame's middle first (ties in reading order).

    Why middle first: a live search looks at a few tiles per frame in turn, so the order decides how
    soon a small hand is found; the subjects of HaGRID and of a webcam sit facing the camera. On
    HaGRID val photos held 12 frames (docs/hagrid.md) middle first, restarted when a hand is lost,
    showed the right gesture on 95.7% of frames against 94.6% in reading order, for the same palm
    runs per frame."""
    if grid <= 0 or fraction >= 1.0:
        return []
    h, w = frame_shape[:2]
    side = max(1, round(fraction * max(h, w)))
    xs = np.linspace(0, max(w - side, 0), grid).round().astype(int)
    ys = np.linspace(0, max(h - side, 0), grid).round().astype(int)
    tiles = [(int(x), int(y), side) for y in ys for x in xs]
    return sorted(tiles, key=lambda t: (t[0] + t[2] / 2 - w / 2) ** 2 + (t[1] + t[2] / 2 - h / 2) ** 2)


def find_hands_in_image(finder: HandFinder, image_rgb: np.ndarray, tiles: bool = True) -> list[Hand]:
    """Hands in one still picture (no tracking): palm search over the frame (and, with ``tiles``,
    every second-look tile), then landmarks. ``tiles=False`` for close-ups, where the hand is big."""
    finder.reset()
    hands = finder.find(image_rgb, colour="rgb", tiles="all" if tiles else "none")
    finder.reset()
    return hands

