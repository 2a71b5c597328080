"""``vocoder bench live``: how much of each audio period live singing takes.

Runs the live host's own audio callback (:meth:`vocoder.hosts.live.LiveHost.callback`: pull
MIDI, place events, render every voice, copy to two channels) OFFLINE, with no audio
device: a loop calls it once per period, paced by the clock like a device would (sleeping
until each period's deadline), or back to back with ``--unpaced``. Each call is timed;
the table gives the callback time as a fraction of the period (median, p99, p99.9, max)
for 64, 128 and 256 frames at 48 kHz, with one and four voices. Meanwhile a busy process
loads the other core (``--no-load`` to leave it idle), and where the OS allows it the
loop runs SCHED_FIFO like a real audio thread (the table says whether it did).

A MIDI stream plays throughout (a legato phrase, a new note every 0.25 s, and the mod
wheel every 10 ms), so the singer and the engine are always busy and events are placed
in most blocks. The preset: ``--preset``, else ``default`` when installed, else a random
preset of the shipped size (H = 384, 90 % block-sparse, 16 kHz, 26 features).

Target (issue 6): p99.9 <= 25 % of a 128-frame period at 48 kHz for one voice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from ..hosts.live.realtime import set_sched_fifo

RATE = 48000
BLOCKS = (64, 128, 256)
VOICES = (1, 4)
TARGET = 0.25


class _Phrase:
    """A MIDI source for the host: rtmidi's ``get_message`` shape, driven by the loop's clock."""

    def __init__(self):
        self.t = 0.0  # seconds of audio played
        self.last = 0.0  # time of the last message returned
        self.next_note = 0.0
        self.next_cc = 0.0
        self.k = 0
        self.held = None
        self.pending = []

    def advance(self, seconds):
        self.t += seconds
        while self.next_note <= self.t:
            note = 55 + (self.k * 5) % 12
            for ch in range(4):
                self.pending.append(([0x90 | ch, note, 100], self.next_note))
                if self.held is not None:  # legato: the new key before the old one goes
                    self.pending.append(([0x80 | ch, self.held, 0], self.next_note))
            self.held = note
            self.k += 1
            self.next_note += 0.25
        while self.next_cc <= self.t:
            v = int(64 + 63 * np.sin(self.next_cc * 6.0))
            for ch in range(4):
                self.pending.append(([0xB0 | ch, 1, v], self.next_cc))
            self.next_cc += 0.01
        self.pending.sort(key=lambda m: m[1])

    def get_message(self):
        if not self.pending:
            return None
        msg, t = self.pending.pop(0)
        delta, self.last = t - self.last, t
        return msg, max(0.0, delta)


def _bench_preset(name):
    import vocoder
    from vocoder.engine import presets
    from vocoder.testing import random_preset

    if name:
        return vocoder.load_preset(name), str(name)
    try:
        return vocoder.load_preset("default"), "default"
    except presets.PresetError:
        p = random_preset(hidden=384, density=0.1, n_features=26, hop=80, sample_rate=16000, seed=0)
        return p, "random H384 10% 16kHz (no default preset installed)"


def _loader():
    """A busy process on the other core (None on one core)."""
    if (os.cpu_count() or 1) < 2:
        return None
    p = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
    try:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:
            os.sched_setaffinity(p.pid, {cpus[1]})
    except (AttributeError, OSError):
        pass
    return p


def run_case(preset, frames: int, n_voices: int, seconds: float, paced: bool = True) -> dict:
    """Time ``seconds`` of audio through the host callback; one record."""
    import vocoder
    from vocoder.hosts.live import LiveHost

    voices = [vocoder.Voice(preset, sample_rate=RATE, seed=i) for i in range(n_voices)]
    for v in voices:
        v.lyrics("twin kle twin kle lit tle star how i won der what you are")
    routing = [i if i < n_voices else None for i in range(16)]
    src = _Phrase()
    host = LiveHost(voices, routing, RATE, src, channels=2)
    out = np.zeros((frames, 2), np.float32)
    period = frames / RATE
    n = max(1, int(round(seconds / period)))
    times = np.zeros(n)
    render = np.zeros(n)
    render_wall = np.zeros(n)
    for _ in range(int(0.2 / period)):  # warm up caches and the singer
        src.advance(period)
        host.callback(out, frames, None, None)
    pc = time.perf_counter
    rt = set_sched_fifo(70) if paced else False  # never SCHED_FIFO back to back: it would starve the core
    try:
        start = pc()
        for i in range(n):
            if paced:
                wait = start + i * period - pc()
                if wait > 0:
                    time.sleep(wait)
            src.advance(period)
            t0 = pc()
            host.callback(out, frames, None, None)
            times[i] = pc() - t0
            render[i] = host._render_cpu  # thread CPU time, as the live host reports it
            render_wall[i] = host._render_time
    finally:
        if rt:
            set_sched_fifo(None)
    load = times / period
    eng = render / period
    eng_wall = render_wall / period
    return dict(
        frames=frames,
        voices=n_voices,
        period_us=1e6 * period,
        callbacks=n,
        paced=paced,
        sched_fifo=rt,
        median=float(np.median(load)),
        p99=float(np.quantile(load, 0.99)),
        p999=float(np.quantile(load, 0.999)),
        max=float(load.max()),
        engine_median=float(np.median(eng)),
        engine_p999=float(np.quantile(eng, 0.999)),
        engine_wall_median=float(np.median(eng_wall)),
        engine_wall_p999=float(np.quantile(eng_wall, 0.999)),
        over_period=int((load > 1.0).sum()),
        errors=host.stats.errors,
        dropped_events=host.dropped_events,
        underrun_samples=host.voice_underrun_samples,
        latency_samples=max(v.latency_samples for v in voices),
    )


def bench_live(preset=None, seconds: float = 5.0, paced: bool = True, load: bool = True):
    p, desc = _bench_preset(preset)
    loader = _loader() if load else None
    try:
        records = []
        for frames in BLOCKS:
            for nv in VOICES:
                r = run_case(p, frames, nv, seconds, paced)
                r.update(preset=desc, other_core_loaded=loader is not None)
                records.append(r)
    finally:
        if loader is not None:
            loader.kill()
            loader.wait()
    return records


def format_table(records) -> str:
    if not records:
        return ""
    r0 = records[0]
    lines = [
        f"preset: {r0['preset']}; {RATE} Hz; {'paced once per period' if r0['paced'] else 'unpaced'}; "
        f"SCHED_FIFO {'yes' if r0['sched_fifo'] else 'no'}; other core "
        f"{'loaded by a busy process' if r0['other_core_loaded'] else 'idle'}; "
        f"voice latency {r0['latency_samples']} samples",
        "",
        "| frames | voices | period us | median | p99 | p99.9 | max | render alone: median | p99.9 "
        "| callbacks over the period |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        lines.append(
            f"| {r['frames']} | {r['voices']} | {r['period_us']:.0f} | {100 * r['median']:.1f}% | "
            f"{100 * r['p99']:.1f}% | {100 * r['p999']:.1f}% | {100 * r['max']:.1f}% | "
            f"{100 * r['engine_median']:.1f}% | {100 * r['engine_p999']:.1f}% | "
            f"{r['over_period']} of {r['callbacks']} |"
        )
    one = [r for r in records if r["frames"] == 128 and r["voices"] == 1]
    if one:
        ok = one[0]["p999"] <= TARGET
        lines.append("")
        lines.append(
            f"target p99.9 <= {100 * TARGET:.0f}% of a 128-frame period, one voice: "
            f"{100 * one[0]['p999']:.1f}% -> {'met' if ok else 'NOT met'}"
        )
    return "\n".join(lines)


def main(args) -> int:
    seconds = args.seconds if args.seconds else (1.0 if args.quick else 5.0)
    records = bench_live(preset=args.preset, seconds=seconds, paced=not args.unpaced, load=not args.no_load)
    print(json.dumps(records, indent=1) if args.json else format_table(records))
    return 0
