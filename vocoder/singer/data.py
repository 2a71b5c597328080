"""The spectra the singer sings: the preset's singer data (per-phoneme envelopes and
voicing, :func:`build_singer_data`, :func:`singer_table`), or a fallback table from
published formant frequencies when a preset has none."""

from __future__ import annotations

import math

import numpy as np

from ..score.lyrics import VOWELS

#: Log-envelope of silence (the floor every envelope is kept above).
ENV_FLOOR = math.log(1e-10)

# F1, F2, F3 (Hz) of American English vowels (Peterson & Barney 1952 / Hillenbrand et al.
# 1995, adult male averages) and approximants.
_FORMANTS = {
    "AA": (730, 1090, 2440),
    "AE": (660, 1720, 2410),
    "AH": (520, 1190, 2390),
    "AO": (570, 840, 2410),
    "EH": (530, 1840, 2480),
    "ER": (490, 1350, 1690),
    "IH": (390, 1990, 2550),
    "IY": (270, 2290, 3010),
    "UH": (440, 1020, 2240),
    "UW": (300, 870, 2240),
    "OW": (450, 800, 2400),
    "AY": (660, 1400, 2450),
    "AW": (640, 1100, 2400),
    "EY": (450, 2000, 2600),
    "OY": (500, 1000, 2400),
    "L": (360, 1300, 2700),
    "R": (420, 1300, 1600),
    "W": (300, 700, 2200),
    "Y": (280, 2200, 3000),
    "M": (250, 1100, 2200),
    "N": (250, 1500, 2500),
    "NG": (250, 2000, 2700),
}
_VOICED_CONS = {"B", "D", "G", "V", "DH", "Z", "ZH", "JH", "M", "N", "NG", "L", "R", "W", "Y"}
_STOPS = {"P", "B", "T", "D", "K", "G"}
_DURATIONS = {  # seconds, typical sung consonants
    "P": 0.06,
    "B": 0.05,
    "T": 0.06,
    "D": 0.05,
    "K": 0.07,
    "G": 0.06,
    "CH": 0.09,
    "JH": 0.08,
    "F": 0.09,
    "V": 0.07,
    "TH": 0.08,
    "DH": 0.05,
    "S": 0.11,
    "Z": 0.08,
    "SH": 0.11,
    "ZH": 0.08,
    "HH": 0.06,
    "M": 0.07,
    "N": 0.07,
    "NG": 0.07,
    "L": 0.06,
    "R": 0.06,
    "W": 0.06,
    "Y": 0.05,
}
# (centre Hz, bandwidth Hz, level dB relative to the vowel peak) of noise consonants
_NOISE = {
    "S": (6000, 2500, -14),
    "Z": (6000, 2500, -18),
    "SH": (3000, 1500, -12),
    "ZH": (3000, 1500, -16),
    "CH": (3200, 1800, -14),
    "JH": (3000, 1800, -18),
    "F": (4000, 6000, -30),
    "V": (4000, 6000, -30),
    "TH": (5000, 6000, -32),
    "DH": (4000, 6000, -30),
    "T": (4000, 2500, -20),
    "D": (3500, 2500, -24),
    "K": (2000, 900, -20),
    "G": (2000, 900, -24),
    "P": (1200, 4000, -26),
    "B": (1000, 4000, -28),
}
# Diphthongs sustain their first vowel and move to the second at the end.
DIPHTHONGS = {"AY": ("AA", "IH"), "AW": ("AA", "UH"), "EY": ("EH", "IY"), "OY": ("AO", "IY"), "OW": ("OW", "UW")}


def _mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def _mel_inv(m):
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def _band_weights(n_env: int, sample_rate: int, n_bins: int = 513) -> np.ndarray:
    freqs = np.linspace(0.0, sample_rate / 2.0, n_bins)
    edges = _mel_inv(np.linspace(0.0, _mel(sample_rate / 2.0), n_env + 2))
    w = np.zeros((n_env, n_bins))
    for b in range(n_env):
        lo, c, hi = edges[b], edges[b + 1], edges[b + 2]
        w[b] = np.maximum(0.0, np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)))
        if w[b].sum() <= 0:
            w[b, int(np.argmin(np.abs(freqs - c)))] = 1.0
    return w / w.sum(axis=1, keepdims=True)


def _resonance_db(f, fc, bw):
    return 10 * np.log10(fc**4 / ((fc**2 - f**2) ** 2 + (f * bw) ** 2 + 1e-12))


#: Mean band level (ln power) of each consonant relative to the vowels' mean, and voicing,
#: measured on sung English (Festival's kal voice in singing mode, 120 files, middle
#: halves of each phone); the shapes come from the formant and noise models below.
_CONSONANT_LEVEL = {
    "B": (-7.7, 0.3),
    "CH": (-6.3, 0.0),
    "D": (-6.9, 0.2),
    "DH": (-5.6, 0.3),
    "F": (-2.9, 0.0),
    "G": (-7.5, 0.25),
    "HH": (-2.1, 0.3),
    "JH": (-5.9, 0.15),
    "K": (-9.2, 0.0),
    "L": (-1.7, 0.85),
    "M": (-2.7, 0.65),
    "N": (-2.6, 0.65),
    "NG": (-2.4, 0.7),
    "P": (-9.9, 0.0),
    "R": (-2.1, 0.95),
    "S": (-1.9, 0.0),
    "SH": (-1.6, 0.0),
    "T": (-8.8, 0.0),
    "TH": (-4.8, 0.0),
    "V": (-3.9, 0.55),
    "W": (-3.1, 0.9),
    "Y": (-1.7, 0.9),
    "Z": (-1.8, 0.7),
    "ZH": (-2.0, 0.6),
}
#: Mean band level of sung vowels (ln power of audio in [-1, 1], docs/features.md).
VOWEL_LEVEL = -6.0


def fallback_table(sample_rate: int, n_env: int) -> dict:
    """Built-in singer data: phoneme -> (envelope [n_env] ln power, voicing, duration s).

    Shapes from formant frequencies (vowels, approximants, nasals), noise bands
    (fricatives, affricates) and closures with a voice bar (stops); levels and voicing
    measured on sung English (:data:`_CONSONANT_LEVEL`); vowels average
    :data:`VOWEL_LEVEL`; ``sil`` is the features' floor (digital silence)."""
    f = np.linspace(0.0, sample_rate / 2.0, 513)
    w = _band_weights(n_env, sample_rate, 513)
    tilt = -10 * np.log10(1 + (f / 250.0) ** 2)  # glottal source with lip radiation: -6 dB/oct

    def vowel_db(fs, level=0.0):
        db = tilt.copy()
        for fc, bw in zip(tuple(fs) + (3500, 4500), (90, 110, 160, 250, 300)):
            if fc < sample_rate / 2:
                db += _resonance_db(f, fc, bw)
        return db + level

    raw = {}
    for p, fs in _FORMANTS.items():
        if p in ("M", "N", "NG"):
            anti = {"M": 1000, "N": 1800, "NG": 3000}[p]
            raw[p] = vowel_db(fs) - _resonance_db(f, anti, 200) - 12 * (f > 500)
        else:
            raw[p] = vowel_db(fs)
    bar = vowel_db((250, 1500, 2500))
    for p, (fc, bw, _) in _NOISE.items():
        db = 10 * np.log10(1.0 / (1.0 + ((f - fc) / bw) ** 2))
        if p in _STOPS:  # mostly closure: a weak burst, a voice bar for the voiced ones
            db = db - 10
            if p in _VOICED_CONS:
                db = np.maximum(db, bar - bar.max())
        elif p in _VOICED_CONS:
            db = np.maximum(db, bar - bar.max() - 10)
        raw[p] = db
    raw["HH"] = vowel_db(_FORMANTS["AH"]) - tilt  # breath: flat source through the vocal tract
    out = {}
    for p, db in raw.items():
        env = np.log(np.maximum(w @ (10.0 ** (db / 10.0)), 1e-30))
        if p in VOWELS:
            level, voiced = VOWEL_LEVEL, 1.0
        else:
            rel, voiced = _CONSONANT_LEVEL.get(p, (-6.0, 0.0))
            level = VOWEL_LEVEL + rel
        dev = env - env.mean()
        if p in _FORMANTS or p == "HH":
            dev *= 0.5  # the resonance model's peaks and valleys are twice as deep as sung spectra
        out[p] = (np.maximum(dev + level, ENV_FLOOR + 1.0), voiced, _DURATIONS.get(p, 0.2))
    out["sil"] = (np.full(n_env, ENV_FLOOR), 0.0, 0.2)
    return out


def singer_table(config: dict, n_env: int, sample_rate: int) -> tuple:
    """``(table, pitch_range, from_data)`` for a preset config: its singer data where
    present and consistent, every missing phoneme from :func:`fallback_table` shifted to
    the data's level."""
    fb = fallback_table(sample_rate, n_env)
    data = config.get("singer") or {}
    try:
        phon = list(data["phonemes"])
        envs = np.asarray(data["envelopes"], np.float64)
        if envs.shape != (len(phon), n_env) or not np.all(np.isfinite(envs)):
            raise ValueError
        voic = np.asarray(data.get("voicing", [1.0] * len(phon)), np.float64)
        durs = np.asarray(data.get("durations", [0.1] * len(phon)), np.float64)
        if voic.shape != (len(phon),) or durs.shape != (len(phon),):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        return fb, None, False
    table = {}
    for i, p in enumerate(phon):
        p = str(p)
        p = "sil" if p.lower() in ("sil", "sp", "pau", "") else p.upper().rstrip("012")
        table[p] = (envs[i].copy(), float(np.clip(voic[i], 0, 1)), float(np.clip(durs[i], 0.02, 0.25)))
    vow = [table[p][0].mean() for p in VOWELS if p in table]
    shift = (float(np.mean(vow)) - float(np.mean([fb[p][0].mean() for p in VOWELS]))) if vow else 0.0
    for p, (env, v, d) in fb.items():
        if p not in table:
            table[p] = (env + (shift if p != "sil" else 0.0), v, d)
    pr = data.get("pitch_range")
    try:
        pr = (float(pr[0]), float(pr[1])) if pr is not None else None
    except (TypeError, ValueError, IndexError):
        pr = None
    return table, pr, True


def build_singer_data(items, hop=80, sample_rate=16000, n_env=24, pitch_range=None) -> dict:
    """Singer data (``docs/features.md``) from a corpus: ``items`` are ``(features [frames,
    2 + n_env], phones [[ARPAbet, start_s, end_s], ...])`` pairs, features from
    :func:`vocoder.train.features.extract`. The only version: ``vocoder.train`` uses it, and the
    shipped voice was built with it.

    Per phoneme: median envelope over the middle half of each occurrence's frames,
    fraction of voiced frames, median duration. ``pitch_range`` defaults to the 2nd..98th
    percentile of the voiced f0, rounded to whole notes; ``level`` is the median mean
    envelope over voiced frames.
    """
    fps = sample_rate / hop
    mids: dict = {}
    voic: dict = {}
    durs: dict = {}
    voiced_f0, voiced_level = [], []
    for f, phones in items:
        f = np.asarray(f, np.float64)
        if f.ndim != 2 or f.shape[1] < 2 + n_env:
            raise ValueError(f"features: expected [frames, 2 + {n_env}], got {f.shape}")
        v = f[:, 1] > 0.5
        voiced_f0.append(f[v, 0])
        voiced_level.append(f[v, 2 : 2 + n_env].mean(axis=1))
        for p, s, e in phones:
            a, b = int(round(s * fps)), int(round(e * fps))
            a, b = max(0, a), min(f.shape[0], b)
            if b <= a:
                continue
            q = (b - a) // 4
            mids.setdefault(p, []).append(f[a + q : b - q if b - q > a + q else b, 2 : 2 + n_env])
            voic.setdefault(p, []).append(f[a:b, 1])
            durs.setdefault(p, []).append(e - s)
    phonemes = sorted(mids)
    f0 = np.concatenate(voiced_f0) if voiced_f0 else np.zeros(0)
    if pitch_range is None:
        pitch_range = (
            [int(np.floor(np.percentile(f0, 2))), int(np.ceil(np.percentile(f0, 98)))] if f0.size else [48, 66]
        )
    lev = np.concatenate(voiced_level) if voiced_level else np.zeros(0)
    return {
        "version": 1,
        "n_env": n_env,
        "phonemes": phonemes,
        "envelopes": [[round(float(x), 4) for x in np.median(np.concatenate(mids[p]), axis=0)] for p in phonemes],
        "voicing": [round(float(np.concatenate(voic[p]).mean()), 4) for p in phonemes],
        "durations": [round(float(np.median(durs[p])), 4) for p in phonemes],
        "pitch_range": [int(pitch_range[0]), int(pitch_range[1])],
        "level": round(float(np.median(lev)), 4) if lev.size else 0.0,
    }
