"""One ONNX file on disk, every weight inside it (no ``.onnx.data`` sidecar), proven after writing.

Publishing (temp file beside the destination, then an atomic rename) is
:mod:`rnn_jax.atomic`'s job; this module only writes and checks the single file.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from rnn_jax.export.errors import ExportError

_PROTOBUF_LIMIT = 2**31 - 1  # a single ONNX file cannot exceed this (protobuf limit)


def save_single_file(proto: onnx.ModelProto, path: Path) -> None:
    """Write with every tensor embedded, then prove it: no external-data reference, no sidecar."""
    if proto.ByteSize() > _PROTOBUF_LIMIT:
        raise ExportError(f"the model is {proto.ByteSize() / 1e9:.1f} GB; one ONNX file holds at most 2 GB")
    onnx.save_model(proto, str(path), save_as_external_data=False)
    written = onnx.load(str(path), load_external_data=False)
    external = [t.name for t in written.graph.initializer
                if onnx.external_data_helper.uses_external_data(t)]
    if external:
        raise ExportError(f"{path} still refers to external data for {external[:3]}; expected one file")
