"""Finding presets by name: ``VOCODER_PRESET_PATH``, the repository's ``presets/``, then
``<sys.prefix>/share/vocoder/presets`` (where ``pip install .`` puts the shipped ones)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .format import SUFFIX, PresetError, preset_error
from .preset import Preset
from .reader import read_preset_file

ENV_PATH = "VOCODER_PRESET_PATH"


def preset_search_path() -> list[Path]:
    """Directories searched for preset names, in order."""
    dirs = [Path(p) for p in os.environ.get(ENV_PATH, "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parents[3] / "presets")
    dirs.append(Path(sys.prefix) / "share" / "vocoder" / "presets")
    return dirs


def _looks_like_path(s: str) -> bool:
    return s.endswith(SUFFIX) or "/" in s or (os.sep in s) or bool(os.altsep and os.altsep in s)


def _found() -> dict:
    """name -> path of the first preset of each name on the search path."""
    found = {}
    for d in preset_search_path():
        try:
            files = sorted(d.glob("*" + SUFFIX)) if d.is_dir() else []
        except OSError:
            continue
        for f in files:
            name = f.name[: -len(SUFFIX)]
            if name and name not in found and f.is_file():
                found[name] = f
    return found


def load_preset(name_or_path: str | os.PathLike | Preset) -> Preset:
    """Load a preset by name (searched on :func:`preset_search_path`) or by file path.

    A ``pathlib.Path``, or a string that contains a path separator or ends in
    ``.safetensors``, is a path; any other string is a name. Raises :class:`PresetError`
    for anything missing or invalid.
    """
    if isinstance(name_or_path, Preset):
        return name_or_path
    if isinstance(name_or_path, os.PathLike) or (isinstance(name_or_path, str) and _looks_like_path(name_or_path)):
        path = Path(name_or_path)
        if not path.is_file():
            raise preset_error(str(path), None, "no such preset file")
        return read_preset_file(path)
    if not isinstance(name_or_path, str) or not name_or_path or name_or_path in (".", ".."):
        raise PresetError(f"expected a preset name or path, got {name_or_path!r}")
    name = name_or_path
    for d in preset_search_path():
        f = d / (name + SUFFIX)
        if f.is_file():
            return read_preset_file(f)
    avail = sorted(_found())
    raise PresetError(
        f"{name}: no preset of that name; available: {', '.join(avail) if avail else '(none)'}. "
        f"Searched {', '.join(str(d) for d in preset_search_path())}. Pass a file path, or add its directory "
        f"to {ENV_PATH}."
    )


def list_presets() -> list[tuple[str, Path, dict]]:
    """``(name, path, meta)`` for every preset name on the search path, sorted by name.

    Where a name occurs in several directories, the one :func:`load_preset` picks is
    listed. A file that does not load is listed with ``meta = {"error": message}``.
    """
    out = []
    for name, path in sorted(_found().items()):
        try:
            meta = read_preset_file(path).meta
        except PresetError as e:
            meta = {"error": str(e)}
        out.append((name, path, meta))
    return out
