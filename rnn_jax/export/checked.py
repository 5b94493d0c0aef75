"""One model -> one published ONNX file: convert, write beside the destination, gate, publish.

The file is only published after the parity gate (:mod:`rnn_jax.export.parity`). Until then
it lives under a temporary name beside the destination, so a failed export never leaves a
file that looks usable (and an existing file there stays as it was).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnn_jax.atomic import writing
from rnn_jax.export.convert import (
    DEFAULT_OPSET,
    drop_bad_value_info,
    stamp_and_check,
    to_onnx_proto,
)
from rnn_jax.export.errors import ExportError
from rnn_jax.export.files import save_single_file
from rnn_jax.export.parity import DEFAULT_TOLERANCE, ParityResult, parity_check, require_parity
from rnn_jax.runtime.metadata import ModelInfo

Log = Callable[[str], None]


def quiet(_: str) -> None:
    """A ``log`` that says nothing (the library default; the CLI passes ``print``)."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_checked` did: the published file and the evidence it is right."""

    path: Path
    parity: ParityResult
    tolerance: float
    value_info_conflicts: int  # annotations that contradicted shape inference (0 = none)
    value_info_dropped: int  # annotations removed because of them
    file_bytes: int
    export_s: float


def _check_info(info: ModelInfo, image_shape: tuple[int, int, int]) -> None:
    h, w, c = image_shape
    if h != w:
        raise ExportError(f"rnn-jax models take square images; this one takes {h}x{w}")
    if info.input_size != h or info.num_channels != c:
        raise ExportError(f"metadata says {info.input_size}px {info.channels} but the model takes "
                          f"{h}x{w}x{c}")


def export_checked(model: Any, image_shape: tuple[int, int, int], info: ModelInfo,
                   out_path: str | Path, *, parity_images: np.ndarray | None = None,
                   tolerance: float = DEFAULT_TOLERANCE, opset: int = DEFAULT_OPSET,
                   log: Log = quiet) -> ExportResult:
    """Export, gate on parity, then publish ``out_path`` (see :func:`export_model`)."""
    image_shape = tuple(int(d) for d in image_shape)
    _check_info(info, image_shape)
    if not tolerance > 0:
        raise ExportError(f"tolerance must be > 0, got {tolerance}")
    dest = Path(out_path)
    if dest.is_dir():
        raise ExportError(f"--out {dest} is a folder; give a file name such as {dest / 'student.onnx'}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if parity_images is None:  # no real data at hand: seeded noise still catches a wrong graph
        parity_images = np.random.default_rng(0).integers(0, 256, (32, *image_shape), dtype=np.uint8)

    t0 = time.perf_counter()
    proto = to_onnx_proto(model, image_shape, input_name=info.input_name,
                          output_name=info.output_name, opset=opset)
    conflicts, dropped = drop_bad_value_info(proto)
    if conflicts:
        log(f"  value_info fix: {conflicts} shape annotation(s) contradicted shape inference "
            f"(jax2onnx NHWC/NCHW mix-up); dropped all {dropped}")
    stamp_and_check(proto, info)
    export_s = time.perf_counter() - t0

    with writing(dest, ".onnx") as tmp:  # published when the block ends, removed if it raises
        save_single_file(proto, tmp)
        parity = parity_check(model, tmp, parity_images)
        log(f"  parity on {parity.n} images: {parity.summary(tolerance)}")
        require_parity(parity, tolerance, f"{dest}" + (" (the existing file there was left unchanged)"
                                                       if dest.exists() else " (nothing was written)"))
        size = tmp.stat().st_size
    return ExportResult(dest, parity, tolerance, conflicts, dropped, size, export_s)


def export_model(model: Any, image_shape: tuple[int, int, int], info: ModelInfo,
                 out_path: str | Path, *, parity_images: np.ndarray | None = None,
                 tolerance: float = DEFAULT_TOLERANCE) -> Path:
    """Export ``model`` (float32 NHWC 0..255 ``images`` [B,H,W,C] -> ``logits``) to one ONNX file.

    ``info`` is written into the file's metadata so the runtime picks the right labels and
    preprocessing. The file appears at ``out_path`` only after the parity gate passes on
    ``parity_images`` (uint8 NHWC; real images, ideally; seeded noise when None);
    otherwise :class:`ParityError` is raised and ``out_path`` is untouched.
    """
    return export_checked(model, image_shape, info, out_path, parity_images=parity_images,
                          tolerance=tolerance).path
