"""``vocoder bench engine``: the engine's real-time factor on one core, and what it is made of.

Random presets at 90% block sparsity, each run against the kernels alone (the share of
time in the matrix products) and, for the predictor, against the same network without
it. Medians of many repeats: these machines are shared and noisy.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from ..engine import kernels

#: (hidden, sample_rate, subscale)
ENGINE_CASES = [(h, sr, b) for h in (384, 512) for sr in (16000, 24000) for b in (1, 16)]


def bench_engine(seconds: float = 1.0, repeats: int = 3, density: float = 0.1, quick: bool = False) -> list[dict]:
    """Real-time factor of the engine on one core for random presets at 90% block
    sparsity (dual softmax), with the share of time spent in the matrix kernels.

    ``rtf`` = seconds of compute per second of audio (lower is better; 1/rtf is the
    speed-up over real time). ``gemv_us`` is the kernel time per sample measured by
    timing the same matrices alone; ``other_us`` is everything else (conditioning,
    quantisation, gates, sampling). ``cpu_us_per_sample`` is the thread's CPU time
    (``time.thread_time``) per sample, median over the same runs: on a shared machine
    the wall time also counts the time the thread waited for a core, the CPU time does
    not. ``peak_rss_mb`` is the process's peak resident memory after the run.
    """
    import resource

    from ..engine.wavernn import Vocoder
    from ..testing import random_preset

    if quick:
        seconds, repeats = 0.25, 1
    records = []
    for hidden, sr, b in ENGINE_CASES:
        p = random_preset(
            hidden=hidden, density=density, head="dual", subscale=b, sample_rate=sr, seed=0, horizon=1 if b > 1 else 0
        )
        v = Vocoder(p, seed=0)
        frames = max(1, int(seconds * sr) // p.hop)
        feats = np.random.default_rng(0).normal(size=(frames, p.n_features)).astype(np.float32)
        v.vocode(feats)  # untimed: the first call also pays page faults and cold caches
        times, cpu_times = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.thread_time()
            audio = v.vocode(feats)
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.thread_time() - c0)
        total_us = statistics.median(times) / audio.shape[0] * 1e6
        cpu_us = statistics.median(cpu_times) / audio.shape[0] * 1e6
        level = kernels.active_level()
        gemv_ns = 0.0
        for layer in p.layers.values():
            m = kernels.BlockSparseMatrix(layer.packed)
            ns = float(np.median(m.time_calls(level, batch=b, calls=50, repeats=5)))
            gemv_ns += ns / b  # one call serves b samples
        records.append(
            dict(
                name=f"H{hidden} {sr // 1000}kHz B={b}",
                hidden=hidden,
                density=density,
                sample_rate=sr,
                subscale=b,
                level=level,
                rtf=total_us * 1e-6 * sr,
                x_realtime=1.0 / (total_us * 1e-6 * sr),
                us_per_sample=total_us,
                gemv_us=gemv_ns / 1000,
                other_us=total_us - gemv_ns / 1000,
                cpu_us_per_sample=cpu_us,
                rtf_cpu=cpu_us * 1e-6 * sr,
                peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            )
        )
        if b == 1 and hidden == 384 and sr == 16000:
            records.append(_numpy_baseline(p, feats, sr, repeats, density))
    records += _predictor_cost(seconds, max(3, repeats), density)
    return records


PREDICTOR_CASES = (256, 384)


def _predictor_cost(seconds, repeats, density) -> list:
    """What the predictor costs (docs/model.md, "Prediction"): the shipped kind of network
    (mu-law 8 bit, 26 features, 16 kHz, B = 1) with and without it, run alternately so
    both see the same machine; medians of the thread's CPU time."""
    from ..engine.wavernn import Vocoder
    from ..testing import random_preset

    out = []
    for hidden in PREDICTOR_CASES:
        kw = dict(hidden=hidden, density=density, head="mulaw", mulaw_bits=8, n_features=26, seed=0)
        pair = {
            "mulaw": random_preset(**kw),
            "mulaw+predictor": random_preset(predictor="lpc+pitch", preemphasis=0.6, **kw),
        }
        frames = max(1, int(seconds * 16000) // 80)
        rng = np.random.default_rng(0)
        feats = rng.normal(size=(frames, 26)).astype(np.float32)
        feats[:, 0], feats[:, 1] = 50 + 10 * rng.random(frames), rng.random(frames) > 0.3
        vs = {k: Vocoder(p, seed=0) for k, p in pair.items()}
        cpu: dict[str, list[float]] = {k: [] for k in vs}
        for v in vs.values():
            v.vocode(feats)  # untimed warm-up
        for _ in range(repeats):
            for k, v in vs.items():
                c0 = time.thread_time()
                n = v.vocode(feats).shape[0]
                cpu[k].append((time.thread_time() - c0) / n * 1e6)
        base = statistics.median(cpu["mulaw"])
        for k, times in cpu.items():
            us = statistics.median(times)
            out.append(
                dict(
                    name=f"H{hidden} 16kHz B=1 {k}",
                    hidden=hidden,
                    density=density,
                    sample_rate=16000,
                    subscale=1,
                    level=kernels.active_level(),
                    rtf=us * 1e-6 * 16000,
                    x_realtime=1.0 / (us * 1e-6 * 16000),
                    us_per_sample=us,
                    gemv_us=None,
                    other_us=None,
                    cpu_us_per_sample=us,
                    rtf_cpu=us * 1e-6 * 16000,
                    peak_rss_mb=None,
                    relative_to_plain=us / base,
                )
            )
    return out


def _numpy_baseline(p, feats, sr, repeats, density) -> dict:
    """What a user would write instead: the same network in numpy float32, sample by
    sample (``vocoder.engine.reference.ReferenceModel.generate``: dense dequantised matrices,
    BLAS GEMV per step). A few frames suffice; it is slow."""
    from ..engine.reference import ReferenceModel

    ref = ReferenceModel(p, dtype=np.float32)
    few = feats[: max(2, 800 // p.hop)]
    times, cpu_times = [], []
    for _ in range(max(1, min(repeats, 2))):
        t0, c0 = time.perf_counter(), time.thread_time()
        audio = ref.generate(few, seed=0)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.thread_time() - c0)
    us = statistics.median(times) / audio.shape[0] * 1e6
    cpu_us = statistics.median(cpu_times) / audio.shape[0] * 1e6
    return dict(
        name=f"H{p.hidden} {sr // 1000}kHz B=1",
        hidden=p.hidden,
        density=density,
        sample_rate=sr,
        subscale=1,
        level="numpy-f32 (reference.py)",
        rtf=us * 1e-6 * sr,
        x_realtime=1.0 / (us * 1e-6 * sr),
        us_per_sample=us,
        gemv_us=None,
        other_us=None,
        cpu_us_per_sample=cpu_us,
        rtf_cpu=cpu_us * 1e-6 * sr,
        peak_rss_mb=None,
    )


def format_engine_table(records: list[dict]) -> str:
    lines = [
        "| case | level | RTF (median) | x real time | us/sample | GEMV us | other us | CPU us/sample | RTF (CPU) "
        "| peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def num(x, fmt):  # the numpy baseline has no kernel time or memory column
        return "-" if x is None else format(x, fmt)

    for r in records:
        lines.append(
            f"| {r['name']} | {r['level']} | {r['rtf']:.3f} | {r['x_realtime']:.1f} | "
            f"{r['us_per_sample']:.2f} | {num(r['gemv_us'], '.2f')} | {num(r['other_us'], '.2f')} | "
            f"{r['cpu_us_per_sample']:.2f} | {r['rtf_cpu']:.3f} | {num(r['peak_rss_mb'], '.0f')} |"
        )
    return "\n".join(lines)
