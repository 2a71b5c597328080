"""Callback statistics: how long each audio callback took against its period, kept
without allocating (histograms and a ring of recent callbacks, prefaulted)."""

from __future__ import annotations

import math
import time

import numpy as np

#: Histogram of callback time as a fraction of the period: bins of 1/400 (0.25 %) up to 4.
HIST_BINS = 1600
HIST_SCALE = 400.0
#: Ring of recent callbacks, for "the last second" (enough for 64-frame blocks at 192 kHz).
RING = 4096


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
        self.engine_hist = _prefaulted(HIST_BINS, np.int64)  # render calls, CPU time
        self.engine_wall_hist = _prefaulted(HIST_BINS, np.int64)  # render calls, wall time
        self.engine_max = 0.0  # the largest render CPU time / period
        self.engine_wall_max = 0.0
        self.ring_t = _prefaulted(RING)  # callback start (perf_counter seconds)
        self.ring_load = _prefaulted(RING)  # callback time / period
        self.n = 0
        self.max_load = 0.0
        self.engine_underruns = 0  # callbacks whose render calls' CPU time exceeded the period
        self.underrun_at = _prefaulted(self.UNDERRUNS_KEPT, np.int64)  # their indices (the first ones)
        self.host_overruns = 0  # callbacks whose whole CPU time exceeded it
        self.slow_callbacks = 0  # callbacks whose wall time exceeded it (any cause)
        self.cpu_max = 0.0  # the largest callback CPU time / period
        # The 8 slowest callbacks: [index, wall / period, render / period, cpu / period, events]
        self.worst = _prefaulted((8, 5))
        self.events_now = 0  # set by the host before add()
        self.xruns = 0  # PortAudio's output_underflow flags (any cause)
        self.errors = 0  # exceptions caught in the callback

    def add(
        self, t0: float, load: float, engine: float = 0.0, cpu: float | None = None, engine_cpu: float | None = None
    ) -> None:
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
        return dict(
            callbacks=self.n,
            median=self.quantile(0.5),
            p99=self.quantile(0.99),
            p999=self.quantile(0.999),
            max=self.max_load,
            engine_median=self.quantile(0.5, True),
            engine_p99=self.quantile(0.99, True),
            engine_p999=self.quantile(0.999, True),
            engine_max=self.engine_max,
            engine_wall_p999=self.quantile(0.999, True, True),
            engine_wall_max=self.engine_wall_max,
            cpu_max=self.cpu_max,
            engine_underruns=self.engine_underruns,
            underrun_at=[int(i) for i in self.underrun_at[: min(self.engine_underruns, self.UNDERRUNS_KEPT)]],
            host_overruns=self.host_overruns,
            slow_callbacks=self.slow_callbacks,
            xruns=self.xruns,
            callback_errors=self.errors,
            worst=[
                dict(index=int(r[0]), wall=r[1], render=r[2], cpu=r[3], midi_events=int(r[4]))
                for r in self.worst[np.argsort(-self.worst[:, 1])]
                if r[1] > 0
            ],
        )
