"""Reading a preset file: bounded in size, strict JSON, safetensors only (never pickle)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .format import METADATA_KEY, PresetError, preset_error
from .preset import Preset
from .validate import UnsupportedDtype, validate_parts

#: Largest preset file we read. The largest network the config limits allow is about
#: 300 MB, so this only stops a hostile or wrong file from exhausting memory.
MAX_PRESET_BYTES = 1 << 30

_ST_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "U64": np.uint64,
    "I32": np.int32,
    "U32": np.uint32,
    "I16": np.int16,
    "U16": np.uint16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate key {k!r}")
        d[k] = v
    return d


def _reject_constant(c):
    raise ValueError(f"{c} is not valid JSON")


def _strict_json(text):
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)


def read_preset_file(path: Path) -> Preset:
    where = str(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_PRESET_BYTES:
                raise preset_error(
                    where, None, f"file is {size} bytes, more than the {MAX_PRESET_BYTES} a preset may have"
                )
            # Read at most the limit even if the file grows meanwhile.
            data = f.read(MAX_PRESET_BYTES + 1)
    except OSError as e:
        raise preset_error(where, None, f"cannot read the preset file: {e.strerror or e}") from None
    if len(data) > MAX_PRESET_BYTES:
        raise preset_error(where, None, f"file is larger than the {MAX_PRESET_BYTES} bytes a preset may have")
    if len(data) < 8:
        raise preset_error(
            where, None, f"file is {len(data)} bytes long: too short to be a safetensors preset (truncated?)"
        )

    # The header: 8-byte little-endian length, then that much JSON. safetensors checks it
    # again below (offsets, sizes); we read it only for the metadata it does not return.
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise preset_error(
            where,
            None,
            f"safetensors header claims {n} bytes but the file has {len(data) - 8} after the "
            f"length field (truncated or not a safetensors file)",
        )
    try:
        header = _strict_json(data[8 : 8 + n].decode("utf-8"))
    except Exception as e:  # UnicodeDecodeError, JSONDecodeError, RecursionError, ...
        raise preset_error(where, "header", f"not valid safetensors JSON: {e}") from None
    try:
        import safetensors

        entries = safetensors.deserialize(data)
    except Exception as e:  # SafetensorError and anything a hostile file provokes
        raise preset_error(where, None, f"not a valid safetensors file: {e}") from None
    del data

    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get(METADATA_KEY), str):
        raise preset_error(
            where,
            f"__metadata__.{METADATA_KEY}",
            "missing: this safetensors file is not a vocoder preset (it has no vocoder config). "
            "Make presets with vocoder.save_preset or the training export.",
        )
    try:
        config = _strict_json(meta[METADATA_KEY])
    except Exception as e:
        raise preset_error(where, f"__metadata__.{METADATA_KEY}", f"config is not valid JSON: {e}") from None

    flat: dict[str, object] = {}
    try:
        for name, info in entries:
            dt = _ST_DTYPES.get(info["dtype"])
            if dt is None:
                flat[name] = UnsupportedDtype(str(info["dtype"]))
            else:
                flat[name] = np.frombuffer(info["data"], dtype=np.dtype(dt).newbyteorder("<")).reshape(info["shape"])
    except Exception as e:
        raise preset_error(where, None, f"cannot decode tensor data: {e}") from None
    try:
        cfg, tensors, layers = validate_parts(config, flat, where)
    except PresetError:
        raise
    except Exception as e:  # a bug here must still surface as a clear PresetError
        raise preset_error(where, None, f"invalid preset ({type(e).__name__}: {e})") from None
    return Preset._trusted(cfg, tensors, layers, path)
