"""Run an exported rnn-jax ONNX model with onnxruntime (numpy + OpenCV only, no JAX).

The file's own metadata (``rnn_jax.*`` keys, see :mod:`rnn_jax.runtime.metadata`) decides
the labels and the preprocessing, so a model can never be run with the wrong ones; and
the metadata is checked against the graph at load time so a mismatch fails with one
readable line instead of a shape error on the first frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

from rnn_jax import preprocess
from rnn_jax.errors import ConfigError, ModelFileError
from rnn_jax.ort_options import session_options
from rnn_jax.runtime.metadata import ModelInfo
from rnn_jax.softmax import softmax  # also rnn_jax.runtime.softmax

Roi = tuple[int, int, int]  # (left, top, side) of a square in frame pixels
ColourOrder = Literal["bgr", "rgb"]


def _one_line(exc: BaseException) -> str:
    """onnxruntime errors are long and multi-line; keep the first meaningful line."""
    text = " ".join(str(exc).split())
    return text[:300] + ("..." if len(text) > 300 else "")


class Predictor:
    """An rnn-jax ONNX model plus the preprocessing its metadata asks for.

    Build with :meth:`load`; then ``predict_frame(frame_bgr)`` for a camera frame or
    ``classify_files(paths)`` for image files. All ``predict*`` methods return
    probabilities (softmax over ``class_names``).
    """

    def __init__(self, session: ort.InferenceSession, info: ModelInfo, path: Path) -> None:
        self.session = session
        self.info = info
        self.path = path

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        path: str | Path,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        warmup: bool = True,
    ) -> Predictor:
        """Open ``path`` and check it is a consistent rnn-jax model.

        ``threads`` sets onnxruntime's intra-op threads (None = onnxruntime's default, one
        per core). ``providers`` defaults to the CPU provider only, so an optional provider
        that happens to be installed is never picked silently. ``warmup`` runs one dummy
        batch, so a graph that loads but cannot run fails here, and the first real frame
        does not pay the one-off allocation cost (which would distort latency numbers).
        """
        path = Path(path)
        if not path.exists():
            raise ModelFileError(f"model file not found: {path}")
        if not path.is_file():
            raise ModelFileError(f"model path is not a file: {path}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"threads must be a positive integer or None, got {threads!r}")
        options = session_options(threads)
        try:
            session = ort.InferenceSession(
                str(path), sess_options=options,
                providers=list(providers) if providers else ["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several pybind types; all mean "bad file"
            raise ModelFileError(
                f"{path} is not a loadable ONNX model: {_one_line(exc)}") from None
        props = dict(session.get_modelmeta().custom_metadata_map)
        info = ModelInfo.from_props(props, source=str(path))
        predictor = cls(session, info, path)
        predictor._check_graph()
        if warmup:
            predictor._warmup()
        return predictor

    def _check_graph(self) -> None:
        """The metadata must describe this graph; otherwise preprocessing would be wrong."""
        info, where = self.info, str(self.path)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1:
            raise ModelFileError(f"{where} has {len(inputs)} inputs; an rnn-jax model has exactly one")
        inp = inputs[0]
        if inp.name != info.input_name:
            raise ModelFileError(
                f"{where}: metadata names the input {info.input_name!r} but the graph's input is {inp.name!r}")
        if inp.type != "tensor(float)":
            raise ModelFileError(f"{where}: input {inp.name!r} is {inp.type}, expected tensor(float)")
        shape = list(inp.shape)
        if len(shape) != 4:
            raise ModelFileError(
                f"{where}: input {inp.name!r} has shape {shape}, expected NHWC [batch, {info.input_size}, "
                f"{info.input_size}, {info.num_channels}]")
        expected = [info.input_size, info.input_size, info.num_channels]
        for axis, (dim, want) in enumerate(zip(shape[1:], expected, strict=True), start=1):
            if isinstance(dim, int) and dim != want:
                raise ModelFileError(
                    f"{where}: metadata says input {info.input_size}x{info.input_size} {info.channels} "
                    f"but the graph's input shape is {shape} (axis {axis} is {dim}, expected {want})")
        names = [o.name for o in outputs]
        if info.output_name not in names:
            raise ModelFileError(
                f"{where}: metadata names the output {info.output_name!r} but the graph's outputs are {names}")
        out = outputs[names.index(info.output_name)]
        out_shape = list(out.shape)
        if len(out_shape) != 2:
            raise ModelFileError(
                f"{where}: output {out.name!r} has shape {out_shape}, expected [batch, num_classes]")
        if isinstance(out_shape[1], int) and out_shape[1] != len(info.class_names):
            raise ModelFileError(
                f"{where}: the graph outputs {out_shape[1]} classes but the metadata lists "
                f"{len(info.class_names)} class names")

    def _warmup(self) -> None:
        s, c = self.info.input_size, self.info.num_channels
        try:
            logits = self.predict_logits(np.zeros((1, s, s, c), np.float32))
        except Exception as exc:  # e.g. an op this onnxruntime lacks, or a bad reshape
            raise ModelFileError(f"{self.path} loads but fails a test run: {_one_line(exc)}") from None
        if logits.shape != (1, len(self.info.class_names)):
            raise ModelFileError(
                f"{self.path}: a test run gave logits of shape {logits.shape}, expected "
                f"(1, {len(self.info.class_names)}) (one per class name in the metadata)")

    # --------------------------------------------------------------- properties
    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    @property
    def input_size(self) -> int:
        return self.info.input_size

    @property
    def num_channels(self) -> int:
        return self.info.num_channels

    def __repr__(self) -> str:
        return (f"Predictor({str(self.path)!r}, {len(self.class_names)} classes, "
                f"{self.input_size}px {self.info.channels}, crop_mode={self.info.crop_mode!r})")

    # ------------------------------------------------------------ preprocessing
    def preprocess(
        self,
        images: np.ndarray | Iterable[np.ndarray],
        colour: ColourOrder = "bgr",
        roi: Roi | bool | None = None,
    ) -> np.ndarray:
        """Frames (one HxWxC array or a list) -> model-ready uint8 NHWC batch.

        ``colour`` says what the frames are: "bgr" for OpenCV frames, "rgb" for
        :func:`rnn_jax.preprocess.read_image` output (grey HxWx1 is fine either way).
        ``roi``: a (left, top, side) square to classify, True for the centred square
        (:func:`rnn_jax.preprocess.center_square`), or None for the model's crop mode.
        All geometry and colour handling is :mod:`rnn_jax.preprocess`, as in training.
        """
        if isinstance(images, np.ndarray) and images.ndim in (2, 3):
            images = [images]
        out = [self._prepare_one(np.asarray(img), colour, roi) for img in images]
        if not out:
            s, c = self.input_size, self.num_channels
            return np.zeros((0, s, s, c), np.uint8)
        return np.stack(out)

    def _prepare_one(self, image: np.ndarray, colour: ColourOrder, roi: Roi | bool | None) -> np.ndarray:
        if image.dtype != np.uint8:
            raise ValueError(f"expected uint8 images, got {image.dtype}")
        if colour == "rgb" and image.ndim == 3 and image.shape[2] == 3:
            # RGB -> BGR, so the one conversion in rnn_jax.preprocess serves both orders
            image = np.ascontiguousarray(image[..., ::-1])
        elif colour not in ("bgr", "rgb"):
            raise ValueError(f"colour must be 'bgr' or 'rgb', got {colour!r}")
        image = preprocess.bgr_to_model_colour(image, self.num_channels)
        if roi is True:
            roi = preprocess.center_square(image)
        if roi:
            left, top, side = roi
            return preprocess.crop_square(image, left, top, side, self.input_size)
        return preprocess.prepare(image, self.input_size, self.info.crop_mode)

    # --------------------------------------------------------------- inference
    def predict_logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 NHWC batch in 0..255 -> logits [B, num_classes] (one session run)."""
        s, c = self.input_size, self.num_channels
        if batch.ndim != 4 or batch.shape[1:] != (s, s, c):
            raise ValueError(f"expected a batch of shape [B, {s}, {s}, {c}], got {list(batch.shape)}")
        if batch.dtype != np.float32:
            batch = batch.astype(np.float32)
        (logits,) = self.session.run([self.info.output_name], {self.info.input_name: batch})
        return logits

    def predict(self, images_uint8: np.ndarray) -> np.ndarray:
        """Model-ready uint8 NHWC images (see :meth:`preprocess`) -> probabilities [B, K]."""
        logits = self.predict_logits(preprocess.to_model_input(images_uint8))
        return softmax(logits / self.info.temperature, dtype=np.float32)

    def predict_frame(self, frame_bgr: np.ndarray, roi: Roi | bool | None = None) -> np.ndarray:
        """One OpenCV BGR frame -> probabilities [K] (``roi`` as in :meth:`preprocess`)."""
        return self.predict(self.preprocess(frame_bgr, "bgr", roi))[0]

    def classify_files(
        self, paths: Iterable[str | Path], batch_size: int = 32
    ) -> list[tuple[str, float]]:
        """Image files -> (label, confidence) each, in order; batched for speed.

        Files are treated like training images (the model's crop mode; "hand" models
        expect files that are already hand crops). Unreadable files raise DataError.
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        paths = list(paths)
        results: list[tuple[str, float]] = []
        for start in range(0, len(paths), batch_size):
            chunk = [preprocess.read_image(p, self.num_channels) for p in paths[start:start + batch_size]]
            probs = self.predict(self.preprocess(chunk, colour="rgb"))
            best = probs.argmax(axis=1)
            results.extend((self.class_names[i], float(probs[n, i])) for n, i in enumerate(best))
        return results
