"""Listening proxies: numbers for what a listener hears, beside the training loss.

* :func:`band_hnr`: harmonics-to-noise ratio per frequency band on voiced frames,
  measured f0-synchronously: each analysis window is resampled along the pitch contour
  so that it holds exactly ``PERIODS`` periods of ``PERIOD_SAMPLES`` samples, so vibrato
  and glides are not counted as noise. With a Hann window over 8 periods the harmonics
  fall on every 8th DFT bin: the three bins around each harmonic are "harmonic", the
  three bins halfway between two harmonics are "noise" (the two in between, where the
  window's main lobe leaks, count for neither). Energies are summed over frames per band,
  then the ratio is taken. White noise reads about 0 dB, a clean harmonic tone with
  vibrato 35-45 dB.
* :func:`whistle_fraction`: share of (audible) unvoiced frames whose energy above 2 kHz
  sits in one narrow peak: the period-3 and period-4 limit cycles of argmax sampling on
  a noise-like target, heard as whistles at sr/3 and sr/4 (a Hann window puts a pure tone's
  energy in 3 bins; a formant peak is wider).
* :func:`thump_peak`: the largest swing of the signal below 80 Hz (zero-phase 4th-order
  Butterworth low-pass). Sung recordings stay at 0.02-0.06; the target is <= 0.1.
* :func:`dnsmos`: Microsoft's DNSMOS P.835 (SIG, BAK, OVRL) through the ``speechmos``
  package, when it is installed (``pip install speechmos``); a speech model, read it for
  ranking only.

``analyse`` tracks f0 and voicing of a signal itself (pyworld dio + stonemask, the
analysis of :mod:`vocoder.features`), so every signal is measured on its own pitch.
"""

from __future__ import annotations

import numpy as np

BANDS = ((0, 1000), (1000, 2000), (2000, 4000), (4000, 8000))
PERIODS = 8
PERIOD_SAMPLES = 64           # resampled samples per period: harmonics up to 32 f0
UPSAMPLE = 8
NOTE_TRIM_FRAMES = 4          # frames dropped at each end of a voiced run ("note middles")
WHISTLE_MIN_HZ = 2000.0
WHISTLE_SHARE = 0.7           # share of the >2 kHz energy in the 3 bins around the peak (a line, not
                              # a formant: the recording's unvoiced frames reach 0.7 in < 1%)
AUDIBLE_DB = -50.0            # frames quieter than this (dBFS rms) are not judged for whistles


def analyse(audio, sample_rate: int, hop: int):
    """``(f0_hz [frames], voiced [frames])`` of ``audio`` at frame centres ``(t + 0.5) hop``."""
    import pyworld

    a = np.asarray(audio, np.float64)
    n = len(a) // hop
    pad = hop // 2
    x = np.concatenate([np.zeros(pad), a[: n * hop], np.zeros(hop)])
    f0, _ = pyworld.dio(x, sample_rate, f0_floor=60.0, f0_ceil=1000.0, frame_period=1000.0 * hop / sample_rate)
    tpos = (pad + (np.arange(n) + 0.5) * hop) / sample_rate
    k = np.clip(np.rint(tpos * sample_rate / hop).astype(int), 0, len(f0) - 1)
    f0 = pyworld.stonemask(x, np.ascontiguousarray(f0[k]), tpos, sample_rate)
    return f0, f0 > 0


def note_middles(voiced, trim: int = NOTE_TRIM_FRAMES):
    """Voiced frames at least ``trim`` frames from either end of their voiced run."""
    v = np.asarray(voiced, bool)
    out = np.zeros_like(v)
    i = 0
    while i < len(v):
        if not v[i]:
            i += 1
            continue
        j = i
        while j < len(v) and v[j]:
            j += 1
        if j - i > 2 * trim:
            out[i + trim: j - trim] = True
        i = j
    return out


def _hnr_energies(audio, sample_rate, f0_hz, frames, hop, bands):
    """Harmonic and noise energy per band summed over the given frames."""
    from scipy.signal import resample_poly

    a = np.asarray(audio, np.float64)
    f0 = np.asarray(f0_hz, np.float64)
    n = len(a)
    # pitch contour per sample (linear between frame centres, flat at the ends), its phase
    centres = (np.arange(len(f0)) + 0.5) * hop
    voiced_f0 = np.where(f0 > 0, f0, np.nan)
    good = np.isfinite(voiced_f0)
    if good.sum() < 2:
        return np.zeros(len(bands)), np.zeros(len(bands))
    f_per_sample = np.interp(np.arange(n), centres[good], voiced_f0[good])
    phase = np.concatenate([[0.0], np.cumsum(f_per_sample / sample_rate)])[:n]   # periods
    # resampling along the contour reads between samples: band-limited 8x upsampling first,
    # so the linear interpolation that follows costs < -40 dB up to 8 kHz
    up = UPSAMPLE
    a_up = resample_poly(a, up, 1)
    phase_up = np.interp(np.arange(n * up) / up, np.arange(n), phase)
    L = PERIODS * PERIOD_SAMPLES
    win = np.hanning(L)
    k = np.arange(L // 2 + 1)
    harmonic = (k % PERIODS <= 1) | (k % PERIODS >= PERIODS - 1)
    noise = np.abs((k % PERIODS) - PERIODS // 2) <= 1
    harm_e, noise_e = np.zeros(len(bands)), np.zeros(len(bands))
    for t in frames:
        c = int(centres[t])
        if not (f0[t] > 0) or c >= n:
            continue
        grid = phase[c] + (np.arange(L) - L / 2) / PERIOD_SAMPLES           # uniform in phase
        if grid[0] < phase[0] or grid[-1] > phase[-1]:
            continue
        seg = np.interp(grid, phase_up, a_up) * win
        spec = np.abs(np.fft.rfft(seg)) ** 2
        hz = k / PERIODS * f0[t]                                            # bin k is k/8 harmonics
        for b, (lo, hi) in enumerate(bands):
            sel = (hz >= lo) & (hz < hi) & (k > PERIODS // 2)                # no DC bins
            harm_e[b] += spec[sel & harmonic].sum()
            noise_e[b] += spec[sel & noise].sum()
    return harm_e, noise_e


def band_hnr(audio, sample_rate: int, hop: int, f0_hz=None, voiced=None, bands=BANDS, middles: bool = True):
    """Harmonics-to-noise ratio in dB per band over voiced frames (note middles only
    with ``middles``). f0/voicing default to the signal's own (:func:`analyse`).
    NaN for a band without a harmonic or energy."""
    h, z = band_hnr_energies(audio, sample_rate, hop, f0_hz, voiced, bands, middles)
    return _ratio_db(h, z)


def band_hnr_energies(audio, sample_rate, hop, f0_hz=None, voiced=None, bands=BANDS, middles=True):
    """(harmonic, noise) energies per band: sum them over files, then :func:`ratio_db`."""
    if f0_hz is None or voiced is None:
        f0_own, v_own = analyse(audio, sample_rate, hop)
        f0_hz = f0_own if f0_hz is None else f0_hz
        voiced = v_own if voiced is None else voiced
    m = min(len(f0_hz), len(voiced), len(audio) // hop)
    v = np.asarray(voiced[:m], bool) & (np.asarray(f0_hz[:m]) > 0)
    frames = np.flatnonzero(note_middles(v) if middles else v)
    return _hnr_energies(audio, sample_rate, f0_hz[:m], frames, hop, bands)


def _ratio_db(h, z):
    with np.errstate(divide="ignore", invalid="ignore"):
        return [float(10 * np.log10(a / b)) if a > 0 and b > 0 else float("nan") for a, b in zip(h, z)]


ratio_db = _ratio_db


def whistle_fraction(audio, sample_rate: int, hop: int, unvoiced=None):
    """Share of audible unvoiced frames that whistle (see the module text). ``unvoiced``
    defaults to the signal's own analysis. 0.0 when no frame qualifies."""
    w, n = whistle_counts(audio, sample_rate, hop, unvoiced)
    return w / n if n else 0.0


def whistle_counts(audio, sample_rate: int, hop: int, unvoiced=None):
    """(whistling frames, judged frames): sum over files for a pooled fraction."""
    a = np.asarray(audio, np.float64)
    if unvoiced is None:
        unvoiced = ~analyse(a, sample_rate, hop)[1]
    L = 512
    win = np.hanning(L)
    freqs = np.fft.rfftfreq(L, 1.0 / sample_rate)
    hi = freqs >= WHISTLE_MIN_HZ
    w = n = 0
    for t in np.flatnonzero(np.asarray(unvoiced, bool)):
        c = int((t + 0.5) * hop)
        seg = a[c - L // 2: c + L // 2]
        if len(seg) < L or 10 * np.log10(np.mean(seg ** 2) + 1e-30) < AUDIBLE_DB:
            continue
        spec = np.abs(np.fft.rfft(seg * win)) ** 2
        e = spec[hi]
        if e.sum() <= 0:
            continue
        n += 1
        p = int(np.argmax(e))
        if e[max(0, p - 1): p + 2].sum() > WHISTLE_SHARE * e.sum():
            w += 1
    return w, n


def thump_peak(audio, sample_rate: int, cutoff: float = 80.0) -> float:
    """Largest |signal| after a zero-phase 4th-order Butterworth low-pass at ``cutoff``."""
    from scipy.signal import butter, sosfiltfilt

    a = np.asarray(audio, np.float64)
    if len(a) < 64:
        return 0.0
    sos = butter(4, cutoff, "low", fs=sample_rate, output="sos")
    pad = np.zeros(sample_rate // 4)   # silence around it: no edge transient of the filter's own
    return float(np.abs(sosfiltfilt(sos, np.concatenate([pad, a, pad]), padtype=None)).max())


def dnsmos(audio, sample_rate: int):
    """DNSMOS P.835 ``{"sig", "bak", "ovrl"}`` via speechmos, or None when not installed."""
    try:
        from speechmos import dnsmos as _dnsmos
    except Exception:  # not installed, or its onnxruntime is missing
        return None
    from scipy.signal import resample_poly

    a = np.asarray(audio, np.float64)
    if sample_rate != 16000:
        a = resample_poly(a, 16000, sample_rate)
    peak = np.abs(a).max()
    if peak > 1:
        a = a / peak
    r = _dnsmos.run(a.astype(np.float32), 16000)
    return {"sig": float(r["sig_mos"]), "bak": float(r["bak_mos"]), "ovrl": float(r["ovrl_mos"])}


def listen(audio, sample_rate: int, hop: int, f0_hz=None, voiced=None, mos: bool = True) -> dict:
    """Every proxy of one signal: band HNR (note middles), whistles, thump, DNSMOS (with
    ``mos``). Pool several with :func:`pooled`."""
    if f0_hz is None or voiced is None:
        f0_hz, voiced = analyse(audio, sample_rate, hop)
    h, z = band_hnr_energies(audio, sample_rate, hop, f0_hz, voiced)
    w, n = whistle_counts(audio, sample_rate, hop, ~np.asarray(voiced, bool))
    return {"hnr": (h, z), "whistle": (w, n), "thump": thump_peak(audio, sample_rate),
            "dnsmos": dnsmos(audio, sample_rate) if mos else None}


def pooled(results) -> dict:
    """Pool :func:`listen` results of several files: energies and counts summed, the
    largest thump, DNSMOS averaged."""
    h = sum(r["hnr"][0] for r in results)
    z = sum(r["hnr"][1] for r in results)
    w = sum(r["whistle"][0] for r in results)
    n = sum(r["whistle"][1] for r in results)
    ds = [r["dnsmos"] for r in results if r["dnsmos"]]
    return {"hnr_db": [round(v, 1) for v in _ratio_db(h, z)], "whistle": round(w / n, 3) if n else 0.0,
            "whistle_frames": [int(w), int(n)], "thump": round(max(r["thump"] for r in results), 3),
            "dnsmos": {k: round(float(np.mean([d[k] for d in ds])), 2) for k in ("sig", "bak", "ovrl")} if ds else None}
