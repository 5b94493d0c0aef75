"""What an rnn-jax ONNX file says about itself (stored in ONNX ``metadata_props``).

JAX-free: written by the exporter, read by the runtime and the live program, so a model
can never be paired with the wrong labels or the wrong preprocessing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from rnn_jax.errors import ModelFileError
from rnn_jax.preprocess import CROP_MODES, NORMALIZATION

PREFIX = "rnn_jax."
FORMAT_VERSION = 1


# the keys a live threshold is stored with (tools/live_accuracy.py --store writes all three together)
LIVE_KEYS = ("reject_threshold", "live_smoothing", "live_stable_frames")


def check_live_settings(info: object) -> None:
    """The stored live smoothing is text (parsed by rnn_jax.live) and stable frames a count >= 1."""
    smoothing, stable = getattr(info, "live_smoothing", None), getattr(info, "live_stable_frames", None)
    if smoothing is not None and not isinstance(smoothing, str):
        raise ModelFileError(f"model metadata has a live smoothing that is not text: {smoothing!r}")
    if stable is not None and (not isinstance(stable, int) or stable < 1):
        raise ModelFileError(f"model metadata has live stable frames that are not a count >= 1: {stable!r}")


class LandmarkModelFile(ModelFileError):
    """An image-model loader was given a landmark model (see rnn_jax.runtime.landmark_predictor)."""


@dataclass(frozen=True)
class ModelInfo:
    class_names: tuple[str, ...]
    input_size: int  # square side in pixels
    channels: str  # "RGB" or "GRAY"
    crop_mode: str  # "full", "hand" or "stretch" (see rnn_jax.preprocess)
    normalization: str = NORMALIZATION
    layout: str = "NHWC"
    input_name: str = "images"
    output_name: str = "logits"
    model_name: str = ""
    generation: int = -1
    val_accuracy: float = float("nan")
    run_name: str = ""
    rnn_jax_version: str = ""
    format_version: int = FORMAT_VERSION
    # chosen on validation at export (None: older files, the live default applies):
    # top-class probability below which no gesture is shown, and the softmax temperature
    reject_threshold: float | None = None
    temperature: float = 1.0
    # stored with a live threshold (tools/live_accuracy.py --sweep --store): the smoothing and stable
    # frames it was chosen under, which rnn_jax.live then uses unless told otherwise (None: not stored)
    live_smoothing: str | None = None
    live_stable_frames: int | None = None

    def __post_init__(self) -> None:
        if not self.class_names:
            raise ModelFileError("model metadata lists no class names")
        check_live_settings(self)
        if self.reject_threshold is not None and not 0.0 <= self.reject_threshold <= 1.0:
            raise ModelFileError(f"model metadata has a reject threshold outside [0, 1]: {self.reject_threshold}")
        if not self.temperature > 0:
            raise ModelFileError(f"model metadata has a non-positive temperature {self.temperature}")
        if self.channels not in ("RGB", "GRAY"):
            raise ModelFileError(f"model metadata has unknown channel order {self.channels!r}")
        if self.crop_mode not in CROP_MODES:
            raise ModelFileError(f"model metadata has unknown crop mode {self.crop_mode!r}")
        if self.input_size < 4:
            raise ModelFileError(f"model metadata has an implausible input size {self.input_size}")

    @property
    def num_channels(self) -> int:
        return 1 if self.channels == "GRAY" else 3

    def to_props(self) -> dict[str, str]:
        """Flat string key/values for ``onnx.ModelProto.metadata_props``."""
        return {PREFIX + k: json.dumps(v) for k, v in asdict(self).items()}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "model") -> ModelInfo:
        """Parse metadata; a file without our keys is 'not ours' and gets a clear error."""
        ours = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
        if not ours:
            raise ModelFileError(
                f"{source} is not an rnn-jax model: it has no '{PREFIX}*' metadata. "
                "Export one with `python tools/export_onnx.py`.")
        if ours.get("kind") == json.dumps("landmarks"):
            raise LandmarkModelFile(f"{source} is a landmark model (21 hand landmarks in, state carried "
                                    "frame to frame): run it with `python -m rnn_jax.live --onnx` or "
                                    "rnn_jax.runtime.landmark_predictor.LandmarkPredictor")
        known = {f.name for f in fields(cls)}
        missing = {"class_names", "input_size", "channels", "crop_mode"} - ours.keys()
        if missing:
            raise ModelFileError(f"{source} has incomplete rnn-jax metadata (missing {sorted(missing)})")
        try:
            values = {k: json.loads(v) for k, v in ours.items() if k in known}
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"{source} has unreadable rnn-jax metadata: {exc}") from None
        if values.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
            raise ModelFileError(
                f"{source} was written by a newer rnn-jax (format {values['format_version']}); upgrade rnn-jax")
        values["class_names"] = tuple(values["class_names"])
        return cls(**values)
