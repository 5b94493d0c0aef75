"""The live loop's settings: threshold, threads, ROI, max frames and whether to find hands.

Resolved before the source is opened (the CLI and :func:`rnn_jax.live.iter_predictions` share
these rules), so a bad value is one error line and the camera is never touched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rnn_jax.errors import ConfigError, ModelFileError
from rnn_jax.live.smoothing import DEFAULT_THRESHOLD, GestureConfig, SmoothingConfig

if TYPE_CHECKING:
    from rnn_jax.hands import HandFinder
    from rnn_jax.runtime.predictor import Predictor

# DEFAULT_THRESHOLD (imported above) is GestureConfig's default, defined in rnn_jax.live.smoothing
HANDS_CHOICES = ("auto", "on", "off")
# --hand-search: how much the hand finder may spend looking for hands it does not track yet
# (rnn_jax.hands.FinderConfig fields; measured trade-offs in docs/performance.md, "Live search budget").
# All but every-frame search beside the loop (search_lag 1): a frame never waits for a palm run
# started on an earlier frame, and the result is the same whatever the machine's speed.
HAND_SEARCH: dict[str, dict[str, object]] = {
    "light": {"idle_palm_rate": 0.1, "scene_looks_per_frame": 2, "search_lag": 1},
    "balanced": {"idle_palm_rate": 0.15, "search_lag": 1},
    "thorough": {"idle_palm_rate": 0.25, "search_lag": 1},
    "every-frame": {"idle_palm_rate": None, "search_lag": 0},  # no budget: as before issue 34
}
DEFAULT_HAND_SEARCH = "balanced"


def resolve_threshold(threshold: float | None, info: object) -> float:
    """``--threshold``: the user's value, else the model's ``reject_threshold`` (chosen on validation
    at export), else :data:`DEFAULT_THRESHOLD`."""
    if threshold is not None:
        return float(threshold)
    chosen = getattr(info, "reject_threshold", None)
    return float(chosen) if chosen is not None else DEFAULT_THRESHOLD


def threshold_origin(threshold: float | None, info: object) -> str:
    """Where :func:`resolve_threshold`'s value came from, for the start-up line."""
    if threshold is not None:
        return "--threshold"
    return "model file" if getattr(info, "reject_threshold", None) is not None else "default"


def resolve_gesture(smoothing: str | SmoothingConfig | None, threshold: float | None, stable_frames: int | None,
                    info: object = None) -> GestureConfig:
    """The live gesture settings: each is the user's value, else the model file's, else
    :class:`GestureConfig`'s default. A file's live threshold is stored together with the smoothing
    and stable frames it was chosen under (``tools/live_accuracy.py --sweep --store``), so a file
    that says nothing of them was tuned, if at all, under the defaults."""
    base = GestureConfig()
    if smoothing is None:
        stored = getattr(info, "live_smoothing", None)
        try:
            smoothing = SmoothingConfig.parse(stored) if stored is not None else base.smoothing
        except ConfigError as exc:
            raise ModelFileError(f"the model file's live smoothing: {exc}") from None
    elif isinstance(smoothing, str):
        smoothing = SmoothingConfig.parse(smoothing)
    if stable_frames is None:
        stable_frames = getattr(info, "live_stable_frames", None) or base.stable_frames
    return GestureConfig(smoothing, resolve_threshold(threshold, info), int(stable_frames))


def gesture_origins(smoothing: object, threshold: float | None, stable_frames: int | None,
                    info: object) -> dict[str, str]:
    """Where each of :func:`resolve_gesture`'s values came from (flag, model file or default)."""

    def origin(given: object, key: str, flag: str) -> str:
        if given is not None:
            return flag
        return "model file" if getattr(info, key, None) is not None else "default"

    return {"smoothing": origin(smoothing, "live_smoothing", "--smoothing"),
            "threshold": origin(threshold, "reject_threshold", "--threshold"),
            "stable_frames": origin(stable_frames, "live_stable_frames", "--stable-frames")}


def default_live_threads() -> int:
    """onnxruntime intra-op threads for the live loop: half the cores, at most 4.

    Why not all cores (onnxruntime's default): the loop also decodes camera/video
    frames, converts colour and draws the display on this machine, and onnxruntime's
    idle worker threads spin-wait and steal those cores. A batch-1 student on a
    small image stops getting faster beyond ~4 threads, so more only adds jitter.
    """
    return max(1, min(4, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class LiveConfig:
    """Everything that shapes the live loop apart from the model and the source."""

    gesture: GestureConfig = field(default_factory=GestureConfig)
    roi: bool | None = None  # classify the centred square; None = on iff crop_mode == "hand"
    roi_fraction: float = 0.6  # side of the centred square as a fraction of the short side
    max_frames: int | None = None  # stop after this many frames (None = until the source ends)

    def __post_init__(self) -> None:
        if not 0.05 <= self.roi_fraction <= 1.0:
            raise ConfigError(f"roi size must be a fraction in [0.05, 1], got {self.roi_fraction}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"max frames must be >= 1, got {self.max_frames}")


def hands_wanted(hands: str | bool, predictor: Predictor, hand_models: str | Path | None = None) -> bool:
    """Resolve ``--hands``: auto = on when the models are built and the classifier takes hand crops.

    (A classifier trained on whole frames would be fed hand crops it never saw, so auto
    leaves it alone; ``on`` forces the finder anyway.)
    """
    from rnn_jax.hands.models import models_present

    if isinstance(hands, bool):
        return hands
    if hands not in HANDS_CHOICES:
        raise ConfigError(f"hands must be one of {', '.join(HANDS_CHOICES)}, got {hands!r}")
    if hands == "auto":
        if predictor.info.crop_mode == "landmarks":
            return True  # nothing else feeds a landmark model (missing models are named when loading)
        return predictor.info.crop_mode == "hand" and models_present(hand_models)
    return hands == "on"


def finder_config(hand_search: str = DEFAULT_HAND_SEARCH, max_hands: int = 2):
    """The :class:`rnn_jax.hands.FinderConfig` of a ``--hand-search`` mode."""
    from rnn_jax.hands import FinderConfig

    if hand_search not in HAND_SEARCH:
        raise ConfigError(f"hand search must be one of {', '.join(HAND_SEARCH)}, got {hand_search!r}")
    if max_hands < 1:
        raise ConfigError(f"max hands must be >= 1, got {max_hands}")
    return FinderConfig(max_hands=max_hands, **HAND_SEARCH[hand_search])


def make_finder(hands: str | bool | HandFinder, predictor: Predictor, hand_models: str | Path | None = None,
                max_hands: int = 2, threads: int | None = 1,
                hand_search: str = DEFAULT_HAND_SEARCH, live: bool = False) -> HandFinder | None:
    """A :class:`rnn_jax.hands.HandFinder` when ``hands`` resolves to on, else None. ``live``: frames
    come in real time (a camera): a frame never waits for a search beside the loop (``search_wait``
    False); a file's frames do, so every run over it finds the same hands."""
    from rnn_jax.hands import HandFinder

    if isinstance(hands, HandFinder):
        return hands
    config = finder_config(hand_search, max_hands)
    if live:
        config = replace(config, search_wait=False)
    if not hands_wanted(hands, predictor, hand_models):
        return None
    return HandFinder.load(hand_models, threads=threads, config=config)
