"""Live singing: MIDI in (python-rtmidi), audio out (sounddevice), the engine in between.

``vocoder live`` runs :class:`LiveHost`. The audio callback does nothing but pull the MIDI
messages that arrived since the last callback, turn each into a :class:`vocoder.Voice`
event placed sample-accurately in the block, and call ``voice.render``::

    callback start t0 (perf_counter)
      pull the pending MIDI messages, up to 128 (rtmidi's own queue, never blocks)
        its time t (from rtmidi's delta timestamps, mapped onto perf_counter)
        offset = (t - t0) * rate + frames, clamped into [0, frames)
        -> voice.note_on / note_off / pitch_bend / control(..., offset)
      voice.render(mono)           # C, GIL released, no allocation, never raises
      copy mono to every output channel
      record the callback's own time against the period

An event is placed one block after the moment it happened: a message that arrived just
as the previous callback started lands at offset 0, one that arrived just now at the end
of the block. The added latency is exactly one block, whatever the callback's jitter.
Total latency from key to sound: ``voice.latency_samples`` (engine + singer + resampler)
+ one block + the device's output latency; ``vocoder live`` prints it.

Other threads never call a Voice's event methods (its event queue has one producer, the
audio thread): OSC commands and shutdown go to the callback through a ``deque`` (append
and popleft are atomic in CPython, no lock the callback could wait on), and the
callback applies them at offset 0. Loading lyrics (parsing text into syllables) and
switching presets happen outside the callback: lyrics and the lyric cursor are plain
attribute assignments on the Python side of the Voice (no queue involved), and a new
Voice is built in the OSC thread and swapped in with one reference assignment.

Other pieces: :func:`list_midi_ports` / :func:`list_audio_devices` (``vocoder devices``),
:func:`open_midi_in`, the OSC server (:class:`OscControl`, 127.0.0.1 only) and
:func:`run_live` (the CLI's main loop: status line, Ctrl-C, a vanished device).
"""

from __future__ import annotations

import collections
import gc
import json
import math
import os
import signal
import sys
import threading
import time

import numpy as np

#: MIDI APIs ``--api`` accepts, as python-rtmidi constants' names.
MIDI_APIS = {"jack": "API_UNIX_JACK", "alsa": "API_LINUX_ALSA"}

#: Histogram of callback time as a fraction of the period: bins of 1/400 (0.25 %) up to 4.
HIST_BINS = 1600
HIST_SCALE = 400.0
#: Ring of recent callbacks, for "the last second" (enough for 64-frame blocks at 192 kHz).
RING = 4096
#: Largest block rendered in one engine call; longer callbacks are split.
MAX_BLOCK = 8192
#: MIDI messages one callback takes at most (a few us of Python each); a burst beyond
#: that (a sender catching up after a stall) waits in rtmidi's queue for the next blocks,
#: so the callback's time stays bounded and the voices' event queues never overflow.
MAX_EVENTS_PER_CALLBACK = 128
#: GIL switch interval while the stream runs. When render returns (or a callback starts)
#: while another thread runs Python (the status line, OSC), the audio thread waits up to
#: this long for the GIL: at 0.5 ms that was 0.19 of a 128-frame period at 48 kHz, seen
#: once every few seconds with the status line on; at 0.1 ms it measured 0.04-0.10.
SWITCH_INTERVAL = 0.0001


_thread_time = getattr(time, "thread_time", time.perf_counter)


class LiveError(Exception):
    """A problem the user can fix (no such port, no such device, bad routing)."""


# ---------------------------------------------------------------------------------------
# MIDI ports and audio devices
# ---------------------------------------------------------------------------------------
def _rtmidi_api(api: str):
    import rtmidi

    if api not in MIDI_APIS:
        raise LiveError(f"unknown MIDI API {api!r}; choose one of {', '.join(MIDI_APIS)}")
    return getattr(rtmidi, MIDI_APIS[api])


def list_midi_ports(api: str) -> dict:
    """``{"inputs": [...], "outputs": [...]}`` for one API, or ``{"error": message}``.

    ALSA raises SystemError where there is no sequencer (no /dev/snd/seq); JACK gives no
    ports, or an error, when no JACK server runs. Neither is fatal for a listing.
    """
    try:
        import rtmidi

        rapi = _rtmidi_api(api)
        if rapi not in rtmidi.get_compiled_api():
            return {"error": f"python-rtmidi was built without the {api} API"}
        mi = rtmidi.MidiIn(rapi, "vocoder-devices")
        try:
            ins = mi.get_ports()
        finally:
            mi.delete()
        mo = rtmidi.MidiOut(rapi, "vocoder-devices")
        try:
            outs = mo.get_ports()
        finally:
            mo.delete()
        return {"inputs": ins, "outputs": outs}
    except ImportError as e:
        return {"error": f"python-rtmidi is not installed ({e})"}
    except (SystemError, OSError, RuntimeError) as e:  # rtmidi.RtMidiError derives from Exception
        return {"error": f"{type(e).__name__}: {e}".strip()}
    except Exception as e:  # rtmidi's own error types
        return {"error": f"{type(e).__name__}: {e}".strip()}


def list_audio_devices() -> dict:
    """``{"devices": [{index, name, hostapi, inputs, outputs, default_rate}], "default_output": i}``
    or ``{"error": message}`` (PortAudio missing: ``apt-get install libportaudio2``)."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as e:
        return {"error": f"sounddevice unavailable ({e}); install libportaudio2 and sounddevice"}
    apis = sd.query_hostapis()
    devs = []
    for i, d in enumerate(sd.query_devices()):
        devs.append(dict(index=i, name=d["name"], hostapi=apis[d["hostapi"]]["name"],
                         inputs=d["max_input_channels"], outputs=d["max_output_channels"],
                         default_rate=d["default_samplerate"]))
    try:
        default_out = sd.default.device[1]
    except Exception:
        default_out = -1
    return {"devices": devs, "default_output": default_out}


class _QuietStderr:
    """Send file descriptor 2 to /dev/null for a while: the JACK and ALSA C libraries
    print their own probing messages there ("Cannot connect to server socket", "ALSA
    lib seq_hw.c ..."), which say nothing the listing does not say better."""

    def __enter__(self):
        sys.stderr.flush()
        try:
            self.saved = os.dup(2)
            null = os.open(os.devnull, os.O_WRONLY)
        except OSError:  # no fd 2 to save: nothing to hide
            self.saved = None
            return self
        os.dup2(null, 2)
        os.close(null)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)
        return False


def format_devices(apis=("jack", "alsa")) -> str:
    """The text of ``vocoder devices``: MIDI ports per API and the audio devices, with
    the libraries' own stderr noise hidden (an unusable API gets one line saying why)."""
    with _QuietStderr():
        midi = {api: list_midi_ports(api) for api in apis}
        a = list_audio_devices()
    lines = []
    for api in apis:
        r = midi[api]
        lines.append(f"MIDI ({api}):")
        if "error" in r:
            lines.append(f"  unavailable: {r['error']}")
            continue
        lines.append("  inputs (vocoder live --api %s --midi-in NAME):" % api)
        lines += [f"    {i}: {n}" for i, n in enumerate(r["inputs"])] or ["    (none)"]
        lines.append("  outputs (ports that take MIDI):")
        lines += [f"    {i}: {n}" for i, n in enumerate(r["outputs"])] or ["    (none)"]
    lines.append("Audio devices (vocoder live --device N|NAME):")
    if "error" in a:
        lines.append(f"  unavailable: {a['error']}")
    else:
        for d in a["devices"]:
            mark = "*" if d["index"] == a["default_output"] else " "
            lines.append(f"  {mark}{d['index']:2d}: {d['name']} [{d['hostapi']}] "
                         f"{d['inputs']} in, {d['outputs']} out, {d['default_rate']:g} Hz")
        if not a["devices"]:
            lines.append("  (none)")
    return "\n".join(lines)


def open_midi_in(api: str = "jack", port=None, virtual: bool = False, name: str = "vocoder",
                 queue_size: int = 8192):
    """Open a python-rtmidi input: the port whose name equals ``port``, else the one that
    contains it, else the one at that index; or a virtual port named ``name`` that other
    programs connect to. Returns ``(midi_in, port_description)``."""
    import rtmidi

    rapi = _rtmidi_api(api)
    try:
        mi = rtmidi.MidiIn(rapi, name, queue_size_limit=queue_size)
    except SystemError as e:
        raise LiveError(f"MIDI API {api!r} is not usable here ({e or 'no sequencer'}); "
                        f"try --api {'jack' if api == 'alsa' else 'alsa'}") from None
    except Exception as e:
        raise LiveError(f"cannot open MIDI API {api!r}: {e}") from None
    mi.ignore_types(sysex=True, timing=True, active_sense=True)
    if virtual:
        try:
            mi.open_virtual_port("in")
        except Exception as e:
            mi.delete()
            raise LiveError(f"cannot create a virtual MIDI port on {api}: {e}") from None
        return mi, f"virtual port '{name}:in' ({api})"
    ports = mi.get_ports()
    idx = find_port(ports, port)
    if idx is None:
        mi.delete()
        listing = ", ".join(repr(p) for p in ports) or "none"
        raise LiveError(f"no MIDI input port matching {port!r} on {api} (ports: {listing}); "
                        "see `vocoder devices`, or use --virtual")
    try:
        mi.open_port(idx, "in")
    except Exception as e:
        mi.delete()
        raise LiveError(f"cannot open MIDI port {ports[idx]!r}: {e}") from None
    return mi, f"'{ports[idx]}' ({api})"


def find_port(ports, want):
    """Index of ``want`` in ``ports``: exact name, else an index (digits), else the first
    name that contains it.
    ``None`` for no port, or the first port when ``want`` is None."""
    if want is None:
        return 0 if ports else None
    want = str(want)
    if want in ports:
        return ports.index(want)
    if want.isdigit():
        return int(want) if int(want) < len(ports) else None
    # rtmidi's JACK API lists 'client:port'; ALSA lists 'client:port cl:po'.
    hits = [i for i, p in enumerate(ports) if want in p]
    return hits[0] if hits else None


# ---------------------------------------------------------------------------------------
# The host: the audio callback and what it needs
# ---------------------------------------------------------------------------------------
def _prefaulted(shape, dtype=np.float64) -> np.ndarray:
    """A zeroed array whose pages are written now. ``np.zeros`` gets fresh pages from the
    OS untouched, so the first write to each would be a page fault inside whichever audio
    callback touches it first (and, in a VM, possibly a fault in the hypervisor too)."""
    return np.full(shape, 0, dtype)


class CallbackStats:
    """Callback time against the period, kept without allocation in the callback: a
    histogram over the whole run and a ring of the most recent callbacks.

    The engine's time per callback is the CPU time of the voices' render calls (thread
    CPU time, ``time.thread_time``), not their wall time: wall time also counts the
    moments the audio thread did not run at all (preempted by another real-time thread
    or an interrupt thread, the VM's vCPU descheduled, the GIL held by another thread
    when render returns), which is the machine's doing, not the engine's. The render
    calls' wall time is kept as well (``engine_wall_*``)."""

    #: Engine underruns whose callback index is kept (``underrun_at``).
    UNDERRUNS_KEPT = 64

    def __init__(self):
        self.hist = _prefaulted(HIST_BINS, np.int64)
        self.engine_hist = _prefaulted(HIST_BINS, np.int64)       # render calls, CPU time
        self.engine_wall_hist = _prefaulted(HIST_BINS, np.int64)  # render calls, wall time
        self.engine_max = 0.0              # the largest render CPU time / period
        self.engine_wall_max = 0.0
        self.ring_t = _prefaulted(RING)     # callback start (perf_counter seconds)
        self.ring_load = _prefaulted(RING)  # callback time / period
        self.n = 0
        self.max_load = 0.0
        self.engine_underruns = 0          # callbacks whose render calls' CPU time exceeded the period
        self.underrun_at = _prefaulted(self.UNDERRUNS_KEPT, np.int64)   # their indices (the first ones)
        self.host_overruns = 0             # callbacks whose whole CPU time exceeded it
        self.slow_callbacks = 0            # callbacks whose wall time exceeded it (any cause)
        self.cpu_max = 0.0                 # the largest callback CPU time / period
        # The 8 slowest callbacks: [index, wall / period, render / period, cpu / period, events]
        self.worst = _prefaulted((8, 5))
        self.events_now = 0                # set by the host before add()
        self.xruns = 0                     # PortAudio's output_underflow flags (any cause)
        self.errors = 0                    # exceptions caught in the callback

    def add(self, t0: float, load: float, engine: float = 0.0, cpu: float = None,
            engine_cpu: float = None) -> None:
        """One callback: its start; its wall time, the render calls' wall time, its CPU
        time and the render calls' CPU time, each / period (None: the wall time).

        An engine-caused underrun is a callback whose render calls took more CPU time
        than the period: the engine's work itself did not fit. A host overrun: the whole
        callback's CPU time did not fit (the Python around the engine included). Wall
        time beyond the CPU time is the thread not running (the OS or the VM preempting
        it, or the GIL held elsewhere): ``slow_callbacks`` counts every callback whose
        wall time exceeded the period, whatever the cause."""
        if cpu is None:
            cpu = load
        if engine_cpu is None:
            engine_cpu = engine
        if cpu > self.cpu_max:
            self.cpu_max = cpu
        if engine_cpu > 1.0:
            if self.engine_underruns < self.UNDERRUNS_KEPT:
                self.underrun_at[self.engine_underruns] = self.n
            self.engine_underruns += 1
        if cpu > 1.0:
            self.host_overruns += 1
        b = int(engine_cpu * HIST_SCALE)
        self.engine_hist[b if b < HIST_BINS else HIST_BINS - 1] += 1
        if engine_cpu > self.engine_max:
            self.engine_max = engine_cpu
        b = int(engine * HIST_SCALE)
        self.engine_wall_hist[b if b < HIST_BINS else HIST_BINS - 1] += 1
        if engine > self.engine_wall_max:
            self.engine_wall_max = engine
        i = self.n % RING
        self.ring_t[i] = t0
        self.ring_load[i] = load
        b = int(load * HIST_SCALE)
        self.hist[b if b < HIST_BINS else HIST_BINS - 1] += 1
        w = self.worst
        j = int(w[:, 1].argmin())
        if load > w[j, 1]:
            w[j, 0], w[j, 1], w[j, 2], w[j, 3], w[j, 4] = self.n, load, engine, cpu, self.events_now
        if load > self.max_load:
            self.max_load = load
        if load > 1.0:
            self.slow_callbacks += 1
        self.n += 1

    def recent(self, seconds: float = 1.0):
        """(median, max) load over the callbacks of the last ``seconds``; (0, 0) if none."""
        n = min(self.n, RING)
        if n == 0:
            return 0.0, 0.0
        t = self.ring_t[:n]
        sel = self.ring_load[:n][t >= time.perf_counter() - seconds]
        if sel.size == 0:
            return 0.0, 0.0
        return float(np.median(sel)), float(sel.max())

    def quantile(self, q: float, engine: bool = False, wall: bool = False) -> float:
        """The load at quantile ``q`` (upper edge of its 0.25 % bin; the max for q = 1);
        ``engine``: of the render calls alone (their CPU time; ``wall``: their wall time)."""
        if engine:
            hist, mx = (self.engine_wall_hist, self.engine_wall_max) if wall else (self.engine_hist, self.engine_max)
        else:
            hist, mx = self.hist, self.max_load
        total = int(hist.sum())
        if total == 0:
            return 0.0
        if q >= 1.0:
            return mx
        k = int(np.searchsorted(np.cumsum(hist), math.ceil(q * total)))
        return min((k + 1) / HIST_SCALE, mx)

    def summary(self) -> dict:
        """Callback wall time / period (median ... max), the render calls' CPU time
        (``engine_*``: the engine's own time) and wall time (``engine_wall_*``), and the
        counts; ``underrun_at``: the indices of the first engine underruns."""
        return dict(callbacks=self.n, median=self.quantile(0.5), p99=self.quantile(0.99),
                    p999=self.quantile(0.999), max=self.max_load,
                    engine_median=self.quantile(0.5, True), engine_p99=self.quantile(0.99, True),
                    engine_p999=self.quantile(0.999, True), engine_max=self.engine_max,
                    engine_wall_p999=self.quantile(0.999, True, True), engine_wall_max=self.engine_wall_max,
                    cpu_max=self.cpu_max, engine_underruns=self.engine_underruns,
                    underrun_at=[int(i) for i in self.underrun_at[:min(self.engine_underruns, self.UNDERRUNS_KEPT)]],
                    host_overruns=self.host_overruns,
                    slow_callbacks=self.slow_callbacks, xruns=self.xruns, callback_errors=self.errors,
                    worst=[dict(index=int(r[0]), wall=r[1], render=r[2], cpu=r[3], midi_events=int(r[4]))
                           for r in self.worst[np.argsort(-self.worst[:, 1])] if r[1] > 0])


def _renderers(voices) -> tuple:
    """What the callback renders: voices on one preset as one :class:`vocoder.VoiceGroup`
    (one batched engine step for all of them), anything else on its own."""
    from .voice import Voice, VoiceGroup

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
        self._batch = []                       # MIDI drained in one callback (reused)
        self.max_events = MAX_EVENTS_PER_CALLBACK
        self._commands = collections.deque()   # (voice index or None, method name, args)
        self.stats = CallbackStats()
        self.midi_events = 0
        self._render_time = 0.0
        self._render_cpu = 0.0
        self.position = 0                      # device samples rendered so far
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
        self._rt = 0.0                # sum of rtmidi's delta times: its clock, origin unknown
        self._clock = math.inf        # perf_counter - rtmidi clock, estimated (min filter)
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
            for v in (voices if vi is None else (voices[vi],)):
                getattr(v, method)(*args)
        midi = self._midi
        if midi is not None:
            self._pull_midi(midi, routes, frames, t0)
        renderers = self._renderers
        if frames > MAX_BLOCK:   # render in slices; events were placed in the first
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
            voices[0].render(mono)   # voices: the renderers (voice groups)
            for v in voices[1:]:
                v.render(self._scratch[:n])
                np.add(mono, self._scratch[:n], out=mono)
            if outdata.ndim == 1:
                outdata[s:s + n] = mono
            else:
                outdata[s:s + n] = mono[:, None]

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
                off = int((t + base) * sr + frames + 0.5)   # nearest sample (x > -0.5 here)
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
        return self._log[:self._log_n].copy()

    def status_line(self) -> str:
        med, mx = self.stats.recent(1.0)
        return (f"load {100 * med:5.1f}% med {100 * mx:5.1f}% max | engine underruns "
                f"{self.stats.engine_underruns} (host overruns {self.stats.host_overruns}, late callbacks "
                f"{self.stats.slow_callbacks}, xruns "
                f"{self.stats.xruns}) | dropped {self.dropped_events} "
                f"| midi {self.midi_events} | {self.syllable}")


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
        voice.pitch_bend(b / 8192.0, offset)   # as the file readers: -8192..8191 over 8192, one scale
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


# ---------------------------------------------------------------------------------------
# OSC control (127.0.0.1 only)
# ---------------------------------------------------------------------------------------
class OscControl:
    """OSC server on 127.0.0.1:port. Addresses (an optional last int argument names a MIDI
    channel 1-16; without it every voice is meant):

    ========================  ==============================================
    /vocoder/preset NAME [ch]  switch the voice of channel ch (or every voice) to a preset
    /vocoder/lyrics TEXT [ch]  load lyrics (the cursor restarts)
    /vocoder/vibrato X [ch]    vibrato depth, 0..1 (float) or 0..127 (int): CC 1
    /vocoder/cc N V [ch]       any control change
    /vocoder/lyric_step N [ch] move the lyric cursor by N syllables (-1: back one)
    /vocoder/lyric_restart [ch]
    /vocoder/panic             every note off, now
    ========================  ==============================================
    """

    def __init__(self, host: LiveHost, port: int, make_voice, log=None):
        from pythonosc import dispatcher, osc_server

        self.host = host
        self.make_voice = make_voice
        self.lyrics_text = {}     # voice index -> the lyrics OSC loaded (a new preset keeps them)
        self.log = log or (lambda s: None)
        d = dispatcher.Dispatcher()
        for name in ("preset", "lyrics", "vibrato", "cc", "lyric_step", "lyric_restart", "panic"):
            d.map(f"/vocoder/{name}", self._guard(getattr(self, "_" + name)))
        d.set_default_handler(lambda addr, *a: self.log(f"osc: unknown address {addr}"))
        self.server = osc_server.ThreadingOSCUDPServer(("127.0.0.1", int(port)), d)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="vocoder-osc", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _guard(self, fn):
        def handler(addr, *args):
            try:
                fn(*args)
            except Exception as e:  # a bad message must not kill the server
                self.log(f"osc {addr} {list(args)}: {e}")
        return handler

    def _targets(self, ch):
        """Voice indices for an optional 1-based channel argument."""
        if ch is None:
            return list(range(len(self.host.voices)))
        ch = int(ch)
        if not 1 <= ch <= 16:
            raise ValueError(f"channel must be 1..16, got {ch}")
        vi = self.host.routing[ch - 1]
        if vi is None:
            raise ValueError(f"channel {ch} is not routed to a voice")
        return [vi]

    def _preset(self, name, ch=None):
        for vi in self._targets(ch):
            new = self.make_voice(str(name), vi)
            if vi in self.lyrics_text:
                new.lyrics(self.lyrics_text[vi])
            self.host.replace_voice(vi, new)
        self.log(f"osc: preset {name}")

    def _lyrics(self, text, ch=None):
        # Lyrics are parsed on this thread (never in the callback); the voice swaps them in.
        for vi in self._targets(ch):
            self.host.voices[vi].lyrics(str(text))
            self.lyrics_text[vi] = str(text)
        self.log(f"osc: lyrics {str(text)[:40]!r}")

    def _vibrato(self, x, ch=None):
        v = int(round(float(x) * 127)) if isinstance(x, float) else int(x)
        for vi in self._targets(ch):
            self.host.post("control", 1, max(0, min(127, v)), 0, voice=vi)

    def _cc(self, cc, value, ch=None):
        for vi in self._targets(ch):
            self.host.post("control", int(cc), max(0, min(127, int(value))), 0, voice=vi)

    def _lyric_step(self, n=1, ch=None):
        for vi in self._targets(ch):
            self.host.voices[vi].lyric_step(int(n))

    def _lyric_restart(self, ch=None):
        for vi in self._targets(ch):
            self.host.voices[vi].lyric_restart()

    def _panic(self, *args):
        self.host.post("panic")
        self.log("osc: panic")


# ---------------------------------------------------------------------------------------
# vocoder live
# ---------------------------------------------------------------------------------------
def parse_channels(specs, default_preset):
    """``["1=alto", "2=bass"]`` -> (preset names in voice order, 16-entry routing).
    Without specs every channel goes to ``default_preset`` (omni). With specs, channels
    not named go to ``default_preset`` only if it was given explicitly (not None)."""
    names, routing = [], [None] * 16
    for spec in specs or ():
        ch, sep, preset = spec.partition("=")
        if not sep or not ch.strip().isdigit() or not preset.strip():
            raise LiveError(f"--channel {spec!r}: expected CH=PRESET with CH in 1..16")
        c = int(ch)
        if not 1 <= c <= 16:
            raise LiveError(f"--channel {spec!r}: channel must be 1..16")
        if routing[c - 1] is not None:
            raise LiveError(f"--channel {spec!r}: channel {c} is routed twice")
        names.append(preset.strip())
        routing[c - 1] = len(names) - 1
    if not specs:
        names.append(default_preset or "default")
        routing = [0] * 16
    elif default_preset is not None:
        names.append(default_preset)
        routing = [len(names) - 1 if r is None else r for r in routing]
    return names, routing


def read_lyrics(arg):
    """``--lyrics``: a file's text if it names a file, else the text itself."""
    if arg is None:
        return None
    if os.path.isfile(arg):
        with open(arg, encoding="utf-8") as f:
            return f.read()
    return arg


def _pick_device(sd, device, api):
    """The output device: --device as given, else with --api jack the JACK host API's
    default output when PortAudio has one (so audio and MIDI share a server)."""
    if device is not None:
        return int(device) if str(device).isdigit() else device
    if api == "jack":
        for ha in sd.query_hostapis():
            if "JACK" in ha["name"] and ha["default_output_device"] >= 0:
                return ha["default_output_device"]
    return None


def run_live(args, out=sys.stderr) -> int:
    """The ``vocoder live`` main loop. Returns the exit status."""
    import vocoder

    def say(s):
        print(s, file=out, flush=True)

    if not hasattr(vocoder, "Voice"):
        raise LiveError("this build has no vocoder.Voice (the compiled live core); rebuild: pip install -e .")
    names, routing = parse_channels(args.channel, args.preset)
    lyrics = read_lyrics(args.lyrics)
    rate = int(args.rate)
    cache = {}

    def load(name):
        if name not in cache:
            cache[name] = vocoder.load_preset(name)
        return cache[name]

    def make_voice(name, index):
        v = vocoder.Voice(load(name), sample_rate=rate, seed=int(args.seed) + index)
        if lyrics:
            v.lyrics(lyrics)
        return v

    voices = [make_voice(n, i) for i, n in enumerate(names)]

    try:
        import sounddevice as sd
    except (ImportError, OSError) as e:
        raise LiveError(f"sounddevice unavailable ({e}); install libportaudio2 and sounddevice") from None
    device = _pick_device(sd, args.device, args.api)
    try:
        info = sd.query_devices(device, "output")
    except (ValueError, sd.PortAudioError) as e:
        if device is None:
            raise LiveError("no audio output device (no sound card, and no JACK server for PortAudio to "
                            "use?); see `vocoder devices`") from None
        raise LiveError(f"audio output device {args.device!r}: {e}; see `vocoder devices`") from None
    channels = max(1, min(2, int(info["max_output_channels"])))

    midi, midi_desc = open_midi_in(args.api, args.midi_in, args.virtual, name=args.client_name)
    midi_port_name = None if args.virtual else midi_desc.split("'")[1]
    probe = _PortProbe(args.api) if midi_port_name else None
    total = 0
    host = LiveHost(voices, routing, rate, midi, channels=channels,
                    event_log=args.event_log_size if args.event_log else 0)

    stop = threading.Event()
    reason = ["stopped"]

    def on_signal(signum, frame):
        reason[0] = signal.Signals(signum).name
        stop.set()

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    old_switch = sys.getswitchinterval()
    osc = None
    stream = None
    code = 0
    vanished = False
    # The audio callback needs the GIL, and this thread takes it ten times a second: if
    # the OS preempted it while holding it (a busy machine), the callback would wait a
    # whole scheduler tick. SCHED_FIFO at the lowest priority (where allowed) prevents
    # that; the OSC thread, made from this one, inherits it. Both sleep nearly always.
    housekeeping_rt = _sched_fifo_lowest(True)
    try:
        try:
            stream = sd.OutputStream(samplerate=rate, blocksize=int(args.blocksize), device=device,
                                     channels=channels, dtype="float32", callback=host.callback,
                                     latency="low", finished_callback=lambda: None)
        except sd.PortAudioError as e:
            raise LiveError(f"cannot open audio output {info['name']!r} at {rate} Hz, "
                            f"block {args.blocksize}: {e}") from None
        if args.osc_port is not None:
            osc = OscControl(host, args.osc_port, make_voice, log=say).start()
        lat_engine = max(v.latency_samples for v in voices)
        lat_dev = stream.latency * rate
        total = lat_engine + int(args.blocksize) + lat_dev
        say(f"vocoder live: {len(voices)} voice(s) "
            + ", ".join(f"ch {','.join(str(c + 1) for c in range(16) if routing[c] == i) if routing.count(i) < 16 else 'all'}"
                        f"={n}" for i, n in enumerate(names)))
        say(f"  MIDI in: {midi_desc}   audio out: {info['name']!r} ({channels} ch, {rate} Hz, block {args.blocksize})"
            + (f"   OSC: 127.0.0.1:{osc.port}" if osc else ""))
        say(f"  latency: engine+singer {lat_engine} + block {args.blocksize} + device {lat_dev:.0f} "
            f"= {total:.0f} samples = {1000 * total / rate:.1f} ms")
        # The callback is Python: keep the collector off the objects made at start-up (a
        # full collection of them takes milliseconds, inside whichever callback triggers
        # it), and let the audio thread get the GIL back quickly after render.
        gc.collect()
        gc.freeze()
        sys.setswitchinterval(SWITCH_INTERVAL)
        stream.start()
        t_start = time.monotonic()
        next_status = t_start + 1.0
        next_port_check = t_start + 1.0
        port_gone = False
        tty = out.isatty() if hasattr(out, "isatty") else False
        last_n, last_progress = -1, t_start
        while not stop.wait(0.1):
            now = time.monotonic()
            if host.stats.n != last_n:
                last_n, last_progress = host.stats.n, now
            # Gone: PortAudio stopped the stream, or the callbacks stopped coming.
            if not stream.active or now - last_progress > 2.0:
                vanished = True
                reason[0] = "audio device vanished"
                break
            if args.duration and now - t_start >= args.duration:
                reason[0] = "duration reached"
                break
            if midi_port_name and now >= next_port_check:
                next_port_check = now + 1.0
                alive = probe.listed(midi_port_name)
                if not alive and not port_gone:
                    port_gone = True
                    host.post("panic")       # a keyboard unplugged mid-note: no stuck note
                    say(f"\nMIDI port {midi_port_name!r} vanished: all notes off; waiting for it")
                elif alive and port_gone:
                    port_gone = False
                    host.set_midi(None)
                    try:
                        midi.close_port()
                        idx = find_port(midi.get_ports(), midi_port_name)
                        midi.open_port(idx, "in")
                        say(f"MIDI port {midi_port_name!r} is back")
                    except Exception as e:
                        say(f"MIDI port {midi_port_name!r} is back but cannot be opened: {e}")
                    host.set_midi(midi)
            if args.status and now >= next_status:
                next_status = now + 1.0
                line = host.status_line()
                print(("\r" + line + "   ") if tty else line, file=out, end="" if tty else "\n", flush=True)
        if tty and args.status:
            print(file=out)
    finally:
        # No stuck note: every voice gets a panic, and while the device lives it plays
        # the release before the stream stops.
        host.set_midi(None)
        host.post("panic")
        if stream is not None and stream.active and not vanished:
            time.sleep(min(0.5, 2 * (max(v.latency_samples for v in voices) + int(args.blocksize)) / rate + 0.05))
        if osc is not None:
            osc.close()
        for s, h in old_handlers.items():
            signal.signal(s, h)
        # With the device gone (a JACK server that died) PortAudio's and rtmidi's teardown
        # would wait on it forever: leave those to the OS (os._exit below).
        # The stream first: closing rtmidi's JACK client holds the GIL during a server
        # round trip, which would make the last callbacks wait.
        if not vanished:
            if stream is not None:
                try:
                    stream.stop()
                    stream.close()
                except Exception:
                    pass
            try:
                midi.close_port()
                midi.delete()
            except Exception:
                pass
            if probe is not None:
                probe.close()
        # Only now that no callback runs: back to the ordinary scheduling.
        sys.setswitchinterval(old_switch)
        gc.unfreeze()
        if housekeeping_rt:
            _sched_fifo_lowest(False)
    summary = host.stats.summary()
    summary.update(dropped_events=host.dropped_events, midi_events=host.midi_events, samples=host.position,
                   voice_latency_samples=max(v.latency_samples for v in voices),
                   voice_underrun_samples=host.voice_underrun_samples, period_frames=int(args.blocksize),
                   sample_rate=rate, latency_samples=int(total), reason=reason[0])
    say(f"vocoder live: {reason[0]}; {summary['callbacks']} callbacks, load median "
        f"{100 * summary['median']:.1f}% p99.9 {100 * summary['p999']:.1f}% max {100 * summary['max']:.1f}%, "
        f"engine underruns {summary['engine_underruns']} (host overruns {summary['host_overruns']}, "
        f"late callbacks {summary['slow_callbacks']}, "
        f"xruns {summary['xruns']}), "
        f"dropped events {summary['dropped_events']}")
    if args.stats_json:
        with open(args.stats_json, "w") as f:
            json.dump(summary, f, indent=1)
    if args.event_log:
        np.save(args.event_log, host.logged_events())
    if vanished:
        code = 3
        # PortAudio's JACK client hangs or asserts at exit once its server is gone: skip
        # its teardown (the OS reclaims the rest).
        sys.stdout.flush()
        out.flush()
        os._exit(code)
    try:
        sd._terminate()
    except Exception:
        pass
    return code


def _sched_fifo_lowest(on: bool) -> bool:
    """SCHED_FIFO priority 1 for the calling thread (or back to SCHED_OTHER)."""
    try:
        if on:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        else:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        return True
    except (AttributeError, OSError):
        return False


class _PortProbe:
    """Whether a MIDI port still exists. Its own rtmidi client, made once (creating JACK
    clients reorders the graph, which can glitch the audio) and used only by the main
    thread, so the input the callback reads is never touched."""

    def __init__(self, api: str):
        import rtmidi

        try:
            self._mi = rtmidi.MidiIn(_rtmidi_api(api), "vocoder-probe")
        except Exception:
            self._mi = None

    def listed(self, name: str) -> bool:
        if self._mi is None:
            return True   # cannot tell: assume it is there
        try:
            return name in self._mi.get_ports()
        except Exception:
            return True

    def close(self):
        if self._mi is not None:
            self._mi.delete()
            self._mi = None
