"""Frame features of docs/features.md: f0 (MIDI), voicing, and a mel-band WORLD envelope.

One function, :func:`extract`, is used by training, evaluation and the singer's data, so
they cannot drift apart::

    from vocoder.train import features
    audio, sr = features.load_wav("take.wav", sample_rate=16000)    # resampled, checked
    f = features.extract(audio, sr)                                  # float32 [frames, 26]

A frame ``t`` describes samples ``[t*hop, (t+1)*hop)`` and is analysed at the centre of
that span. Needs ``pyworld`` (``pip install vocoder[train]``).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

#: dio's search range (Hz): C2 .. about C#6, wide enough for any singer.
F0_FLOOR = 60.0
F0_CEIL = 1100.0
#: Peak below which audio counts as silent (-90 dBFS).
SILENCE_PEAK = 10 ** (-90 / 20)
ENV_FLOOR = 1e-10


class FeatureError(ValueError):
    """Audio that cannot be analysed (empty, silent, corrupt); the message names the source."""


def feature_names(n_env: int = 24) -> list:
    """``["f0", "voicing", "env0", ..., "env{n_env-1}"]``."""
    return ["f0", "voicing"] + [f"env{i}" for i in range(n_env)]


def hz_to_midi(hz):
    return 69.0 + 12.0 * np.log2(np.asarray(hz, np.float64) / 440.0)


def midi_to_hz(m):
    return 440.0 * 2.0 ** ((np.asarray(m, np.float64) - 69.0) / 12.0)


def _mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def _mel_inv(m):
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_weights(n_env: int, sample_rate: int, fft_size: int) -> np.ndarray:
    """``[n_env, fft_size//2+1]`` triangular HTK-mel bands over 0..sample_rate/2, each row
    normalised to sum 1 (so a band is a weighted average of the power spectrum)."""
    n_bins = fft_size // 2 + 1
    freqs = np.arange(n_bins) * sample_rate / fft_size
    edges = _mel_inv(np.linspace(0.0, _mel(sample_rate / 2.0), n_env + 2))
    w = np.zeros((n_env, n_bins))
    for b in range(n_env):
        lo, c, hi = edges[b], edges[b + 1], edges[b + 2]
        up = (freqs - lo) / (c - lo)
        down = (hi - freqs) / (hi - c)
        w[b] = np.maximum(0.0, np.minimum(up, down))
        if w[b].sum() <= 0:  # a band narrower than a bin: take the nearest bin
            w[b, int(np.argmin(np.abs(freqs - c)))] = 1.0
    return w / w.sum(axis=1, keepdims=True)


def interpolate_f0(midi: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Fill unvoiced frames linearly between voiced neighbours (flat at the ends, 60 if none)."""
    midi = np.asarray(midi, np.float64)
    voiced = np.asarray(voiced, bool)
    n = midi.shape[0]
    if not voiced.any():
        return np.full(n, 60.0)
    idx = np.nonzero(voiced)[0]
    return np.interp(np.arange(n), idx, midi[idx])


def check_audio(audio, source: str = "audio") -> np.ndarray:
    """Return ``audio`` as float64 mono, raising :class:`FeatureError` naming ``source``
    if it is empty, not finite or silent."""
    try:
        a = np.asarray(audio, np.float64)
    except (TypeError, ValueError) as e:
        raise FeatureError(f"{source}: not numeric audio: {e}") from None
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise FeatureError(f"{source}: expected mono audio (1-D), got shape {a.shape}")
    if a.size == 0:
        raise FeatureError(f"{source}: empty audio (0 samples)")
    if not np.all(np.isfinite(a)):
        raise FeatureError(f"{source}: audio holds NaN or infinite samples (corrupt file?)")
    peak = float(np.max(np.abs(a)))
    if peak < SILENCE_PEAK:
        raise FeatureError(f"{source}: audio is silent (peak {peak:.3g}, below -90 dBFS): nothing to analyse")
    return a


def extract(audio, sample_rate: int, hop: int = 80, n_env: int = 24, source: str = "audio") -> np.ndarray:
    """Features of docs/features.md: float32 ``[len(audio)//hop, 2 + n_env]``.

    ``audio`` is mono float in [-1, 1]; it is trimmed to a whole number of frames.
    f0 and voicing come from pyworld dio + stonemask, the envelope from CheapTrick
    averaged in ``n_env`` triangular mel bands, ``ln(max(band, 1e-10))``.
    ``source`` names the audio in error messages (a file name, say).
    """
    import pyworld

    a = check_audio(audio, source)
    if not isinstance(hop, (int, np.integer)) or hop < 1:
        raise ValueError(f"hop must be a positive int, got {hop!r}")
    if not isinstance(n_env, (int, np.integer)) or n_env < 1:
        raise ValueError(f"n_env must be a positive int, got {n_env!r}")
    sr = int(sample_rate)
    n = a.shape[0] // hop
    if n == 0:
        raise FeatureError(f"{source}: {a.shape[0]} samples is shorter than one frame ({hop} samples)")
    a = np.ascontiguousarray(a[: n * hop])
    # Centre of frame t is (t + 0.5) * hop. Padding hop/2 samples in front puts those
    # centres on dio's grid k * hop (k = t + 1); pad the end so the last centre is inside.
    pad = hop // 2
    x = np.concatenate([np.zeros(pad), a, np.zeros(hop)])
    period_ms = 1000.0 * hop / sr
    f0_grid, t_grid = pyworld.dio(x, sr, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=period_ms)
    tpos = (pad + (np.arange(n) + 0.5) * hop) / sr
    k = np.clip(np.rint(tpos * sr / hop).astype(int), 0, len(f0_grid) - 1)
    f0 = np.ascontiguousarray(f0_grid[k])
    f0 = pyworld.stonemask(x, f0, tpos, sr)
    voiced = f0 > 0
    fft_size = pyworld.get_cheaptrick_fft_size(sr, F0_FLOOR)
    sp = pyworld.cheaptrick(x, f0, tpos, sr, f0_floor=F0_FLOOR, fft_size=fft_size)
    bands = sp @ mel_weights(n_env, sr, fft_size).T
    env = np.log(np.maximum(bands, ENV_FLOOR))
    midi = np.where(voiced, hz_to_midi(np.where(voiced, f0, 440.0)), 0.0)
    out = np.empty((n, 2 + n_env), np.float32)
    out[:, 0] = interpolate_f0(midi, voiced)
    out[:, 1] = voiced
    out[:, 2:] = env
    return out


def read_wav(path) -> tuple:
    """``(audio float64 mono, sample_rate)`` from a WAV (or any soundfile format);
    :class:`FeatureError` naming the file if it cannot be read."""
    path = Path(path)
    try:
        try:
            import soundfile

            data, sr = soundfile.read(str(path), dtype="float64", always_2d=True)
        except ImportError:
            from scipy.io import wavfile

            sr, data = wavfile.read(str(path))
            if data.dtype.kind == "i":
                data = data / float(-np.iinfo(data.dtype).min)
            elif data.dtype.kind == "u":
                data = (data.astype(np.float64) - 128.0) / 128.0
            data = np.asarray(data, np.float64)
            if data.ndim == 1:
                data = data[:, None]
    except FeatureError:
        raise
    except Exception as e:  # soundfile.LibsndfileError, ValueError from scipy, OSError, ...
        raise FeatureError(f"{path}: cannot read audio ({type(e).__name__}: {e})") from None
    if data.size == 0:
        raise FeatureError(f"{path}: empty audio file (0 samples)")
    return data.mean(axis=1), int(sr)


def resample(audio, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling with scipy (exact rational ratio)."""
    if from_rate == to_rate:
        return np.asarray(audio, np.float64)
    from scipy.signal import resample_poly

    r = Fraction(int(to_rate), int(from_rate))
    return resample_poly(np.asarray(audio, np.float64), r.numerator, r.denominator)


def load_wav(path, sample_rate: int = 16000) -> tuple:
    """Read, mix to mono, resample to ``sample_rate`` and check a file (errors name it).

    Returns ``(audio float64, sample_rate)``."""
    a, sr = read_wav(path)
    a = check_audio(a, str(path))
    a = resample(a, sr, sample_rate)
    return a, sample_rate


def extract_file(path, sample_rate: int = 16000, hop: int = 80, n_env: int = 24) -> tuple:
    """``(audio, features)`` of a file resampled to ``sample_rate``."""
    a, sr = load_wav(path, sample_rate)
    return a, extract(a, sr, hop=hop, n_env=n_env, source=str(path))


def cents(a_midi, b_midi):
    return 100.0 * (np.asarray(a_midi, np.float64) - np.asarray(b_midi, np.float64))


__all__ = [
    "FeatureError",
    "extract",
    "extract_file",
    "load_wav",
    "read_wav",
    "resample",
    "feature_names",
    "hz_to_midi",
    "midi_to_hz",
    "mel_weights",
    "interpolate_f0",
    "check_audio",
    "cents",
]
