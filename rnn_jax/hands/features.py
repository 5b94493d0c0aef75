"""The one landmark feature rule, shared by training, export and the live loop (numpy only).

Why one rule: a landmark model is only as good as the agreement between the coordinates it
was trained on and the ones the live hand finder hands it. Like :mod:`rnn_jax.preprocess`
for pixels, every path (``rnn_jax.data.landmark_dataset``, the exporter's metadata, the live loop)
calls :func:`landmark_features` with the :class:`FeatureSpec` stored beside the model.

Features of one hand (21 MediaPipe landmarks, x y z):
  * wrist-relative: landmark 0 (the wrist) becomes the origin, so where the hand is in the
    frame does not matter;
  * scale-normalised: divided by the largest wrist-to-landmark distance in the image plane,
    so hand size and distance to the camera do not matter;
  * left hands mirrored (optional): x -> -x for hands labelled left, so one model serves both
    hands without having to learn each gesture twice;
  * z (relative depth) kept or zeroed (HaGRID's annotations have no z: models trained on them
    must not see the live finder's z either).

:func:`augment_landmarks` perturbs features for training: in-plane rotation about the wrist,
scale, per-point jitter, mirroring (where allowed) and dropped points (set to the wrist).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

NUM_LANDMARKS = 21
LEFT, RIGHT, UNKNOWN = 1, 0, -1  # handedness codes stored in landmark files
FEATURE_VERSION = 1
# bones of the hand skeleton (for drawing and the built-in synthetic set)
FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))


@dataclass(frozen=True)
class FeatureSpec:
    """How raw landmarks become model input; stored in lineage.json and in the ONNX metadata."""

    mirror_left: bool = True
    use_z: bool = True
    version: int = FEATURE_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> FeatureSpec:
        d = dict(d or {})
        if int(d.get("version", FEATURE_VERSION)) > FEATURE_VERSION:
            raise ValueError(f"landmark feature version {d['version']} is newer than this rnn-jax knows")
        return cls(**{k: v for k, v in d.items() if k in ("mirror_left", "use_z", "version")})


def handedness_code(label: str | None) -> int:
    """"left"/"right" (any case) -> LEFT/RIGHT; anything else -> UNKNOWN."""
    text = (label or "").strip().lower()
    return LEFT if text == "left" else RIGHT if text == "right" else UNKNOWN


def landmark_features(landmarks: np.ndarray, handedness: np.ndarray | int | None = None,
                      spec: FeatureSpec = FeatureSpec()) -> np.ndarray:
    """Raw landmarks [..., 21, 3] (any units; x right, y down) -> float32 features, same shape.

    ``handedness``: LEFT/RIGHT/UNKNOWN codes broadcastable to the leading axes (None = unknown).
    A hand whose points all coincide (e.g. an all-zero "no hand" frame) gives all zeros.
    """
    pts = np.asarray(landmarks, np.float64)
    if pts.shape[-2:] != (NUM_LANDMARKS, 3):
        raise ValueError(f"landmarks must be [..., 21, 3], got {list(pts.shape)}")
    rel = pts - pts[..., :1, :]
    scale = np.sqrt((rel[..., :2] ** 2).sum(-1)).max(-1)[..., None, None]
    out = np.where(scale > 1e-9, rel / np.maximum(scale, 1e-9), 0.0)
    if spec.mirror_left and handedness is not None:
        left = np.broadcast_to(np.asarray(handedness) == LEFT, pts.shape[:-2])
        out[..., 0] = np.where(left[..., None], -out[..., 0], out[..., 0])
    if not spec.use_z:
        out[..., 2] = 0.0
    return out.astype(np.float32)


@dataclass(frozen=True)
class LandmarkAugment:
    """Strengths of :func:`augment_landmarks` (``basic``; ``strong`` doubles them and drops points)."""

    rotation_deg: float = 15.0
    scale: float = 0.1
    jitter: float = 0.01
    drop: float = 0.0


AUGMENT_LEVELS = {
    "none": None,
    "basic": LandmarkAugment(),
    "strong": LandmarkAugment(rotation_deg=25.0, scale=0.2, jitter=0.02, drop=0.05),
}


def augment_landmarks(features: np.ndarray, rng: np.random.Generator, level: str = "basic",
                      mirror: bool = False) -> np.ndarray:
    """Random rotation (about the wrist, in the image plane), scale, jitter, mirroring and dropped
    points on a batch of features [B, ..., 21, 3]; one draw per example (shared by a sequence's
    frames, as a camera would move them). ``mirror``: flip x for half the examples (only where
    left and right mean the same gesture)."""
    if level not in AUGMENT_LEVELS:
        raise ValueError(f"unknown landmark augmentation {level!r}; choose from {sorted(AUGMENT_LEVELS)}")
    aug = AUGMENT_LEVELS[level]
    x = np.asarray(features, np.float32)
    if aug is None and not mirror:
        return x
    b = x.shape[0]
    lead = (b,) + (1,) * (x.ndim - 1)
    out = x.copy()
    if aug is not None:
        theta = np.deg2rad(rng.uniform(-aug.rotation_deg, aug.rotation_deg, b)).reshape(lead[:-1])
        s = rng.uniform(1 - aug.scale, 1 + aug.scale, b).reshape(lead[:-1]).astype(np.float32)
        c, si = np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)
        px, py = x[..., 0], x[..., 1]
        out[..., 0] = s * (c * px - si * py)
        out[..., 1] = s * (si * px + c * py)
        out[..., 2] = s * x[..., 2]
        out += rng.normal(0.0, aug.jitter, out.shape).astype(np.float32)
        if aug.drop > 0:
            dropped = rng.random(out.shape[:-1]) < aug.drop
            dropped[..., 0] = False
            out[dropped] = 0.0
        out[..., 0, :] = x[..., 0, :]  # the wrist stays the origin
    if mirror:
        flip = (rng.random(b) < 0.5).reshape(lead[:-1])
        out[..., 0] = np.where(flip, -out[..., 0], out[..., 0])
    return out
