"""MIDI messages to voice events: one :func:`dispatch` for the live callback and for
:func:`replay`, so a logged performance renders offline to the same samples."""

from __future__ import annotations

import numpy as np


def dispatch(voice, msg, offset: int) -> bool:
    """Apply one channel MIDI message (a sequence of ints) to ``voice`` at ``offset``:
    note on/off, pitch bend (14 bits to -1..1, centre 8192), control change (the voice
    handles CC 1, 2, 11, 120, 123). Returns whether it was a message a voice takes.
    :func:`replay` uses the same function, so live and offline agree."""
    kind = msg[0] & 0xF0
    n = len(msg)
    if kind == 0x90 and n >= 3:
        if msg[2]:
            voice.note_on(msg[1], msg[2], offset)
        else:
            voice.note_off(msg[1], offset)
    elif kind == 0x80 and n >= 2:
        voice.note_off(msg[1], offset)
    elif kind == 0xE0 and n >= 3:
        b = ((msg[2] << 7) | msg[1]) - 8192
        voice.pitch_bend(b / 8192.0, offset)  # as the file readers: -8192..8191 over 8192, one scale
    elif kind == 0xB0 and n >= 3:
        voice.control(msg[1], msg[2], offset)
    else:
        return False
    return True


def replay(voice, events, n_samples: int, block: int = 4096) -> np.ndarray:
    """Render ``n_samples`` offline with ``events`` (rows ``[position, status, d1, d2]``
    sorted by position, as :meth:`LiveHost.logged_events` gives) applied at their sample
    positions. Same voice settings and seed as live give the same samples as live."""
    out = np.zeros(int(n_samples), np.float32)
    pos = 0
    ev = np.asarray(events, np.int64).reshape(-1, 4)
    i = 0
    while pos < out.shape[0]:
        end = min(out.shape[0], pos + block)
        while i < ev.shape[0] and ev[i, 0] < end:
            dispatch(voice, [int(x) for x in ev[i, 1:]], max(0, int(ev[i, 0]) - pos))
            i += 1
        voice.render(out[pos:end])
        pos = end
    return out
