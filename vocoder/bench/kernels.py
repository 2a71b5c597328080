"""``vocoder bench kernels``: kernel speed per level, against what a user would pick instead.

``vocoder bench kernels`` times every kernel level on the matrix sizes of a WaveRNN /
LPCNet GRU and, in the same run, what a user would pick instead: numpy's dense float32
``W @ x`` and scipy.sparse CSR float32. Medians of many repeats: these machines are
shared and noisy.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from ..engine import kernels

#: (name, rows, cols, block density, batch)
KERNEL_CASES = [
    ("a: GRU 1152x384 10%", 1152, 384, 0.10, 1),
    ("b: 1536x512 10%", 1536, 512, 0.10, 1),
    ("c: 1152x384 dense", 1152, 384, 1.00, 1),
    ("d: (a) batched N=16", 1152, 384, 0.10, 16),
]


def block_sparse_weights(rows: int, cols: int, density: float, seed: int = 0) -> np.ndarray:
    """A random int8 matrix with exactly round(density * blocks) 16x4 blocks kept, each
    row block getting its share (as pruning to a fixed density does)."""
    rng = np.random.default_rng(seed)
    rb, cb = rows // 16, cols // 4
    per_row = max(1, int(round(density * cb)))
    keep = np.zeros((rb, cb), bool)
    for r in range(rb):
        keep[r, rng.choice(cb, per_row, replace=False)] = True
    w = rng.integers(-64, 64, (rows, cols)).astype(np.int8)
    mask = np.repeat(np.repeat(keep, 16, axis=0), 4, axis=1)
    return np.where(mask, w, 0).astype(np.int8)


def _time_python(fn, calls: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter_ns() - t0) / calls)
    return statistics.median(samples)


def bench_kernels(levels=None, repeats: int = 51, quick: bool = False, progress=None) -> list[dict]:
    """Run the kernel benchmark; one record per (case, implementation).
    ``progress(done, total, what)`` is called after each measurement (it takes a while:
    about 25 s for the full run)."""
    levels = levels or kernels.available_levels()
    if quick:
        repeats = 5
    records: list[dict] = []
    total = len(KERNEL_CASES) * (len(levels) + 2)

    def step(what):
        if progress is not None:
            progress(min(len(records), total), total, what)

    for name, rows, cols, density, batch in KERNEL_CASES:
        w = block_sparse_weights(rows, cols, density)
        m = kernels.BlockSparseMatrix.from_dense(w)
        macs = m.nnz_blocks * 64 * batch
        base = dict(
            name=name, rows=rows, cols=cols, density=round(m.density, 4), batch=batch, weight_bytes=m.weight_bytes
        )
        for level in levels:
            ns = float(
                np.median(m.time_calls(level, batch=batch, calls=20 if level == "ref" else 200, repeats=repeats))
            )
            records.append(dict(base, level=level, ns_per_call=ns, gmacs=macs / ns))
            step(f"{name} {level}")
        # What a user would pick instead, same matrix in float32.
        wf = w.astype(np.float32)
        x = np.random.default_rng(1).normal(size=(cols, batch) if batch > 1 else cols).astype(np.float32)
        ns = _time_python(lambda wf=wf, x=x: wf @ x, 20 if quick else 200, repeats)
        records.append(dict(base, level="numpy-dense-f32", ns_per_call=ns, gmacs=macs / ns, weight_bytes=wf.nbytes))
        step(f"{name} numpy")
        try:
            import scipy.sparse as sp
        except ImportError:
            total -= len(KERNEL_CASES)
            continue
        csr = sp.csr_matrix(wf)
        ns = _time_python(lambda csr=csr, x=x: csr @ x, 20 if quick else 200, repeats)
        records.append(
            dict(
                base,
                level="scipy-csr-f32",
                ns_per_call=ns,
                gmacs=macs / ns,
                weight_bytes=csr.data.nbytes + csr.indices.nbytes + csr.indptr.nbytes,
            )
        )
        step(f"{name} scipy")
    return records


class StepProgress:
    """``progress(done, total, what)`` on stderr: one line redrawn on a terminal, else a
    line per step (so a log shows what ran, without carriage-return frames)."""

    def __init__(self, label: str, stream=None):
        import sys

        self.label, self.stream = label, stream or sys.stderr
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False

    def __call__(self, done: int, total: int, what: str) -> None:
        line = f"{self.label}: {done}/{total} {what}"
        if self.tty:
            self.stream.write(f"\r{line:<70}" + ("\r" + " " * 70 + "\r" if done >= total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def format_table(records: list[dict]) -> str:
    """A markdown table of benchmark records."""
    lines = [
        "| case | implementation | ns/call (median) | GMAC/s (nonzero) | weight bytes/call |",
        "|---|---|---:|---:|---:|",
    ]
    for r in records:
        lines.append(
            f"| {r['name']} | {r['level']} | {r['ns_per_call']:.0f} | {r['gmacs']:.1f} | {r['weight_bytes']} |"
        )
    return "\n".join(lines)


def plot_kernels(records: list[dict], path: str) -> None:
    """Bar chart of GMAC/s per case and implementation (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(dict.fromkeys(r["name"] for r in records))
    impls = list(dict.fromkeys(r["level"] for r in records))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(impls)
    for i, impl in enumerate(impls):
        vals = [next((r["gmacs"] for r in records if r["name"] == c and r["level"] == impl), 0) for c in cases]
        ax.bar(np.arange(len(cases)) + i * width, vals, width, label=impl)
    ax.set_xticks(np.arange(len(cases)) + 0.4 - width / 2, cases)
    ax.set_ylabel("GMAC/s (nonzero MACs)")
    ax.set_yscale("log")
    ax.set_title("Block-sparse int8 GEMV, one core")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
