"""Helpers for tests and benchmarks: random, untrained but numerically sane voices.

    from vocoder.testing import random_preset

    p = random_preset(hidden=384, density=0.1)   # deterministic in ``seed``
    v = vocoder.Vocoder(p, seed=0)

A random preset has the shapes and the block sparsity of a trained one, so it exercises
the kernels and the engine at full size without a training run; it does not sing.
"""

from __future__ import annotations

import math

import numpy as np

from .engine import blocksparse
from .engine.presets import (
    FORMAT_VERSION,
    Preset,
    check_config,
    default_feature_names,
    expected_matrix_shapes,
    preset_from_float,
)


def _block_mask(rng, rows: int, cols: int, density: float) -> np.ndarray:
    """A 0/1 float mask keeping ``round(density * blocks)`` random 16x4 blocks (>= 1)."""
    rb = blocksparse.padded(rows, blocksparse.BLOCK_ROWS) // blocksparse.BLOCK_ROWS
    cb = blocksparse.padded(cols, blocksparse.BLOCK_COLS) // blocksparse.BLOCK_COLS
    total = rb * cb
    keep = np.zeros(total, bool)
    keep[rng.choice(total, size=max(1, int(round(density * total))), replace=False)] = True
    m = np.repeat(np.repeat(keep.reshape(rb, cb), blocksparse.BLOCK_ROWS, 0), blocksparse.BLOCK_COLS, 1)
    return m[:rows, :cols].astype(np.float64)


def random_preset(
    hidden=384,
    density=0.1,
    head="dual",
    subscale=1,
    sample_rate=16000,
    seed=0,
    n_features=22,
    hop=None,
    mulaw_bits=9,
    horizon=None,
    ctx_before=1,
    lookahead=1,
    cond_hidden=64,
    temperature=1.0,
    name=None,
    excitation=2,
    preemphasis=0.0,
    predictor="none",
    ltp_gain=0.8,
    temperature_unvoiced=None,
    highpass_hz=20.0,
) -> Preset:
    """A random, untrained but numerically sane preset (deterministic in ``seed``).

    ``density`` is the fraction of 16x4 blocks kept in ``R`` and the output matrices.
    Weights are Gaussian with std ~ 1/sqrt(effective fan-in), so activations neither
    vanish nor saturate and sampled audio varies. ``hop`` defaults to 5 ms, ``horizon``
    to 1 with subscale and 0 without. ``excitation`` (0 or 2) needs ``n_features >= 2``.
    ``predictor="lpc+pitch"`` (mulaw head, subscale 1) makes a network of the remainder
    after the prediction; ``temperature_unvoiced`` defaults to ``temperature``.
    """
    if not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density}")
    rng = np.random.default_rng(seed)
    hop = sample_rate // 200 if hop is None else hop
    horizon = (1 if subscale > 1 else 0) if horizon is None else horizon
    config = {
        "format_version": FORMAT_VERSION,
        "name": name or f"random-{head}-h{hidden}-b{subscale}-s{seed}",
        "license": "CC0-1.0",
        "version": "0.0.0",
        "description": f"Random untrained {head}-head network (seed {seed}, block density {density}) for tests.",
        "sample_rate": sample_rate,
        "hop": hop,
        "n_features": n_features,
        "feature_names": default_feature_names(n_features),
        "hidden": hidden,
        "head": head,
        "mulaw_bits": mulaw_bits,
        "subscale": subscale,
        "horizon": horizon,
        "ctx_before": ctx_before,
        "lookahead": lookahead,
        "cond_hidden": cond_hidden,
        "excitation": excitation,
        "temperature": temperature,
        "preemphasis": preemphasis,
        "predictor": predictor,
        "ltp_gain": ltp_gain if predictor != "none" else 0.0,
        "temperature_unvoiced": temperature if temperature_unvoiced is None else temperature_unvoiced,
        "highpass_hz": highpass_hz,
        "training": {"random": True, "seed": seed, "density": density},
        "singer": {},
    }
    cfg = check_config(config, f"<preset {config['name']!r}>")  # bad arguments fail here, clearly
    H, K, E = hidden, ctx_before + 1 + lookahead, cfg["excitation"]
    n_in = 3 + cfg["horizon"] + E
    nf, ch = n_features, cond_hidden

    def gauss(shape, std):
        return rng.standard_normal(shape) * std

    in_w = gauss((3 * H, n_in), 1.0 / math.sqrt(n_in))
    if head == "dual":
        in_w.reshape(3, H, n_in)[:, : H // 2, 2] = 0.0  # the coarse half must not see c_cur
    dense = {
        "feat_mean": gauss(nf, 1.0),
        "feat_std": rng.uniform(0.5, 2.0, nf),
        "cond1_w": gauss((ch, K * nf), 1.0 / math.sqrt(K * nf)),
        "cond1_b": gauss(ch, 0.1),
        "cond2_w": gauss((3 * H, ch), 1.0 / math.sqrt(ch)),
        "cond2_b": gauss(3 * H, 0.1),
        "in_w": in_w,
        "sub_bias": gauss((subscale, 3 * H), 0.1) if subscale > 1 else np.zeros((1, 3 * H)),
        "exc_out_w": gauss((H, E), 1.0),
    }
    mats = {}
    for m, (rows, cols) in expected_matrix_shapes(cfg).items():
        mask = _block_mask(rng, rows, cols, density)
        fan_in = max(1.0, density * cols)
        # Hidden layers: He-style gain for relu / unit gain for the GRU; logit layers a
        # gain of 4 so logits spread over a few units and sampling is far from uniform.
        gain = 4.0 if m in ("O2", "O4") or (head == "mulaw" and m == "O2") else (math.sqrt(2) if m != "R" else 1.0)
        mats[m] = (gauss((rows, cols), gain / math.sqrt(fan_in)) * mask, gauss(rows, 0.1))
    return preset_from_float(cfg, dense, mats)
