"""Writing a preset file, atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .format import METADATA_KEY, SUFFIX, PresetError
from .preset import Preset
from .validate import validate_parts


def save_preset(preset: Preset, path: str | os.PathLike) -> Path:
    """Validate ``preset`` and write it to ``path`` atomically; return the path.

    The file appears complete or not at all: it is written to a temporary file in the
    same directory, flushed, then renamed over ``path``.
    """
    from safetensors.numpy import save

    path = Path(path)
    if path.suffix != SUFFIX:
        raise PresetError(f"{path}: a preset file name must end in {SUFFIX}")
    where = str(path)
    flat = preset.tensor_dict()
    cfg, _, _ = validate_parts(preset._config, flat, where)
    text = json.dumps(cfg, sort_keys=True, ensure_ascii=False, allow_nan=False)
    data = save({k: np.ascontiguousarray(v) for k, v in flat.items()}, metadata={METADATA_KEY: text})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
