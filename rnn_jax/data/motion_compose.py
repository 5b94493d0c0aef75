"""Dynamic gestures composed from **real hands of many people**, in continuous time (numpy only).

Each window is a gesture written as a function of time (seconds; the window ends at t = 0) and
then *sampled* at a frame rate drawn for that window (10-60 frames/s, with the interval jitter
and the skipped frames of a real camera), so one composed gesture is seen at every webcam rate.
The hand shapes are real: unit poses of real people's hands (the HaGRID sample's landmarks,
18 gestures, or ``keypoint.csv``), grouped by what a gesture is made with:

============  =================================================  ==========================
group         real HaGRID classes (thumb-index spread filter)     used for
============  =================================================  ==========================
open          palm, stop, four                                    swipes, the "drop" opening
one           one                                                 swipes, circles
two           peace, two_up                                       swipes
fist          fist                                                drag, drop (the grab)
L             one, mute, three2 with thumb-index spread >= 0.45   zoom (two hands), pinch zoom,
                                                                  tap, double tap (pinched)
any           all 18 gestures and no_gesture                      still, no_motion, partners
============  =================================================  ==========================

HaGRID v1 has no "L" class: its L-like hands are those with the thumb and index out (``one``,
``mute``, ``three2``) and a wide thumb-index spread. Pinches (tap, one-hand zoom) move the thumb
and index of a real L hand towards the point between their tips (:func:`pinch`); the "drop"
opening blends a real fist into a real open hand. Everything else about the hand (size, tilt,
path, speed profile, jitter, a second hand) is sampled; docs/motion.md lists the ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn_jax.hands.motion_features import MOTION_CLASSES

GROUPS = {"open": ("palm", "stop", "four"), "one": ("one",), "two": ("peace", "two_up"), "fist": ("fist",),
          "L": ("one", "mute", "three2")}
KEYPOINT_GROUPS = {"open": (0,), "one": (2,), "fist": (1,), "L": (2,)}  # keypoint.csv: 0 open, 1 close, 2 pointer
L_MIN_SPREAD = 0.45
SWIPE_DIRECTIONS = {"swipe_left": np.pi, "swipe_right": 0.0, "swipe_up": -np.pi / 2, "swipe_down": np.pi / 2}
FPS_RANGE = (10.0, 60.0)
OPEN_REACH = 1.95  # an open hand's (palm, stop) largest wrist-landmark distance / its palm length (HaGRID median)


def unit_poses(landmarks: np.ndarray, mirror_x: bool = True) -> np.ndarray:
    """Landmarks [N, 21, >=2] (pixels, y down) -> unit poses [N, 21, 2]: wrist at 0, size 1, in the
    user's view (x mirrored when ``mirror_x``: photos are not selfie views)."""
    rel = np.asarray(landmarks, np.float64)[..., :2] - np.asarray(landmarks, np.float64)[:, :1, :2]
    if mirror_x:
        rel[..., 0] *= -1
    size = np.sqrt((rel ** 2).sum(-1)).max(-1)
    return rel / np.maximum(size, 1e-9)[:, None, None]


def spread_of(poses: np.ndarray) -> np.ndarray:
    return np.linalg.norm(poses[..., 8, :] - poses[..., 4, :], axis=-1)


@dataclass(frozen=True)
class HandBank:
    """Real unit poses [N, 21, 2] and, per group (the table above), the indices of its hands."""

    poses: np.ndarray
    groups: dict[str, np.ndarray]

    @classmethod
    def from_named(cls, poses: np.ndarray, names: np.ndarray) -> HandBank:
        """Poses with their HaGRID class names."""
        names = np.asarray(names).astype(str)
        groups = {g: np.flatnonzero(np.isin(names, members)) for g, members in GROUPS.items()}
        groups["L"] = groups["L"][spread_of(poses[groups["L"]]) >= L_MIN_SPREAD]
        groups["any"] = np.arange(len(poses))
        return cls(poses, groups)

    @classmethod
    def from_keypoints(cls, poses: np.ndarray, kinds: np.ndarray) -> HandBank:
        """``keypoint.csv`` poses (0 open, 1 close, 2 pointer): no two-finger hands; L = pointers with
        the thumb out."""
        groups = {g: np.flatnonzero(np.isin(kinds, members)) for g, members in KEYPOINT_GROUPS.items()}
        groups["two"] = groups["open"]
        wide = groups["L"][spread_of(poses[groups["L"]]) >= L_MIN_SPREAD]
        groups["L"] = wide if len(wide) else groups["L"]
        groups["any"] = np.arange(len(poses))
        return cls(poses, groups)

    def pick(self, rng: np.random.Generator, group: str) -> np.ndarray:
        """A random real pose of ``group``, mirrored (the other hand) half the time, at its own reach:
        scaled so that its palm (wrist to middle knuckle) is an open hand's, so a fist is ~0.7 the size
        of an open hand as in a real picture (``Scene.size`` is an open hand's size)."""
        idx = self.groups[group] if len(self.groups[group]) else self.groups["any"]
        pose = self.poses[idx[rng.integers(len(idx))]].copy()
        if rng.random() < 0.5:
            pose[:, 0] *= -1
        return pose * reach(pose)


def reach(pose: np.ndarray) -> float:
    """A unit pose's size relative to an open hand with the same palm: (1 / palm length) / OPEN_REACH."""
    palm = float(np.linalg.norm(pose[9] - pose[0]))
    return float(np.clip(1.0 / max(palm, 1e-6) / OPEN_REACH, 0.5, 1.3))


def frame_times(rng: np.random.Generator, n: int, fps: float) -> np.ndarray:
    """n frame times (s) ending at 0, ``fps`` frames/s with a camera's interval jitter and, in some
    windows, skipped frames (an interval twice as long) or a hand lost for a few frames and found
    again (one interval 2-5 times as long: what the live runtime sees after it relinks a hand)."""
    step = np.clip(1.0 + rng.normal(0, 0.06, n - 1), 0.5, 1.6) / fps
    if rng.random() < 0.2:
        step[rng.integers(0, n - 1, size=int(rng.integers(1, 3)))] *= 2.0
    if rng.random() < 0.15:  # the finder lost the hand for 1-4 frames; the live runtime relinks it
        step[rng.integers(0, n - 1)] *= int(rng.integers(2, 6))
    return np.concatenate([-np.cumsum(step[::-1])[::-1], [0.0]])


def draw_fps(rng: np.random.Generator) -> float:
    """10-60 frames/s, log-uniform, with extra weight near the common 15 and 30."""
    if rng.random() < 0.4:
        return float(rng.choice([15.0, 30.0]) * rng.uniform(0.9, 1.1))
    return float(np.exp(rng.uniform(np.log(FPS_RANGE[0]), np.log(FPS_RANGE[1]))))


def ease(u: np.ndarray, k: float) -> np.ndarray:
    """Progress 0..1 -> position 0..1: a mix (k) of constant speed and a smooth bell-shaped speed."""
    u = np.clip(u, 0.0, 1.0)
    return k * u + (1 - k) * u * u * (3 - 2 * u)


def place(poses: np.ndarray, anchor: np.ndarray, size: np.ndarray | float, angle: float,
          anchor_point: int = 0) -> np.ndarray:
    """Unit poses [T, 21, 2] (or one [21, 2]) scaled to ``size`` [T], rotated by ``angle``, with
    landmark ``anchor_point`` at ``anchor`` [T, 2] -> [T, 21, 2]."""
    p = np.broadcast_to(poses, (len(anchor), 21, 2))
    c, s = np.cos(angle), np.sin(angle)
    rel = (p - p[:, :1]) @ np.array([[c, s], [-s, c]])
    rel = rel * np.broadcast_to(np.asarray(size, np.float64), (len(anchor),))[:, None, None]
    return anchor[:, None, :] + rel - rel[:, anchor_point:anchor_point + 1]


def pinch(pose: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Thumb and index moved towards the point between their tips: ``amount`` [T] in 0 (as the hand
    is) .. 1 (tips together) -> [T, 21, 2]."""
    t = np.asarray(amount, np.float64)[:, None]
    out = np.repeat(pose[None], len(t), 0)
    mid = (pose[4] + pose[8]) / 2
    for j, w in zip((2, 3, 4, 6, 7, 8), (0.3, 0.6, 1.0, 0.3, 0.6, 1.0)):
        out[:, j] = pose[j] + (mid - pose[j]) * w * t
    return out


@dataclass(frozen=True)
class Scene:
    """One window's sampled setting: frame times, frame aspect, the hand's start, size and tilt."""

    t: np.ndarray
    aspect: float
    start: np.ndarray
    size: float
    angle: float

    @property
    def n(self) -> int:
        return len(self.t)


class Composer:
    """Windows of any class of :data:`MOTION_CLASSES` from a :class:`HandBank` (module docstring)."""

    def __init__(self, bank: HandBank, frames: int) -> None:
        self.bank, self.frames = bank, frames

    # ------------------------------------------------------------------ public
    def compose(self, label: str, rng: np.random.Generator, fps: float | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One window whose end shows ``label``: (hand [F, 21, 2], partner [F, 21, 2] (zeros = no
        second hand), frame times [F] (s, ending at 0)), user's view, units of the short side."""
        fps = draw_fps(rng) if fps is None else fps
        aspect = float(rng.choice([4 / 3, 16 / 9]))
        sc = Scene(frame_times(rng, self.frames, fps), aspect,
                   np.array([rng.uniform(0.45, aspect - 0.45), rng.uniform(0.35, 0.75)]),
                   float(rng.uniform(0.12, 0.42)), float(rng.normal(0, 0.25)))
        hand, partner = getattr(self, "_" + label.split("_")[0])(label, sc, rng)
        if partner is None and rng.random() < (0.25 if label not in ("still", "no_motion") else 0.35):
            partner = self._idle_partner(sc, rng)
        if rng.random() < 0.3:  # the finder mis-fits the fingers on a frame or three
            hand = self._flicker(hand, sc, rng, int(rng.integers(1, 4)))
        hand, partner = self._noise(hand, sc, rng), None if partner is None else self._noise(partner, sc, rng)
        hand = self._glitches(hand, rng)
        if partner is not None and rng.random() < 0.2:  # the finder found the other hand k frames ago
            partner[: sc.n - int(rng.integers(1, sc.n))] = 0.0
        partner = np.zeros_like(hand) if partner is None else np.where(
            (np.abs(hand).sum((1, 2)) > 0)[:, None, None], partner, 0.0)
        return hand, partner, sc.t

    # ------------------------------------------------------------------ timing
    @staticmethod
    def _timing(sc: Scene, rng: np.random.Generator, lo: float, hi: float) -> tuple[float, float]:
        """A gesture of duration in [lo, hi] s that ended 0-0.12 s before the window's end (80%) or is
        75%+ done at it -> (start, duration)."""
        dur = float(rng.uniform(lo, hi))
        end = -float(rng.uniform(0, 0.12)) if rng.random() < 0.8 else float(rng.uniform(0, 0.25 * dur))
        return end - dur, dur

    @staticmethod
    def _tremor(sc: Scene, rng: np.random.Generator, scale: float = 0.004) -> np.ndarray:
        """A held hand's slow wander [F, 2] (random walk in time)."""
        dt = np.diff(sc.t, prepend=sc.t[0] - 1 / 30)
        return np.cumsum(rng.normal(0, scale, (sc.n, 2)) * np.sqrt(dt / (1 / 30))[:, None], 0)

    # ------------------------------------------------------------------ classes
    def _swipe(self, label: str, sc: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        t0, dur = self._timing(sc, rng, 0.15, 0.6)
        pose = self.bank.pick(rng, str(rng.choice(["open", "one", "two"])))
        path = self._stroke(sc, rng, SWIPE_DIRECTIONS[label] + rng.normal(0, 0.18), rng.uniform(0.25, 0.8), t0, dur)
        hand = place(pose, path, sc.size * self._zoom_drift(sc, rng), sc.angle)
        partner = None
        if rng.random() < 0.1:  # both hands swipe the same way: still a swipe, not a zoom
            other = place(self.bank.pick(rng, "open"), path + self._offset(rng), sc.size, -sc.angle)
            partner = other
        return hand, partner

    def _stroke(self, sc: Scene, rng: np.random.Generator, direction: float, dist: float, t0: float,
                dur: float) -> np.ndarray:
        vec = dist * np.array([np.cos(direction), np.sin(direction)])
        bow = rng.normal(0, 0.08) * np.array([-vec[1], vec[0]])
        e = ease((sc.t - t0) / dur, rng.uniform(0, 1))
        return sc.start - vec / 2 + e[:, None] * vec + np.sin(np.pi * e)[:, None] * bow + self._tremor(sc, rng)

    def _zoom(self, label: str, sc: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        t0, dur = self._timing(sc, rng, 0.25, 0.9)
        e = ease((sc.t - t0) / dur, rng.uniform(0, 1))
        if rng.random() < 0.5:  # one hand: the thumb-index spread opens (in) or closes (out)
            a, b = rng.uniform(0.75, 1.0), rng.uniform(0.0, 0.2)
            amount = a + (b - a) * e if label == "zoom_in" else b + (a - b) * e
            anchor = sc.start + self._tremor(sc, rng)
            return place(pinch(self.bank.pick(rng, "L"), amount), anchor, sc.size, sc.angle), None
        # two L hands moving apart (in) or together (out) along an axis, not always equally
        near, far = rng.uniform(0.15, 0.4), 0.0
        far = near + rng.uniform(0.25, 0.7)
        d = near + (far - near) * e if label == "zoom_in" else far + (near - far) * e
        axis = rng.normal(0, 0.35)
        u = np.array([np.cos(axis), np.sin(axis)])
        share = rng.uniform(0.25, 0.75)
        centre = sc.start + self._tremor(sc, rng)
        size = sc.size * rng.uniform(0.7, 1.0)
        pose = self.bank.pick(rng, "L")
        mirrored = pose * np.array([-1.0, 1.0])
        offset = (d - (near + far) / 2)[:, None] * u
        right = place(pose, centre + share * offset + u * (near + far) / 4, size, sc.angle)
        left = place(mirrored, centre - (1 - share) * offset - u * (near + far) / 4, size, -sc.angle)
        return (right, left) if rng.random() < 0.5 else (left, right)

    def _drag(self, label: str, sc: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        dur = float(rng.uniform(0.4, 1.5))
        t0 = -dur * rng.uniform(0.35, 0.9)  # the window ends while the fist moves
        path = self._stroke(sc, rng, rng.uniform(-np.pi, np.pi), rng.uniform(0.2, 0.7), t0, dur)
        return place(self.bank.pick(rng, "fist"), path, sc.size, sc.angle), None

    def _drop(self, label: str, sc: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        opening = float(rng.uniform(0.1, 0.35))
        t_open = -float(rng.uniform(0, 0.15)) - opening  # the hand opens, ending 0-0.15 s before the end
        dur = float(rng.uniform(0.3, 1.0))
        t0 = t_open - float(rng.uniform(0, 0.3)) - dur  # after a move of the fist
        path = self._stroke(sc, rng, rng.uniform(-np.pi, np.pi), rng.uniform(0.2, 0.6), t0, dur)
        fist, hand = self.bank.pick(rng, "fist"), self.bank.pick(rng, "open")
        s = ease((sc.t - t_open) / opening, 0.5)[:, None, None]
        return place(fist * (1 - s) + hand * s, path, sc.size, sc.angle), None

    def _pinches(self, sc: Scene, rng: np.random.Generator, starts: list[float], durs: list[float]) -> np.ndarray:
        amount = np.zeros(sc.n)
        for t0, dur in zip(starts, durs):
            u = np.clip((sc.t - t0) / dur, 0, 1)
            amount = np.maximum(amount, np.sin(np.pi * u) * rng.uniform(0.8, 1.0))
        anchor = sc.start + self._tremor(sc, rng)
        return place(pinch(self.bank.pick(rng, "L"), amount), anchor, sc.size, sc.angle)

    def _tap(self, label: str, sc: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        dur = float(rng.uniform(0.12, 0.4))
        end = -float(rng.uniform(0.22, 0.5))  # a tap is a tap once no second one followed
        return self._pinches(sc, rng, [end - dur], [dur]), None

    def _double(self, label: str, sc: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        d1, d2, gap = rng.uniform(0.1, 0.3), rng.uniform(0.1, 0.3), rng.uniform(0.04, 0.18)
        end = -float(rng.uniform(0, 0.15))
        return self._pinches(sc, rng, [end - d2 - gap - d1, end - d2], [d1, d2]), None

    def _circle(self, label: str, sc: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        turns, period = rng.uniform(0.9, 1.6), rng.uniform(0.45, 1.3)
        t0, dur = self._timing(sc, rng, turns * period, turns * period)
        radius, squash = rng.uniform(0.05, 0.18), rng.uniform(0.7, 1.3)
        sense = 1.0 if label == "circle_cw" else -1.0  # y down: angle up = clockwise on screen
        theta = rng.uniform(0, 2 * np.pi) + sense * 2 * np.pi * turns * ease((sc.t - t0) / dur, rng.uniform(0.5, 1))
        path = sc.start + radius * np.stack([np.cos(theta), squash * np.sin(theta)], -1) + self._tremor(sc, rng)
        return place(self.bank.pick(rng, str(rng.choice(["one", "one", "open"]))), path, sc.size, sc.angle, 8), None

    def _still(self, label: str, sc: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        return place(self.bank.pick(rng, "any"), sc.start + self._tremor(sc, rng, 0.003), sc.size, sc.angle), None

    def _no(self, label: str, sc: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """no_motion: slow drift, short small moves, pose changes, a slow partial pinch, any gesture gone
        0.25-1.5 s ago (its residue scrolling out of the window: a third of these windows), a pinch just reopened (a tap not yet told from a double tap), a circle just begun,
        a resting hand whose finger landmarks flicker, two hands drifting together."""
        kind = 4 if rng.random() < 0.3 else int(rng.integers(0, 9))  # residues: a third of no_motion
        pose = self.bank.pick(rng, "any")
        if kind == 0:  # slow drift in any direction (well below a swipe's speed)
            a = rng.uniform(-np.pi, np.pi)
            vel = rng.uniform(0.02, 0.18) * np.array([np.cos(a), np.sin(a)])
            return place(pose, sc.start + sc.t[:, None] * vel + self._tremor(sc, rng), sc.size, sc.angle), None
        if kind == 1:  # a small, short move
            dur = rng.uniform(0.1, 0.3)
            path = self._stroke(sc, rng, rng.uniform(-np.pi, np.pi), rng.uniform(0.02, 0.1),
                                rng.uniform(sc.t[0], -dur), dur)
            return place(pose, path, sc.size, sc.angle), None
        if kind == 2:  # the pose changes, the hand turns a little
            other = self.bank.pick(rng, "any")
            dur = rng.uniform(0.1, 0.4)
            s = ease((sc.t - rng.uniform(sc.t[0], 0)) / dur, 0.5)
            hands = [place(pose * (1 - w) + other * w, sc.start[None] + self._tremor(sc, rng)[i:i + 1], sc.size,
                           sc.angle + w * 0.3)[0] for i, w in enumerate(s)]
            return np.stack(hands), None
        if kind == 3:  # a slow, partial pinch
            amount = np.clip(np.linspace(0, rng.uniform(-0.3, 0.3), sc.n) + rng.uniform(0, 0.5), 0, 1)
            return place(pinch(self.bank.pick(rng, "L"), amount), sc.start + self._tremor(sc, rng), sc.size,
                         sc.angle), None
        if kind == 4:  # a gesture that ended long ago (its residue is not a new gesture)
            label = str(rng.choice([c for c in MOTION_CLASSES if c not in ("still", "no_motion")]))
            shift = float(rng.uniform(0.25, 1.5))
            late = Scene(sc.t - shift, sc.aspect, sc.start, sc.size, sc.angle)
            hand, partner = getattr(self, "_" + label.split("_")[0])(label, late, rng)
            gone = sc.t > -shift  # after the gesture: the hand rests where it was
            last = int(np.searchsorted(sc.t, -shift))
            hand[gone] = hand[min(last, sc.n - 1)]
            if partner is not None:
                partner[gone] = partner[min(last, sc.n - 1)]
            return hand, partner
        if kind == 5:  # a pinch that just reopened: a tap is not yet a tap
            dur = float(rng.uniform(0.12, 0.3))
            return self._pinches(sc, rng, [-float(rng.uniform(0, 0.12)) - dur], [dur]), None
        if kind == 8:  # a resting hand whose fingers the finder keeps re-fitting (holding a glass)
            hand = place(pose, sc.start + self._tremor(sc, rng, 0.003), sc.size, sc.angle)
            return self._flicker(hand, sc, rng, int(rng.integers(3, max(4, sc.n // 3)))), None
        if kind == 7:  # a circle just begun (15-55% of it): an arc is not yet a circle, nor a swipe
            label = str(rng.choice(["circle_cw", "circle_ccw"]))
            turns, period = rng.uniform(0.9, 1.6), rng.uniform(0.45, 1.3)
            dur = turns * period
            start = -dur * rng.uniform(0.15, 0.55)
            radius, squash = rng.uniform(0.05, 0.18), rng.uniform(0.7, 1.3)
            sense = 1.0 if label == "circle_cw" else -1.0
            theta = rng.uniform(0, 2 * np.pi) + sense * 2 * np.pi * turns * ease((sc.t - start) / dur, 1.0)
            path = sc.start + radius * np.stack([np.cos(theta), squash * np.sin(theta)], -1) + self._tremor(sc, rng)
            return place(self.bank.pick(rng, "one"), path, sc.size, sc.angle, 8), None
        # two hands drifting the same way (not apart / together)
        a = rng.uniform(-np.pi, np.pi)
        vel = rng.uniform(0.02, 0.4) * np.array([np.cos(a), np.sin(a)])
        path = sc.start + sc.t[:, None] * vel + self._tremor(sc, rng)
        return place(pose, path, sc.size, sc.angle), place(self.bank.pick(rng, "any"), path + self._offset(rng),
                                                           sc.size, -sc.angle)

    # ------------------------------------------------------------------ extras
    @staticmethod
    def _offset(rng: np.random.Generator) -> np.ndarray:
        a = rng.normal(0, 0.4) + (np.pi if rng.random() < 0.5 else 0.0)
        return rng.uniform(0.3, 0.9) * np.array([np.cos(a), np.sin(a)])

    def _zoom_drift(self, sc: Scene, rng: np.random.Generator) -> np.ndarray:
        """The hand's size over the window: towards / away from the camera by up to 15%."""
        return 1.0 + np.linspace(0, rng.uniform(-0.15, 0.15), sc.n)

    def _idle_partner(self, sc: Scene, rng: np.random.Generator) -> np.ndarray:
        anchor = sc.start + self._offset(rng) + self._tremor(sc, rng, 0.003)
        return place(self.bank.pick(rng, "any"), anchor, sc.size * rng.uniform(0.8, 1.2), -sc.angle)

    @staticmethod
    def _flicker(view: np.ndarray, sc: Scene, rng: np.random.Generator, frames: int) -> np.ndarray:
        """On ``frames`` random frames, some fingers' joints jump (more at the tip): a real finder's
        landmarks on a hand holding something, or half hidden, re-fit differently from frame to frame."""
        out = view.copy()
        for i in rng.choice(len(out), size=min(frames, len(out)), replace=False):
            for finger in range(5):
                if rng.random() < 0.5:
                    jump = rng.normal(0, 0.12 * sc.size, 2)
                    joints = 1 + 4 * finger + np.arange(4)
                    out[i, joints] += np.array([0.25, 0.5, 0.75, 1.0])[:, None] * jump
        return out

    @staticmethod
    def _noise(view: np.ndarray, sc: Scene, rng: np.random.Generator) -> np.ndarray:
        """Landmark jitter of a real finder (per landmark and for the whole hand), scaled to the hand."""
        sigma = rng.uniform(0.002, 0.015) * sc.size
        return view + rng.normal(0, sigma, view.shape) + rng.normal(0, sigma, (len(view), 1, 2))

    @staticmethod
    def _glitches(view: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = view.copy()
        if rng.random() < 0.2:  # the finder repeats the last landmarks for a frame or two
            for i in rng.choice(np.arange(1, len(out)), size=int(rng.integers(1, 3)), replace=False):
                out[i] = out[i - 1]
        if rng.random() < 0.15:  # the hand was found k frames before the window's end
            k = int(rng.integers(len(out) // 2, len(out)))
            out[: len(out) - k] = 0.0
        return out


def compose_windows(bank: HandBank, per_class: int, seed: int, frames: int, fps: float | None = None,
                    classes: tuple[str, ...] = MOTION_CLASSES) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``per_class`` windows of each class -> (hands [N, F, 21, 2], partners, times [N, F], labels [N]);
    ``fps`` None draws each window's rate (10-60 frames/s)."""
    rng = np.random.default_rng(seed)
    composer = Composer(bank, frames)
    hands, partners, times, labels = [], [], [], []
    for c, name in enumerate(classes):
        for _ in range(per_class):
            h, p, t = composer.compose(name, rng, fps)
            hands.append(h)
            partners.append(p)
            times.append(t)
            labels.append(MOTION_CLASSES.index(name) if name in MOTION_CLASSES else c)
    return np.stack(hands), np.stack(partners), np.stack(times), np.asarray(labels, np.int32)
