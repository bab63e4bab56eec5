"""Read a safetensors file into numpy arrays (the golden references).

The format: a little-endian u64 header length, a JSON header mapping each tensor name
to its dtype, shape and [begin, end) byte offsets into the data that follows.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I32": np.int32, "I64": np.int64,
           "U8": np.uint8, "I8": np.int8}


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of the file whose dtype numpy holds (BF16 and FP8 are left out)."""
    data = Path(path).read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    body = memoryview(data)[8 + header_len:]
    out: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        if name == "__metadata__" or entry["dtype"] not in _DTYPES:
            continue
        begin, end = entry["data_offsets"]
        array = np.frombuffer(body[begin:end], dtype=_DTYPES[entry["dtype"]])
        out[name] = array.reshape(entry["shape"]).copy()
    return out
