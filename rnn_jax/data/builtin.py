"""A small drawn hand-gesture data set, so the project trains and demos with no download.

Hands are drawn with OpenCV (a rounded palm, fingers as capsules, a wrist) in a handful of
HaGRID gestures, with random pose, size, position, handedness, skin tone, background,
blur and noise. Drawing happens at 2x and is reduced with INTER_AREA (cheap antialiasing).
It is a demo and a smoke test, not a substitute for HaGRID: ``notes["demo"]`` says so.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from rnn_jax.data.types import Dataset, Split
from rnn_jax.errors import DataError

HAND_GESTURES = ("fist", "like", "ok", "one", "palm", "peace")  # HaGRID's own label strings
# HaGRID's label for "no gesture here": scenes without a hand (a live model must be able to say so)
NO_GESTURE = "no_gesture"
GESTURES = (*HAND_GESTURES, NO_GESTURE)
SPLIT_FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}
DEMO_NOTE = ("built-in demo data: drawn hands in 6 HaGRID gestures plus no_gesture scenes, made on the fly so that "
             "everything runs without a download; for a real model get HaGRID with "
             "`python tools/download_hagrid.py` and train on it")

# Skin tones (RGB), light to dark; each image jitters one of them.
_SKIN = np.array([[255, 224, 196], [241, 194, 160], [224, 172, 132], [198, 134, 98],
                  [161, 102, 68], [120, 74, 48], [88, 54, 36]], dtype=np.float32)

# Finger bases on the palm top (hand units: palm ~1 wide, fingers point to -y) and lengths.
_FINGER_X = (-0.33, -0.11, 0.11, 0.33)  # index, middle, ring, pinky
_FINGER_LEN = (0.78, 0.88, 0.8, 0.62)
_FINGER_W = 0.21
_PALM_TOP = -0.42


def _capsule(a: tuple[float, float], b: tuple[float, float], w: float) -> tuple:
    return ("capsule", a, b, w)


def _finger(i: int, extended: bool, angle_deg: float = 0.0) -> tuple:
    """An extended finger, or a short knuckle stub when curled."""
    x = _FINGER_X[i]
    length = _FINGER_LEN[i] if extended else 0.16
    t = math.radians(angle_deg)
    base = (x, _PALM_TOP + 0.12)
    return _capsule(base, (x + length * math.sin(t), base[1] - length * math.cos(t)), _FINGER_W)


def _thumb(pose: str) -> tuple:
    if pose == "out":  # extended sideways-up
        return _capsule((-0.42, 0.12), (-0.95, -0.38), 0.24)
    if pose == "ok":  # reaching up to meet the index tip
        return _capsule((-0.42, 0.12), (-0.62, -0.5), 0.24)
    if pose == "up":  # thumb straight up (like)
        return _capsule((-0.25, -0.15), (-0.25, -1.05), 0.26)
    return _capsule((-0.45, 0.15), (0.08, -0.12), 0.22)  # folded across the palm


def _shape(gesture: str, rng: np.random.Generator) -> list[tuple]:
    """Primitives of one hand in hand units, drawn in order (later ones on top)."""
    spread = rng.uniform(4, 12)
    wrist = _capsule((0.0, 0.35), (rng.uniform(-0.1, 0.1), 1.4), 0.62)
    palm = ("palm", 0.5, 0.5)
    if gesture == "palm":
        fingers = [_finger(i, True, (i - 1.5) * spread) for i in range(4)]
        return [wrist, _thumb("out"), palm, *fingers]
    if gesture == "fist":
        return [wrist, palm, *[_finger(i, False) for i in range(4)], _thumb("folded")]
    if gesture == "one":
        return [wrist, palm, *[_finger(i, i == 0, rng.uniform(-5, 5)) for i in range(4)],
                _thumb("folded")]
    if gesture == "peace":
        v = rng.uniform(8, 16)
        return [wrist, palm, _finger(0, True, -v), _finger(1, True, v),
                _finger(2, False), _finger(3, False), _thumb("folded")]
    if gesture == "like":  # a sideways fist, curled fingers stacked on the right, thumb up
        stubs = [_capsule((0.2, y), (0.52, y), _FINGER_W) for y in (-0.27, -0.08, 0.11, 0.3)]
        return [_capsule((0.05, 0.35), (0.1, 1.4), 0.58), ("palm", 0.42, 0.5), *stubs, _thumb("up")]
    if gesture == "ok":  # thumb and index make a ring; middle, ring, pinky up
        ring = ("ring", (-0.46, -0.74), 0.28, 0.17)
        return [wrist, _thumb("ok"), palm, ring,
                *[_finger(i, True, (i - 2) * spread) for i in (1, 2, 3)]]
    raise DataError(f"unknown built-in gesture {gesture!r}; choose from {', '.join(GESTURES)}")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    kind = rng.integers(4)
    base = rng.uniform(0, 255, size=3)
    if kind == 0:  # solid
        img = np.broadcast_to(base, (size, size, 3)).astype(np.float32)
    elif kind == 1:  # linear gradient
        other = rng.uniform(0, 255, size=3)
        t = np.linspace(0, 1, size, dtype=np.float32)
        ramp = t[:, None] if rng.random() < 0.5 else t[None, :]
        ramp = np.broadcast_to(ramp, (size, size))[..., None]
        img = base * (1 - ramp) + other * ramp
    elif kind == 2:  # smooth noise
        low = rng.uniform(0, 255, size=(3, 3, 3)).astype(np.float32)
        img = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
    else:  # clutter: random shapes, some of them skin-coloured
        img = np.broadcast_to(base, (size, size, 3)).astype(np.float32).copy()
        for _ in range(rng.integers(2, 6)):
            colour = (_SKIN[rng.integers(len(_SKIN))] if rng.random() < 0.25
                      else rng.uniform(0, 255, size=3)).tolist()
            p = rng.integers(0, size, size=4).tolist()
            shape = rng.integers(3)
            if shape == 0:
                cv2.rectangle(img, (p[0], p[1]), (p[2], p[3]), colour, -1)
            elif shape == 1:
                cv2.circle(img, (p[0], p[1]), int(rng.integers(2, size // 4)), colour, -1)
            else:
                cv2.line(img, (p[0], p[1]), (p[2], p[3]), colour, int(rng.integers(1, 4)))
    # tone the background down (half-way to its grey) so the hand, not the backdrop, is the signal
    grey = img.mean(axis=2, keepdims=True)
    img = 0.5 * img + 0.5 * grey
    return np.ascontiguousarray(np.clip(img, 0, 255), dtype=np.float32)


def _draw_hand(img: np.ndarray, prims: list[tuple], rng: np.random.Generator) -> None:
    """Draw primitives with a random similarity transform, a darker outline, then the skin."""
    size = img.shape[0]
    scale = size * rng.uniform(0.27, 0.34)  # pixels per hand unit: the hand fills most of the crop
    angle = math.radians(rng.uniform(-20, 20))
    mirror = -1.0 if rng.random() < 0.5 else 1.0
    cx = size / 2 + rng.uniform(-0.12, 0.12) * size
    cy = size / 2 + rng.uniform(-0.05, 0.15) * size  # fingers point up: keep them in frame
    ca, sa = math.cos(angle), math.sin(angle)
    skin = _SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.85, 1.1) + rng.normal(0, 6, 3)
    skin = np.clip(skin, 0, 255)
    edge = (skin * rng.uniform(0.45, 0.7)).tolist()
    skin = skin.tolist()
    shift = 4  # sub-pixel precision for cv2 drawing
    k = 1 << shift

    def pt(x: float, y: float) -> tuple[int, int]:
        x *= mirror
        return (int((cx + scale * (ca * x - sa * y)) * k), int((cy + scale * (sa * x + ca * y)) * k))

    def draw(prim: tuple, colour: list, grow: float) -> None:
        kind = prim[0]
        if kind == "capsule":
            _, a, b, w = prim
            thick = max(1, int(round(scale * w + grow)))
            cv2.line(img, pt(*a), pt(*b), colour, thick, cv2.LINE_AA, shift)
        elif kind == "palm":  # a superellipse: a rounded square
            _, hw, hh = prim
            t = np.linspace(0, 2 * math.pi, 40, endpoint=False)
            c, s = np.cos(t), np.sin(t)
            g = grow / (2 * scale)
            xs = (hw + g) * np.sign(c) * np.abs(c) ** 0.5
            ys = (hh + g) * np.sign(s) * np.abs(s) ** 0.5
            poly = np.array([pt(x, y) for x, y in zip(xs, ys, strict=True)], dtype=np.int32)
            cv2.fillConvexPoly(img, poly, colour, cv2.LINE_AA, shift)
        elif kind == "ring":
            _, centre, radius, w = prim
            thick = max(1, int(round(scale * w + grow)))
            cv2.circle(img, pt(*centre), int(scale * radius * k), colour, thick, cv2.LINE_AA, shift)

    for prim in prims:  # outline pass then fill pass, per primitive, so overlaps stay visible
        draw(prim, edge, 2.0)
        draw(prim, skin, 0.0)


def _distractor(img: np.ndarray, rng: np.random.Generator) -> None:
    """Something that is not a gesture: a skin-coloured blob (a face, an arm) or nothing at all."""
    if rng.random() < 0.3:
        return
    size = img.shape[0]
    skin = np.clip(_SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.85, 1.1), 0, 255).tolist()
    centre = tuple(int(c) for c in rng.uniform(0.2, 0.8, size=2) * size)
    axes = tuple(int(a) for a in rng.uniform(0.12, 0.35, size=2) * size)
    cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, skin, -1, cv2.LINE_AA)
    if rng.random() < 0.5:  # eyes and mouth: a face, as a webcam sees most of the time
        for dx in (-0.35, 0.35):
            eye = (int(centre[0] + dx * axes[0]), int(centre[1] - 0.2 * axes[1]))
            cv2.circle(img, eye, max(1, axes[0] // 8), (40, 30, 30), -1, cv2.LINE_AA)
        cv2.ellipse(img, (centre[0], int(centre[1] + 0.4 * axes[1])), (max(1, axes[0] // 3), max(1, axes[1] // 8)),
                    0, 0, 180, (90, 40, 40), max(1, size // 40), cv2.LINE_AA)


def _render(gesture: str, size: int, rng: np.random.Generator) -> np.ndarray:
    big = 2 * size
    img = _background(rng, big)
    if gesture == NO_GESTURE:
        _distractor(img, rng)
    else:
        _draw_hand(img, _shape(gesture, rng), rng)
    sigma = rng.uniform(0.0, 1.4)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    img = img * rng.uniform(0.7, 1.2) + rng.uniform(-25, 25)  # exposure
    img = img + rng.normal(0, rng.uniform(0, 10), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_builtin_gestures(image_size: int = 32, per_class: int = 500, seed: int = 0,
                          channels: int = 3) -> Dataset:
    """Draw ``per_class`` images of each gesture (split 70/15/15), deterministic for a seed."""
    if image_size < 8:
        raise DataError(f"image_size {image_size} is too small for drawn hands (use 8 or more)")
    if per_class < 7:
        raise DataError(f"per_class={per_class} is too few to fill train/val/test (use 7 or more)")
    splits = {}
    for split_id, (name, frac) in enumerate(SPLIT_FRACTIONS.items()):
        n = int(round(per_class * frac)) if name != "train" else \
            per_class - sum(int(round(per_class * f)) for s, f in SPLIT_FRACTIONS.items() if s != "train")
        rng = np.random.default_rng([seed, split_id])
        labels = rng.permutation(np.repeat(np.arange(len(GESTURES), dtype=np.int32), n))
        images = np.empty((len(labels), image_size, image_size, channels), dtype=np.uint8)
        for i, label in enumerate(labels):
            img = _render(GESTURES[label], image_size, rng)
            images[i] = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None] if channels == 1 else img
        splits[name] = Split(images, labels)
    return Dataset(name="builtin-gestures", class_names=GESTURES, train=splits["train"],
                   val=splits["val"], test=splits["test"], crop_mode="hand",
                   notes={"demo": DEMO_NOTE, "layout": "builtin",
                          "split": "independent draws per split (seeded); no person to leak"})


def save_grid(dataset: Dataset, path: str, per_class: int = 8, scale: int = 3) -> None:
    """Write a PNG grid (one row per class) to eyeball what the data looks like."""
    rows = []
    for c in range(dataset.num_classes):
        idx = np.flatnonzero(dataset.train.labels == c)[:per_class]
        tiles = [np.asarray(dataset.train.images[i]) for i in idx]
        tiles += [np.zeros_like(tiles[0])] * (per_class - len(tiles))
        rows.append(np.concatenate(tiles, axis=1))
    grid = np.concatenate(rows, axis=0)
    if grid.shape[2] == 1:
        grid = np.repeat(grid, 3, axis=2)
    grid = cv2.resize(grid, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    if not cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise DataError(f"cannot write {path}")
