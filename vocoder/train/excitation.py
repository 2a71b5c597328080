"""The excitation of docs/model.md, and its phase-aligned training variant.

At run time the engine builds the excitation from the f0 and voicing features with a
phase that starts at 0 and runs freely (:func:`vocoder.engine.reference.excitation`, the
one definition; training uses it as it is). Its phase has no fixed relation to the phase of a
recording's glottal pulses, so a network trained on it with teacher forcing learns to
ignore it (measured: zeroing it changed the loss by < 0.002 nats).

Training therefore uses :func:`aligned_excitation`: the same formula and the same
frequency, but with the phase of the training audio's own fundamental (found by
demodulating the audio with the integrated f0 phase and low-pass filtering). The network
learns "the waveform is locked to this pulse train"; at run time it then locks the
audio it generates to the engine's free-running pulse train, so the pitch comes from the
excitation.
"""

from __future__ import annotations

import numpy as np


def _frame_params(features, hop: int, sample_rate: int):
    f = np.asarray(features, np.float64)
    m = np.nan_to_num(f[:, 0], nan=60.0, posinf=120.0, neginf=12.0)
    m = np.clip(m, 12.0, 120.0)
    v = np.clip(np.nan_to_num(f[:, 1], nan=0.0), 0.0, 1.0)
    inc = 440.0 * 2.0 ** ((m - 69.0) / 12.0) / sample_rate
    K = np.floor(0.5 / inc)
    v = np.where(K == 0, 0.0, v)
    return np.repeat(inc, hop), np.repeat(K, hop), np.repeat(v, hop)


def _shape(phi, K, v):
    """e0 (band-limited pulse train) and e1 (sine) at phase ``phi`` (cycles)."""
    n2 = 2.0 * K + 1.0
    s = np.sin(np.pi * phi)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.sin(n2 * np.pi * phi) / (n2 * s)
    d = np.where(np.abs(s) < 1e-12, 1.0, d)
    e = np.empty((phi.shape[0], 2), np.float32)
    e[:, 0] = v * d
    e[:, 1] = v * np.sin(2.0 * np.pi * phi)
    return e


def aligned_phase(audio, features, hop: int, sample_rate: int, window_s: float = 0.025) -> np.ndarray:
    """Per-sample phase (cycles) of the audio's fundamental, following the f0 feature.

    Demodulates the audio with the integrated f0 phase and low-pass filters the result
    (Hann window of ``window_s``); the angle of what remains is the phase offset.
    """
    from scipy.signal import fftconvolve

    inc, _, _ = _frame_params(features, hop, sample_rate)
    n = inc.shape[0]
    x = np.zeros(n)
    a = np.asarray(audio, np.float64)[:n]
    x[: a.shape[0]] = a
    Phi = np.concatenate([[0.0], np.cumsum(inc[:-1])])
    y = x * np.exp(-2j * np.pi * Phi)
    L = max(3, int(window_s * sample_rate) | 1)
    w = np.hanning(L)
    lp = fftconvolve(y, w, mode="same")
    delta = np.angle(lp) / (2.0 * np.pi)
    phi = Phi + delta
    return phi - np.floor(phi)


def aligned_excitation(audio, features, hop: int, sample_rate: int) -> np.ndarray:
    """The excitation with the audio's own fundamental phase, float32 ``[frames * hop, 2]``."""
    _, K, v = _frame_params(features, hop, sample_rate)
    return _shape(aligned_phase(audio, features, hop, sample_rate), K, v)
