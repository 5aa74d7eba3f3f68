"""What an ONNX file declares, read without onnxruntime: its metadata and its graph inputs' shapes.

``OnnxSegmenter`` checks these before it builds an onnxruntime session, so a model declaring an input of
100000x100000 (in ``vbg.input_size_wh`` or as fixed input dimensions) is refused with the reason instead of
onnxruntime planning, constant-folding or allocating for it. The ``onnx`` package is not a runtime dependency,
and only a few fields are needed, so this walks the protobuf wire format itself: ``ModelProto.metadata_props``
(field 14) and ``ModelProto.graph`` (7) → ``GraphProto.input`` (11, minus the initializers, 5) →
``ValueInfoProto.type`` (2) → ``TypeProto.tensor_type`` (1) → ``shape`` (2) → ``dim`` (1) → ``dim_value`` (1)
or ``dim_param`` (2). Anything it cannot parse gives None: onnxruntime then reports the file as before.
"""
from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path


class _Malformed(Exception):
    pass


def _varint(b, i: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= end:
            raise _Malformed
        c = b[i]
        i += 1
        value |= (c & 0x7F) << shift
        if c < 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise _Malformed


def _fields(b, start: int, end: int):
    """(field number, wire type, value): the varint for type 0, the (start, end) of the bytes for type 2."""
    i = start
    while i < end:
        key, i = _varint(b, i, end)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(b, i, end)
            yield field, wire, value
        elif wire == 2:
            n, i = _varint(b, i, end)
            if i + n > end:
                raise _Malformed
            yield field, wire, (i, i + n)
            i += n
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:  # groups (3, 4) do not occur in ONNX
            raise _Malformed
    if i != end:
        raise _Malformed


def _sub(b, span, field_no: int):
    for field, wire, value in _fields(b, *span):
        if field == field_no and wire == 2:
            yield value


def _text(b, span) -> str:
    return bytes(b[span[0]:span[1]]).decode("utf-8")


@dataclass
class OnnxHeader:
    props: dict               # metadata_props
    inputs: list              # [(name, [dim, ...])]; a dim is an int (fixed), a str (named) or None


def _dims(b, value_info) -> tuple[str, list]:
    name, dims = "", []
    for field, wire, value in _fields(b, *value_info):
        if field == 1 and wire == 2:
            name = _text(b, value)
        elif field == 2 and wire == 2:  # TypeProto
            for tensor in _sub(b, value, 1):
                for shape in _sub(b, tensor, 2):
                    for dim in _sub(b, shape, 1):
                        d = None
                        for f, w, v in _fields(b, *dim):
                            if f == 1 and w == 0:
                                d = v - (1 << 64) if v >= 1 << 63 else v
                            elif f == 2 and w == 2:
                                d = _text(b, v)
                        dims.append(d)
    return name, dims


def read_header(path) -> OnnxHeader | None:
    """The metadata and graph inputs of the ONNX file at ``path``, or None if it cannot be parsed."""
    try:
        with open(Path(path), "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as b:
            props: dict = {}
            graph = None
            for field, wire, value in _fields(b, 0, len(b)):
                if field == 14 and wire == 2:
                    entry = {f: _text(b, v) for f, w, v in _fields(b, *value) if w == 2 and f in (1, 2)}
                    props[entry.get(1, "")] = entry.get(2, "")
                elif field == 7 and wire == 2:
                    graph = value
            inputs, initializers = [], set()
            if graph is not None:
                for field, wire, value in _fields(b, *graph):
                    if field == 5 and wire == 2:  # TensorProto.name is field 8
                        initializers.update(_text(b, v) for v in _sub(b, value, 8))
                    elif field == 11 and wire == 2:
                        inputs.append(_dims(b, value))
            return OnnxHeader(props, [(n, d) for n, d in inputs if n not in initializers])
    except (OSError, ValueError, _Malformed, UnicodeDecodeError, IndexError):
        return None
