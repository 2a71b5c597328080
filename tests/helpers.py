"""Helpers the tests share: playing a script of events into voices, block by block.

A *script* is a list of rows ``(sample, method, args)``: at device sample ``sample`` call
``voice.<method>(*args, offset=...)`` (``note_on``, ``note_off``, ``pitch_bend``,
``control``, ``panic``), the offset being where that sample falls in the block being
rendered. Rows are applied in the order given, so keep them sorted by sample.

Fixtures (the presets several files use) are in ``conftest.py``; these are plain functions,
imported with ``from helpers import drive_voice``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import numpy as np

Script = Sequence[tuple]


def play_scripts(
    voices: Sequence,
    scripts: Sequence[Script],
    total: int,
    blocks: Sequence[int],
    render: Callable[[int], np.ndarray],
    after_block: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Render ``total`` samples in blocks of the sizes ``blocks`` (repeated in turn), giving
    each voice the events of its script that fall in each block before ``render(n)`` is
    called; ``render(n)`` returns the block, ``[len(voices), n]``. ``after_block(end)`` is
    called after each block with the sample it ended at. Returns ``[len(voices), total]``."""
    out, pos, i = [], 0, 0
    while pos < total:
        n = min(blocks[i % len(blocks)], total - pos)
        i += 1
        for voice, script in zip(voices, scripts):
            for t, method, args in script:
                if pos <= t < pos + n:
                    getattr(voice, method)(*args, offset=t - pos)
        out.append(render(n))
        pos += n
        if after_block is not None:
            after_block(pos)
    return np.concatenate(out, axis=1)


def drive_voice(voice, script: Script, total: int, blocks: Sequence[int] = (4096,), after_block=None) -> np.ndarray:
    """``voice`` (a :class:`vocoder.Voice`) playing ``script``: its first ``total`` samples,
    rendered in blocks of the sizes ``blocks``. The same script gives the same samples
    whatever the blocks, which is what most voice tests check."""

    def render(n):
        block = np.zeros((1, n), np.float32)
        voice.render(block[0])
        return block

    return play_scripts([voice], [script], total, blocks, render, after_block)[0]


def script_from_events(events, sample_rate: int) -> list:
    """A script from :class:`vocoder.Event` objects (a song's events), at their samples
    at ``sample_rate``; events a voice does not take (lyrics, tempo) are left out."""
    script = []
    for e in sorted(events, key=lambda e: e.sort_key):
        if e.kind == "note_on":
            script.append((e.sample(sample_rate), "note_on", (e.note, e.velocity)))
        elif e.kind == "note_off":
            script.append((e.sample(sample_rate), "note_off", (e.note,)))
        elif e.kind == "pitch_bend":
            script.append((e.sample(sample_rate), "pitch_bend", (e.value,)))
        elif e.kind == "control":
            script.append((e.sample(sample_rate), "control", (e.control, e.value)))
    return script


#: The checkout the tests run from.
REPO = Path(__file__).resolve().parents[1]


def subprocess_env(**extra: str) -> dict:
    """The environment for a ``python -m vocoder`` child process: this checkout first on
    ``PYTHONPATH`` (so the child runs the code under test, not an installed copy),
    unbuffered output, and ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env
