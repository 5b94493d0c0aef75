"""Run an exported landmark model with onnxruntime, frame by frame, state carried (no JAX).

A landmark model's ONNX file says so in its metadata (``rnn_jax.kind = "landmarks"``) and names
its inputs and outputs:

    landmarks [B, 21, 3] float32   features (rnn_jax.hands.features, spec in the metadata)
    state     [B, S]     float32   the previous frame's state (zeros at the start / after a reset)
    ->  logits [B, C], state_out [B, S]

Stateless models (the per-frame MLP) have S = 0 and no state input or output. The caller keeps
one state per tracked hand (:class:`HandStates`), so two hands never share a memory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from rnn_jax.errors import ConfigError, ModelFileError
from rnn_jax.hands.features import NUM_LANDMARKS, FeatureSpec, handedness_code, landmark_features
from rnn_jax.ort_options import session_options
from rnn_jax.runtime.metadata import PREFIX, check_live_settings
from rnn_jax.runtime.predictor import _one_line
from rnn_jax.softmax import softmax

KIND = "landmarks"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class LandmarkInfo:
    """Metadata of a landmark model (``rnn_jax.*`` keys, JSON values)."""

    class_names: tuple[str, ...]
    features: dict = field(default_factory=lambda: FeatureSpec().to_dict())
    state_size: int = 0
    state_layout: str = ""  # how the model packs its state, for people (the runtime only carries it)
    kind: str = KIND
    crop_mode: str = KIND  # the live loop: this model needs the hand finder
    input_name: str = "landmarks"
    output_name: str = "logits"
    state_input: str = "state"
    state_output: str = "state_out"
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
    live_smoothing: str | None = None  # stored with the live threshold (see rnn_jax.runtime.metadata.ModelInfo)
    live_stable_frames: int | None = None

    def __post_init__(self) -> None:
        if not self.class_names:
            raise ModelFileError("model metadata lists no class names")
        check_live_settings(self)
        if self.reject_threshold is not None and not 0.0 <= self.reject_threshold <= 1.0:
            raise ModelFileError(f"model metadata has a reject threshold outside [0, 1]: {self.reject_threshold}")
        if not self.temperature > 0:
            raise ModelFileError(f"model metadata has a non-positive temperature {self.temperature}")
        if self.state_size < 0:
            raise ModelFileError(f"model metadata has a negative state size {self.state_size}")

    @property
    def feature_spec(self) -> FeatureSpec:
        return FeatureSpec.from_dict(self.features)

    def to_props(self) -> dict[str, str]:
        return {PREFIX + k: json.dumps(list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "model") -> LandmarkInfo:
        ours = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
        try:
            values = {k: json.loads(v) for k, v in ours.items() if k in cls.__dataclass_fields__}
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"{source} has unreadable rnn-jax metadata: {exc}") from None
        if values.get("kind") != KIND:
            raise ModelFileError(f"{source} is not an rnn-jax landmark model")
        if "class_names" not in values:
            raise ModelFileError(f"{source} has incomplete rnn-jax metadata (missing ['class_names'])")
        if values.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
            raise ModelFileError(f"{source} was written by a newer rnn-jax; upgrade rnn-jax")
        values["class_names"] = tuple(values["class_names"])
        return cls(**values)


def load_predictor(path: str | Path, threads: int | None = None):
    """The right runtime for an rnn-jax ONNX file: :class:`rnn_jax.runtime.Predictor` for image
    models, :class:`LandmarkPredictor` for landmark models (told apart by the metadata)."""
    from rnn_jax.runtime.metadata import LandmarkModelFile
    from rnn_jax.runtime.predictor import Predictor

    try:
        return Predictor.load(path, threads=threads)
    except LandmarkModelFile:
        return LandmarkPredictor.load(path, threads=threads)


def is_landmark_model(path: str | Path) -> bool:
    """Whether ``path`` is a landmark model (cheap: onnxruntime's metadata only)."""
    try:
        session = ort.InferenceSession(str(path), sess_options=session_options(), providers=["CPUExecutionProvider"])
    except Exception:
        return False
    return session.get_modelmeta().custom_metadata_map.get(PREFIX + "kind") == json.dumps(KIND)


class LandmarkPredictor:
    """A landmark model plus its feature rule; :meth:`step` runs one frame and returns the new state."""

    def __init__(self, session: ort.InferenceSession, info: LandmarkInfo, path: Path) -> None:
        self.session, self.info, self.path = session, info, path
        self.spec = info.feature_spec

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None, warmup: bool = True) -> LandmarkPredictor:
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"model file not found: {path}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"threads must be a positive integer or None, got {threads!r}")
        options = session_options(threads)
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelFileError(f"{path} is not a loadable ONNX model: {_one_line(exc)}") from None
        info = LandmarkInfo.from_props(dict(session.get_modelmeta().custom_metadata_map), str(path))
        predictor = cls(session, info, path)
        predictor._check_graph()
        if warmup:
            predictor.step(np.zeros((1, NUM_LANDMARKS, 3), np.float32))
        return predictor

    def _check_graph(self) -> None:
        info, where = self.info, str(self.path)
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        want_in = [info.input_name] + ([info.state_input] if info.state_size else [])
        want_out = [info.output_name] + ([info.state_output] if info.state_size else [])
        if sorted(inputs) != sorted(want_in) or sorted(outputs) != sorted(want_out):
            raise ModelFileError(f"{where}: metadata describes inputs {want_in} -> {want_out} but the graph has "
                                 f"{sorted(inputs)} -> {outputs}")
        if info.state_size:
            dim = inputs[info.state_input].shape[-1]
            if isinstance(dim, int) and dim != info.state_size:
                raise ModelFileError(f"{where}: metadata says state size {info.state_size}, the graph takes {dim}")

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    @property
    def num_channels(self) -> int:  # the live loop converts colour for drawing only
        return 3

    def initial_state(self, batch: int = 1) -> np.ndarray:
        return np.zeros((batch, self.info.state_size), np.float32)

    def features(self, landmarks: np.ndarray, handedness: str | int | None) -> np.ndarray:
        """Raw landmarks [21, 3] (frame pixels) -> model input [1, 21, 3] by the model's feature rule."""
        code = handedness_code(handedness) if isinstance(handedness, str) or handedness is None else handedness
        return landmark_features(np.asarray(landmarks)[None], np.array([code]), self.spec)

    def step(self, features: np.ndarray, state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """features [B, 21, 3] (+ state [B, S]) -> (logits [B, C], new state [B, S])."""
        x = np.ascontiguousarray(features, np.float32)
        if x.ndim != 3 or x.shape[1:] != (NUM_LANDMARKS, 3):
            raise ValueError(f"expected features [B, 21, 3], got {list(x.shape)}")
        feeds = {self.info.input_name: x}
        if not self.info.state_size:
            (logits,) = self.session.run([self.info.output_name], feeds)
            return logits, self.initial_state(len(x))
        feeds[self.info.state_input] = (self.initial_state(len(x)) if state is None
                                        else np.ascontiguousarray(state, np.float32))
        logits, new_state = self.session.run([self.info.output_name, self.info.state_output], feeds)
        return logits, new_state

    def predict(self, features: np.ndarray, state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`step` with probabilities instead of logits."""
        logits, new_state = self.step(features, state)
        return softmax(logits / self.info.temperature, dtype=np.float32), new_state

    def __repr__(self) -> str:
        return (f"LandmarkPredictor({str(self.path)!r}, {len(self.class_names)} classes, "
                f"state {self.info.state_size})")


class HandStates:
    """One recurrent state per tracked hand: created at zero, dropped when the hand is lost,
    all cleared by :meth:`reset` (the live loop's 'r' key)."""

    def __init__(self, predictor: LandmarkPredictor) -> None:
        self.predictor = predictor
        self.states: dict[int, np.ndarray] = {}

    def classify(self, hands: list) -> np.ndarray:
        """Probabilities [len(hands), C] for this frame's hands (``rnn_jax.hands.Hand``), states advanced."""
        k = len(self.predictor.class_names)
        if not hands:
            self.states.clear()
            return np.zeros((0, k), np.float32)
        feats = np.concatenate([self.predictor.features(h.landmarks, h.handedness) for h in hands])
        state = np.concatenate([self.states.get(h.track_id, self.predictor.initial_state(1)) for h in hands])
        probs, new_state = self.predictor.predict(feats, state)
        self.states = {h.track_id: new_state[i:i + 1] for i, h in enumerate(hands)}
        return probs

    def reset(self) -> None:
        self.states.clear()
