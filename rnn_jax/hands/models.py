"""Where the hand models live and how they are opened (onnxruntime only).

The two ONNX files (palm detector, 21-landmark model) are converted once from the
MediaPipe 0.10.14 wheel by ``python tools/build_hand_models.py`` and kept in a cache
folder, never in git: ``$RNN_JAX_HANDS`` if set, else ``~/.cache/rnn-jax/hands``.
Opening checks each file's inputs and outputs, so a corrupt or foreign file fails with
one line instead of a shape error on the first frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from rnn_jax.errors import ModelFileError
from rnn_jax.ort_options import hand_model_providers, session_options

ENV_VAR = "RNN_JAX_HANDS"
BUILD_COMMAND = "python tools/build_hand_models.py"
PALM_FILE = "palm_detection_full.onnx"
LANDMARK_FILE = "hand_landmark_full.onnx"
# optional: the finder's face check for hands only a tile saw (folders built before it lack it)
FACE_FILE = "face_detection_short_range.onnx"
PALM_SIZE = 192
LANDMARK_SIZE = 224
FACE_SIZE = 128


class HandModelsMissing(ModelFileError):
    """The hand models have not been built (or were built somewhere else)."""


def default_model_dir() -> Path:
    """``$RNN_JAX_HANDS`` or ``~/.cache/rnn-jax/hands`` (not created here)."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rnn-jax" / "hands"


def model_paths(model_dir: str | Path | None = None) -> tuple[Path, Path]:
    """(palm, landmark) file paths in ``model_dir`` (default :func:`default_model_dir`)."""
    folder = Path(model_dir).expanduser() if model_dir else default_model_dir()
    return folder / PALM_FILE, folder / LANDMARK_FILE


def models_present(model_dir: str | Path | None = None) -> bool:
    """True when both files exist (``--hands auto`` turns hands on exactly then)."""
    return all(p.is_file() for p in model_paths(model_dir))


@dataclass(frozen=True)
class _Spec:
    size: int
    outputs: tuple[tuple[int, ...], ...]  # output shapes without the batch axis


_SPECS = {PALM_FILE: _Spec(PALM_SIZE, ((2016, 18), (2016, 1))),
          LANDMARK_FILE: _Spec(LANDMARK_SIZE, ((63,), (1,), (1,), (63,))),
          FACE_FILE: _Spec(FACE_SIZE, ((896, 16), (896, 1)))}


def _session(path: Path, threads: int | None) -> ort.InferenceSession:
    """Open one model and check it has the shapes our decoding assumes (NCHW float input)."""
    if not path.is_file():
        raise HandModelsMissing(
            f"hand model {path} not found; build the hand models once with `{BUILD_COMMAND}` "
            f"(or point ${ENV_VAR} / --hand-models at the folder holding them)")
    options = session_options(threads)
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=hand_model_providers())
    except Exception as exc:  # onnxruntime raises several pybind types; all mean "bad file"
        raise ModelFileError(f"hand model {path} is corrupt or not an ONNX model "
                             f"({' '.join(str(exc).split())[:160]}); rebuild it with "
                             f"`{BUILD_COMMAND} --force`") from None
    spec = _SPECS[path.name]
    inputs, outputs = session.get_inputs(), session.get_outputs()
    got_in = [list(i.shape) for i in inputs]
    got_out = [tuple(o.shape[1:]) for o in outputs]
    if got_in != [[1, 3, spec.size, spec.size]] or got_out != list(spec.outputs):
        raise ModelFileError(f"{path} is not the expected hand model (inputs {got_in}, outputs "
                             f"{[list(o.shape) for o in outputs]}); rebuild it with "
                             f"`{BUILD_COMMAND} --force`")
    return session


def open_models(model_dir: str | Path | None = None,
                threads: int | None = 1) -> tuple[ort.InferenceSession, ort.InferenceSession]:
    """Open and check (palm, landmark) sessions; one-line errors name the build command."""
    palm, landmark = model_paths(model_dir)
    return _session(palm, threads), _session(landmark, threads)


def open_face_model(model_dir: str | Path | None = None, threads: int | None = 1) -> ort.InferenceSession | None:
    """The face detector's session, or None when the folder was built before it existed
    (the finder then holds every tile-only hand to the stricter presence bar)."""
    path = model_paths(model_dir)[0].with_name(FACE_FILE)
    return _session(path, threads) if path.is_file() else None
