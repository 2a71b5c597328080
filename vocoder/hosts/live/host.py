"""The live host: voices, MIDI routing and the audio callback (:class:`LiveHost`)."""

from __future__ import annotations

import collections
import math
import time

import numpy as np

from .midi import dispatch
from .stats import CallbackStats, _prefaulted

#: Largest block rendered in one engine call; longer callbacks are split.
MAX_BLOCK = 8192
#: MIDI messages one callback takes at most (a few us of Python each); a burst beyond
#: that (a sender catching up after a stall) waits in rtmidi's queue for the next blocks,
#: so the callback's time stays bounded and the voices' event queues never overflow.
MAX_EVENTS_PER_CALLBACK = 128


_thread_time = getattr(time, "thread_time", time.perf_counter)


def _renderers(voices) -> tuple:
    """What the callback renders: voices on one preset as one :class:`vocoder.VoiceGroup`
    (one batched engine step for all of them), anything else on its own."""
    from ..voice import Voice, VoiceGroup

    real = [v for v in voices if isinstance(v, Voice)]
    groups = [g if len(g) > 1 else g[0] for g in VoiceGroup.partition(real)] if real else []
    return tuple(groups) + tuple(v for v in voices if not isinstance(v, Voice))


class LiveHost:
    """Voices, MIDI routing and the audio callback.

    Args:
        voices: list of :class:`vocoder.Voice` (all at ``sample_rate``).
        routing: 16 entries, MIDI channel (0-based) -> index into ``voices`` or None.
        sample_rate: device rate.
        midi_in: an open python-rtmidi MidiIn (or any object with ``get_message()``
            returning ``(bytes, delta_seconds)`` or None), or None.
        channels: output channels; the mono voice mix is copied to each.
        event_log: keep the first ``event_log`` MIDI messages delivered to a voice, as
            rows ``[sample position, status, data1, data2]`` (tests replay them offline;
            :meth:`logged_events`). The position counts device samples since the start.
    """

    def __init__(self, voices, routing, sample_rate: int, midi_in=None, channels: int = 1, event_log: int = 0):
        if len(routing) != 16:
            raise ValueError("routing: 16 entries, one per MIDI channel")
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self._voices = tuple(voices)
        self._renderers = _renderers(self._voices)
        self._routes = tuple(None if r is None else self._voices[r] for r in routing)
        self.routing = list(routing)
        self._mono = _prefaulted(MAX_BLOCK, np.float32)
        self._scratch = _prefaulted(MAX_BLOCK, np.float32)
        self._batch: list = []  # MIDI drained in one callback (reused)
        self.max_events = MAX_EVENTS_PER_CALLBACK
        self._commands: collections.deque = collections.deque()  # (voice index or None, method name, args)
        self.stats = CallbackStats()
        self.midi_events = 0
        self._render_time = 0.0
        self._render_cpu = 0.0
        self.position = 0  # device samples rendered so far
        self._log = _prefaulted((max(0, int(event_log)), 4), np.int64)
        self._log_n = 0
        self.set_midi(midi_in)

    # ---- called from other threads -------------------------------------------------
    @property
    def voices(self):
        return self._voices

    def set_midi(self, midi_in) -> None:
        """Swap the MIDI source (None detaches). The clock mapping starts afresh."""
        self._midi = None
        self._rt = 0.0  # sum of rtmidi's delta times: its clock, origin unknown
        self._clock = math.inf  # perf_counter - rtmidi clock, estimated (min filter)
        self._clock_at = 0.0
        self._midi = midi_in

    def post(self, method: str, *args, voice=None) -> None:
        """Ask the audio thread to call ``voice.method(*args)`` (every voice when ``voice``
        is None) at the start of its next block. Never blocks."""
        self._commands.append((voice, method, args))

    def replace_voice(self, index: int, new_voice) -> None:
        """Swap voice ``index`` for ``new_voice`` (built outside the callback). From the next
        block on the old voice is no longer rendered, so its notes end with it; keys held
        across the switch are released on the new voice, which ignores the note-offs."""
        voices = list(self._voices)
        old = voices[index]
        voices[index] = new_voice
        routes = tuple(new_voice if r is old else r for r in self._routes)
        renderers = _renderers(voices)
        # Reference assignments; the callback reads each once per block (for one block
        # it may still render the old voice, which is harmless).
        self._voices = tuple(voices)
        self._renderers = renderers
        self._routes = routes

    @property
    def syllable(self) -> str:
        return " | ".join(getattr(v, "syllable", "") or "-" for v in self._voices)

    @property
    def dropped_events(self) -> int:
        return sum(int(getattr(v, "dropped_events", 0)) for v in self._voices)

    @property
    def voice_underrun_samples(self) -> int:
        return sum(int(getattr(v, "underrun_samples", 0)) for v in self._voices)

    # ---- the audio thread ----------------------------------------------------------
    def callback(self, outdata, frames, time_info, status) -> None:
        """sounddevice's OutputStream callback. Never raises."""
        t0 = time.perf_counter()
        c0 = _thread_time()
        self._render_time = 0.0
        self._render_cpu = 0.0
        n_ev = self.midi_events
        try:
            if status and status.output_underflow:
                self.stats.xruns += 1
            self._process(outdata, frames, t0)
        except Exception:
            self.stats.errors += 1
            outdata.fill(0)
        self.position += frames
        t1 = time.perf_counter()
        c1 = _thread_time()
        if frames:
            k = self.sample_rate / frames
            self.stats.events_now = self.midi_events - n_ev
            self.stats.add(t0, (t1 - t0) * k, self._render_time * k, (c1 - c0) * k, self._render_cpu * k)

    def _process(self, outdata, frames, t0):
        voices = self._voices
        routes = self._routes
        cmds = self._commands
        while cmds:
            vi, method, args = cmds.popleft()
            for v in voices if vi is None else (voices[vi],):
                getattr(v, method)(*args)
        midi = self._midi
        if midi is not None:
            self._pull_midi(midi, routes, frames, t0)
        renderers = self._renderers
        if frames > MAX_BLOCK:  # render in slices; events were placed in the first
            self._render_big(outdata, frames, renderers)
            return
        mono = self._mono[:frames]
        pc, tt = time.perf_counter, _thread_time
        t, c = pc(), tt()
        renderers[0].render(mono)
        rt, rc = pc() - t, tt() - c
        if len(renderers) > 1:
            scratch = self._scratch[:frames]
            for v in renderers[1:]:
                t, c = pc(), tt()
                v.render(scratch)
                rt += pc() - t
                rc += tt() - c
                np.add(mono, scratch, out=mono)
        self._render_time = rt
        self._render_cpu = rc
        if outdata.ndim == 1:
            outdata[:] = mono
        else:
            outdata[:] = mono[:, None]

    def _render_big(self, outdata, frames, voices):
        for s in range(0, frames, MAX_BLOCK):
            n = min(MAX_BLOCK, frames - s)
            mono = self._mono[:n]
            voices[0].render(mono)  # voices: the renderers (voice groups)
            for v in voices[1:]:
                v.render(self._scratch[:n])
                np.add(mono, self._scratch[:n], out=mono)
            if outdata.ndim == 1:
                outdata[s : s + n] = mono
            else:
                outdata[s : s + n] = mono[:, None]

    def _pull_midi(self, midi, routes, frames, t0):
        sr = self.sample_rate
        get = midi.get_message
        # The mapping from rtmidi's clock may drift: let the estimate rise by 50 us/s so
        # fresh messages re-tighten it.
        if self._clock != math.inf:
            self._clock += (t0 - self._clock_at) * 5e-5
        self._clock_at = t0
        last = frames - 1
        # Drain first (up to max_events), so the clock estimate includes the newest message
        # before placing any.
        batch = self._batch
        while len(batch) < self.max_events:
            m = get()
            if m is None:
                break
            self._rt += m[1]
            batch.append((m[0], self._rt))
        if not batch:
            return
        c = t0 - self._rt
        if c < self._clock:
            self._clock = c
        base = self._clock - t0
        try:
            for msg, t in batch:
                off = int((t + base) * sr + frames + 0.5)  # nearest sample (x > -0.5 here)
                if off < 0:
                    off = 0
                elif off > last:
                    off = last
                self.midi_events += 1
                if not msg or msg[0] >= 0xF0:
                    continue
                v = routes[msg[0] & 0x0F]
                if v is None:
                    continue
                if dispatch(v, msg, off) and self._log_n < self._log.shape[0]:
                    row = self._log[self._log_n]
                    row[0] = self.position + off
                    row[1] = msg[0]
                    row[2] = msg[1] if len(msg) > 1 else 0
                    row[3] = msg[2] if len(msg) > 2 else 0
                    self._log_n += 1
        finally:
            batch.clear()

    # ---- helpers ---------------------------------------------------------------------
    def logged_events(self) -> np.ndarray:
        """The event log (a copy): int64 rows ``[sample position, status, data1, data2]``."""
        return self._log[: self._log_n].copy()

    def status_line(self) -> str:
        med, mx = self.stats.recent(1.0)
        return (
            f"load {100 * med:5.1f}% med {100 * mx:5.1f}% max | engine underruns "
            f"{self.stats.engine_underruns} (host overruns {self.stats.host_overruns}, late callbacks "
            f"{self.stats.slow_callbacks}, xruns "
            f"{self.stats.xruns}) | dropped {self.dropped_events} "
            f"| midi {self.midi_events} | {self.syllable}"
        )
