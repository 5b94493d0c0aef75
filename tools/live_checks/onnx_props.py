"""Rewrite an ONNX file's ``metadata_props`` without the ``onnx`` package (the base install lacks it).

An ONNX file is one protobuf ``ModelProto``; its metadata is the repeated top-level field 14 of
``StringStringEntryProto`` (key = field 1, value = field 2). Protobuf fields may come in any
order, so rewriting an entry means copying every other top-level field byte for byte and
putting the new entry in place of the old one: the graph and weights are never parsed.
"""

from __future__ import annotations

from pathlib import Path

from rnn_jax.errors import ModelFileError

METADATA_FIELD = 14  # ModelProto.metadata_props
_LENGTH_DELIMITED = 2


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ModelFileError("truncated protobuf varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _fields(data: bytes):
    """(field number, wire type, raw bytes of the whole field, payload of a length-delimited field)."""
    pos = 0
    while pos < len(data):
        start = pos
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        payload = b""
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == _LENGTH_DELIMITED:
            length, pos = _varint(data, pos)
            payload = data[pos:pos + length]
            pos += length
        elif wire == 5:
            pos += 4
        else:
            raise ModelFileError(f"not an ONNX file (protobuf wire type {wire} in field {number})")
        if pos > len(data):
            raise ModelFileError("not an ONNX file (a protobuf field runs past the end)")
        yield number, wire, data[start:pos], payload


def _string(field: int, text: str) -> bytes:
    raw = text.encode("utf-8")
    return _encode_varint(field << 3 | _LENGTH_DELIMITED) + _encode_varint(len(raw)) + raw


def _entry(key: str, value: str) -> bytes:
    body = _string(1, key) + _string(2, value)
    return _encode_varint(METADATA_FIELD << 3 | _LENGTH_DELIMITED) + _encode_varint(len(body)) + body


def _entry_key(payload: bytes) -> str | None:
    for number, wire, _, inner in _fields(payload):
        if number == 1 and wire == _LENGTH_DELIMITED:
            return inner.decode("utf-8")
    return None


def read_props(data: bytes) -> dict[str, str]:
    """The metadata key/values of a serialised ModelProto."""
    props = {}
    for number, wire, _, payload in _fields(data):
        if number == METADATA_FIELD and wire == _LENGTH_DELIMITED:
            entry = {n: p.decode("utf-8") for n, w, _, p in _fields(payload) if w == _LENGTH_DELIMITED}
            props[entry.get(1, "")] = entry.get(2, "")
    return props


def replace_props(data: bytes, values: dict[str, str], addable: tuple[str, ...] = ()) -> bytes:
    """``data`` with each key of ``values`` set; every key must already be there (a file that lacks
    one was not written by this project's exporter, so it is refused rather than guessed at), except
    the ``addable`` ones, which files from before those keys existed lack: they are appended."""
    out, seen = [], set()
    for number, wire, raw, payload in _fields(data):
        key = _entry_key(payload) if number == METADATA_FIELD and wire == _LENGTH_DELIMITED else None
        if key in values:
            out.append(_entry(key, values[key]))
            seen.add(key)
        else:
            out.append(raw)
    missing = sorted(set(values) - seen - set(addable))
    if missing:
        raise ModelFileError(f"the model file has no {', '.join(missing)} metadata")
    out.extend(_entry(key, values[key]) for key in values if key not in seen)  # protobuf: any field order
    return b"".join(out)


def set_props(path: Path, values: dict[str, str], addable: tuple[str, ...] = ()) -> None:
    """Rewrite the metadata of the ONNX file at ``path`` in place (atomically); see :func:`replace_props`."""
    from rnn_jax.atomic import write_bytes_atomic

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        updated = replace_props(data, values, addable)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    write_bytes_atomic(path, updated)
