"""The safetensors header of a model file, read and checked before any tensor is: a model file may come from
anywhere, so nothing it claims (a header size, a tensor's shape or place) is trusted before it is checked
against the file's real size.

The format: an unsigned 64-bit little-endian header length ``n``, ``n`` bytes of JSON (per tensor ``dtype``,
``shape`` and ``data_offsets`` ``[begin, end)`` into the data that follows; an optional ``__metadata__`` of
strings), then the data.
"""

from __future__ import annotations

import json
import math
import os
import struct

__all__ = ["MAX_HEADER_BYTES", "TensorEntry", "read_header"]

#: The shipped models' headers are 2-7 KiB (architecture, config, provenance); anything past 1 MiB is not one.
MAX_HEADER_BYTES = 1 << 20

#: Bytes per element of the dtypes a model file may hold (float weights; int64 BatchNorm counters).
ITEM_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8}

TensorEntry = tuple[str, tuple[int, ...]]  # (dtype, shape)


def read_header(path: str) -> tuple[dict[str, TensorEntry], dict[str, str]]:
    """``({name: (dtype, shape)}, metadata)`` of a safetensors file, or ``ValueError`` saying what is wrong.

    Checked: the header length fits the file and :data:`MAX_HEADER_BYTES`; every tensor has a known dtype, a
    shape of non-negative integers and exactly the bytes its shape needs; the tensors tile the data section
    with no gap, overlap or byte past the end of the file.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{size} bytes: too short for a safetensors header")
        (header_bytes,) = struct.unpack("<Q", prefix)
        if header_bytes > min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(
                f"header claims {header_bytes} bytes; the file has {size - 8} after the length and the limit "
                f"is {MAX_HEADER_BYTES}"
            )
        try:
            header = json.loads(handle.read(header_bytes))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"header is not JSON ({error})") from None
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("__metadata__ must map names to strings")
    tensors = {name: _checked_entry(name, entry) for name, entry in header.items()}
    _check_tiling(header, size - 8 - header_bytes)
    return {name: entry[:2] for name, entry in tensors.items()}, metadata


def _checked_entry(name: str, entry) -> tuple[str, tuple[int, ...], int]:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(f"tensor {name!r}: expected dtype, shape and data_offsets, got {entry!r:.200}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in ITEM_BYTES:
        raise ValueError(f"tensor {name!r}: dtype {dtype!r:.40} is not one of {', '.join(ITEM_BYTES)}")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise ValueError(f"tensor {name!r}: shape {shape!r:.200} is not a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(n) is int and n >= 0 for n in offsets)):
        raise ValueError(f"tensor {name!r}: data_offsets {offsets!r:.200} is not [begin, end]")
    needed = math.prod(shape) * ITEM_BYTES[dtype]
    if offsets[1] - offsets[0] != needed:
        raise ValueError(
            f"tensor {name!r}: shape {shape} of {dtype} needs {needed} bytes, data_offsets give "
            f"{offsets[1] - offsets[0]}"
        )
    return dtype, tuple(shape), needed


def _check_tiling(header: dict, data_bytes: int) -> None:
    """The tensors' byte ranges, in order, must cover ``[0, data_bytes)`` exactly."""
    position = 0
    for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"]):
        begin, end = entry["data_offsets"]
        if begin != position:
            raise ValueError(f"tensor {name!r} starts at byte {begin} of the data, expected {position}")
        position = end
    if position != data_bytes:
        raise ValueError(f"the tensors hold {position} bytes but the file has {data_bytes} bytes of data")
