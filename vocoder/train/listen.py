"""Listening proxies: numbers for what a listener hears, beside the training loss.

* :func:`band_hnr`: harmonics-to-noise ratio per frequency band on voiced frames,
  measured f0-synchronously, so vibrato and glides are not counted as noise. Each
  analysis window is resampled along the pitch contour (the phase, the running integral
  of f0) so that it holds exactly ``PERIODS`` = 8 periods of ``P`` samples each, ``P`` a
  power of two with ``P * f0 >= 1.25 * sample_rate`` (the resampled window reaches the
  Nyquist frequency without aliasing); the signal is read between samples by 4x
  band-limited upsampling and 4-point (cubic) Lagrange interpolation. With a Hann window
  over 8 periods a harmonic falls on every 8th DFT bin: the three bins around each
  harmonic are "harmonic", the three bins halfway between two harmonics measure the
  noise per bin (the two in between, where the window's main lobe leaks, count for
  neither). Per band, the harmonic-bin energy and the noise-bin energy are summed over
  the frames (an energy-sum ratio: loud frames weigh more, as they do for a listener);
  the noise is extrapolated to the whole band (times 8/3), and the ratio is
  ``10 log10(harmonic / noise)``. So harmonics plus white noise at a signal-to-noise
  ratio ``s`` read ``10 log10(s + 3/8)``: the SNR itself within 0.2 dB above 10 dB,
  -4.3 dB for noise alone (the floor; band by band it scatters by +-1 dB on short
  signals). A clean harmonic tone with vibrato reads 55-60 dB (the interpolation's own
  error); WORLD from the features, whose aperiodicity rises above 3 kHz, about 40 dB below
  4 kHz. The 0..PERIODS/2 bins (DC, below f0/2) are left out.
* :func:`whistle_fraction`: share of (audible) unvoiced frames whose energy above 2 kHz
  sits in one narrow peak: the period-3 and period-4 limit cycles of argmax sampling on
  a noise-like target, heard as whistles at sr/3 and sr/4 (a Hann window puts a pure tone's
  energy in 3 bins; a formant peak is wider).
* :func:`thump_peak`: the largest swing of the signal below 80 Hz (zero-phase 4th-order
  Butterworth low-pass). Sung recordings and WORLD stay at 0.02-0.06; the target is
  <= 0.1. :func:`thump_frames` gives the swing per frame, to count the (unvoiced) frames
  above ``THUMP_LIMIT``.
* :func:`dnsmos`: Microsoft's DNSMOS P.835 (SIG, BAK, OVRL) through the ``speechmos``
  package, when it is installed (``pip install speechmos``: the ONNX models ship inside
  it, nothing is downloaded); a speech model, read it for ranking only.
* periodicity (normalised autocorrelation at the pitch period) lives in
  :func:`vocoder.train.evaluate.periodicity`.

Which frames and which pitch: :func:`analyse` tracks f0 and voicing of a signal itself
(pyworld dio + stonemask, the analysis of :mod:`vocoder.train.features`). To compare several
signals of the same song (the engine, WORLD, the recording) on the same frames, give
the intended f0 and voicing (the features): :func:`listen` then refines that f0 on each
signal with stonemask (:func:`refine_f0`), so a signal is measured on its own pitch
(a pitch error is not noise) but on the frames the song voices (a frame the engine
failed to voice is still judged).
"""

from __future__ import annotations

import numpy as np

BANDS = ((0, 1000), (1000, 2000), (2000, 4000), (4000, 8000))
PERIODS = 8
MIN_PERIOD_SAMPLES = 16
OVERSAMPLE = 1.25  # resampled rate >= 1.25 * sample_rate at the window's f0
UPSAMPLE = 4
NOISE_SCALE = PERIODS / 3.0  # noise bins measured (3 of 8) -> the whole band
NOTE_TRIM_FRAMES = 4  # frames dropped at each end of a voiced run ("note middles")
WHISTLE_MIN_HZ = 2000.0
WHISTLE_SHARE = 0.7  # share of the >2 kHz energy in the 3 bins around the peak (a line, not
# a formant: the recording's unvoiced frames reach 0.7 in < 1%)
AUDIBLE_DB = -50.0  # frames quieter than this (dBFS rms) are not judged for whistles
THUMP_CUTOFF = 80.0
THUMP_LIMIT = 0.1  # issue 12's target for the largest sub-80 Hz swing


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


def refine_f0(audio, sample_rate: int, hop: int, f0_hz, voiced=None):
    """The intended ``f0_hz`` (per frame, centres ``(t + 0.5) hop``) refined on ``audio``
    by stonemask (instantaneous frequency of the harmonics near it); 0 where not voiced.
    Where the refinement fails or moves by more than a semitone the intended f0 stays."""
    import pyworld

    f0 = np.asarray(f0_hz, np.float64).copy()
    v = (f0 > 0) if voiced is None else (np.asarray(voiced, bool)[: len(f0)] & (f0 > 0))
    f0[~v] = 0.0
    a = np.ascontiguousarray(np.asarray(audio, np.float64))
    tpos = (np.arange(len(f0)) + 0.5) * hop / sample_rate
    r = pyworld.stonemask(a, np.ascontiguousarray(f0), tpos, sample_rate)
    ok = v & np.isfinite(r) & (r > 0) & (np.abs(np.log2(np.maximum(r, 1e-9) / np.maximum(f0, 1e-9))) < 1 / 12)
    return np.where(ok, r, f0)


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
            out[i + trim : j - trim] = True
        i = j
    return out


def _hnr_energies(audio, sample_rate, f0_hz, frames, hop, bands):
    """Harmonic-bin energy and noise energy (extrapolated to the band) per band, per
    frame: two ``[len(frames), len(bands)]`` arrays (zero rows for skipped frames)."""
    from scipy.signal import resample_poly

    a = np.asarray(audio, np.float64)
    f0 = np.asarray(f0_hz, np.float64)
    n = len(a)
    frames = np.asarray(frames, np.int64)
    harm_e, noise_e = np.zeros((len(frames), len(bands))), np.zeros((len(frames), len(bands)))
    centres = (np.arange(len(f0)) + 0.5) * hop
    good = np.isfinite(f0) & (f0 > 0)
    if good.sum() < 2 or n < 4:
        return harm_e, noise_e
    # pitch contour per sample (linear between voiced frame centres, flat at the ends) and
    # its phase in periods
    f_per_sample = np.interp(np.arange(n), centres[good], f0[good])
    phase = np.concatenate([[0.0], np.cumsum(f_per_sample / sample_rate)])[:n]
    up = UPSAMPLE
    a_up = resample_poly(a, up, 1)
    samples = np.arange(n, dtype=np.float64)
    for j, t in enumerate(frames):
        c = int(centres[t])
        if not good[t] or c >= n:
            continue
        ps = max(MIN_PERIOD_SAMPLES, int(2 ** np.ceil(np.log2(OVERSAMPLE * sample_rate / f0[t]))))
        L = PERIODS * ps
        grid = phase[c] + (np.arange(L) - L / 2) / ps  # uniform in phase
        if grid[0] < phase[0] or grid[-1] > phase[-1]:
            continue
        pos = np.interp(grid, phase, samples) * up  # where, in a_up
        i = np.floor(pos).astype(np.int64)
        d = pos - i
        i = np.clip(i, 1, len(a_up) - 3)
        seg = (
            -d * (d - 1) * (d - 2) / 6 * a_up[i - 1]
            + (d + 1) * (d - 1) * (d - 2) / 2 * a_up[i]
            - (d + 1) * d * (d - 2) / 2 * a_up[i + 1]
            + (d + 1) * d * (d - 1) / 6 * a_up[i + 2]
        )
        spec = np.abs(np.fft.rfft(seg * np.hanning(L))) ** 2
        k = np.arange(L // 2 + 1)
        r = k % PERIODS
        harmonic = (r <= 1) | (r >= PERIODS - 1)
        noise = np.abs(r - PERIODS // 2) <= 1
        hz = k / PERIODS * f0[t]  # bin k is k/8 harmonics
        for b, (lo, hi) in enumerate(bands):
            sel = (hz >= lo) & (hz < min(hi, sample_rate / 2)) & (k > PERIODS // 2)  # no DC bins
            harm_e[j, b] = spec[sel & harmonic].sum()
            noise_e[j, b] = NOISE_SCALE * spec[sel & noise].sum()
    return harm_e, noise_e


def band_hnr(
    audio,
    sample_rate: int,
    hop: int,
    f0_hz=None,
    voiced=None,
    bands=BANDS,
    middles: bool = True,
    trim: int = NOTE_TRIM_FRAMES,
    refine: bool = False,
):
    """Harmonics-to-noise ratio in dB per band over voiced frames (see the module text).

    ``f0_hz``/``voiced`` are per frame (centres ``(t + 0.5) hop``) and default to the
    signal's own (:func:`analyse`); with ``refine`` a given f0 is refined on the signal
    first (:func:`refine_f0`). With ``middles`` only note middles count: voiced frames at
    least ``trim`` frames from either end of their voiced run (onsets, releases and
    consonant transitions left out). A list with one value per band; NaN for a band
    without a harmonic or energy. To pool several files, sum
    :func:`band_hnr_energies` and take :func:`ratio_db`."""
    h, z = band_hnr_energies(audio, sample_rate, hop, f0_hz, voiced, bands, middles, trim, refine)
    return _ratio_db(h, z)


def band_hnr_energies(
    audio,
    sample_rate,
    hop,
    f0_hz=None,
    voiced=None,
    bands=BANDS,
    middles=True,
    trim=NOTE_TRIM_FRAMES,
    refine=False,
    per_frame=False,
):
    """(harmonic, noise) energies per band (numpy arrays) of :func:`band_hnr`: sum them
    over files, then :func:`ratio_db`. With ``per_frame``: ``[frames, bands]`` arrays, one
    row per judged frame (:func:`frame_hnr_db` makes dB of them)."""
    if f0_hz is None or voiced is None:
        f0_own, v_own = analyse(audio, sample_rate, hop)
        f0_hz = f0_own if f0_hz is None else f0_hz
        voiced = v_own if voiced is None else voiced
    elif refine:
        f0_hz = refine_f0(audio, sample_rate, hop, f0_hz, voiced)
    m = min(len(f0_hz), len(voiced), len(audio) // hop)
    f0 = np.asarray(f0_hz[:m], np.float64)
    v = np.asarray(voiced[:m], bool) & (f0 > 0)
    frames = np.flatnonzero(note_middles(v, trim) if middles else v)
    h, z = _hnr_energies(audio, sample_rate, f0, frames, hop, bands)
    return (h.sum(axis=0), z.sum(axis=0)) if not per_frame else (h, z)


def _ratio_db(h, z):
    with np.errstate(divide="ignore", invalid="ignore"):
        return [float(10 * np.log10(a / b)) if a > 0 and b > 0 else float("nan") for a, b in zip(h, z)]


ratio_db = _ratio_db


def frame_hnr_db(h, z):
    """Per-frame dB of :func:`band_hnr_energies` ``per_frame`` arrays; NaN where a frame
    has no energy in a band. Their median per band (``np.nanmedian(..., axis=0)``) is the
    typical frame, which loud outliers do not move (the energy-sum ratio of
    :func:`band_hnr` weighs loud frames more)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((h > 0) & (z > 0), 10 * np.log10(np.maximum(h, 1e-300) / np.maximum(z, 1e-300)), np.nan)


def whistle_fraction(audio, sample_rate: int, hop: int, unvoiced=None):
    """Share of audible unvoiced frames that whistle (see the module text). ``unvoiced``
    defaults to the signal's own analysis. 0.0 when no frame qualifies."""
    w, n = whistle_counts(audio, sample_rate, hop, unvoiced)
    return w / n if n else 0.0


def whistle_counts(audio, sample_rate: int, hop: int, unvoiced=None, lines: bool = False):
    """(whistling frames, judged frames): sum over files for a pooled fraction. With
    ``lines``, a third item: the whistling frames' peak frequencies in Hz (bin centres of
    a 512-point DFT, so sr/4 reads exactly; see :func:`limit_cycle_count`)."""
    a = np.asarray(audio, np.float64)
    if unvoiced is None:
        unvoiced = ~analyse(a, sample_rate, hop)[1]
    L = 512
    win = np.hanning(L)
    freqs = np.fft.rfftfreq(L, 1.0 / sample_rate)
    hi = freqs >= WHISTLE_MIN_HZ
    w = n = 0
    where = []
    for t in np.flatnonzero(np.asarray(unvoiced, bool)):
        c = int((t + 0.5) * hop)
        seg = a[c - L // 2 : c + L // 2]
        if len(seg) < L or 10 * np.log10(np.mean(seg**2) + 1e-30) < AUDIBLE_DB:
            continue
        spec = np.abs(np.fft.rfft(seg * win)) ** 2
        e = spec[hi]
        if e.sum() <= 0:
            continue
        n += 1
        p = int(np.argmax(e))
        if e[max(0, p - 1) : p + 2].sum() > WHISTLE_SHARE * e.sum():
            w += 1
            where.append(float(freqs[hi][p]))
    return (w, n, where) if lines else (w, n)


def limit_cycle_count(peak_hz, sample_rate: int) -> int:
    """How many whistle peaks (:func:`whistle_counts` ``lines``) lie within one DFT bin of
    sr/4 or sr/3: the period-4 and period-3 limit cycles of argmax sampling."""
    tol = sample_rate / 512 + 1e-6
    return int(sum(min(abs(f - sample_rate / 4), abs(f - sample_rate / 3)) <= tol for f in peak_hz))


def _lowpass(audio, sample_rate, cutoff):
    from scipy.signal import butter, sosfiltfilt

    a = np.asarray(audio, np.float64)
    sos = butter(4, cutoff, "low", fs=sample_rate, output="sos")
    pad = np.zeros(sample_rate // 4)  # silence around it: no edge transient of the filter's own
    return sosfiltfilt(sos, np.concatenate([pad, a, pad]), padtype=None)[len(pad) : len(pad) + len(a)]


def thump_peak(audio, sample_rate: int, cutoff: float = THUMP_CUTOFF) -> float:
    """Largest |signal| after a zero-phase 4th-order Butterworth low-pass at ``cutoff``
    (the slow swings heard as thumps; the target is <= ``THUMP_LIMIT``)."""
    if len(audio) < 64:
        return 0.0
    return float(np.abs(_lowpass(audio, sample_rate, cutoff)).max())


def thump_frames(audio, sample_rate: int, hop: int, cutoff: float = THUMP_CUTOFF):
    """Per frame ``t`` (samples ``t hop .. (t + 1) hop``), the largest |signal| below
    ``cutoff`` (as :func:`thump_peak`). Count frames above ``THUMP_LIMIT`` with a mask,
    e.g. the unvoiced ones, where the engine's thumps sit (see :func:`listen`)."""
    n = len(audio) // hop
    if n == 0:
        return np.zeros(0)
    low = np.abs(_lowpass(audio, sample_rate, cutoff))[: n * hop]
    return low.reshape(n, hop).max(axis=1)


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
    """Every proxy of one signal: band HNR (note middles), whistles on unvoiced frames,
    the sub-80 Hz peak and its frames over ``THUMP_LIMIT`` (unvoiced frames / all), DNSMOS
    (with ``mos``). ``f0_hz``/``voiced``: the intended pitch and voicing per frame (the
    features); the f0 is refined on the signal (:func:`refine_f0`), the frames stay. Without
    them the signal's own analysis decides. Pool several with :func:`pooled`."""
    if f0_hz is None or voiced is None:
        f0_hz, voiced = analyse(audio, sample_rate, hop)
        refine = False
    else:
        refine = True
    voiced = np.asarray(voiced, bool)
    hf, zf = band_hnr_energies(audio, sample_rate, hop, f0_hz, voiced, refine=refine, per_frame=True)
    h, z = hf.sum(axis=0), zf.sum(axis=0)
    w, n, where = whistle_counts(audio, sample_rate, hop, ~voiced, lines=True)
    per = thump_frames(audio, sample_rate, hop)
    m = min(len(per), len(voiced))
    over = per[:m] > THUMP_LIMIT
    return {
        "hnr": (h, z),
        "hnr_frames": frame_hnr_db(hf, zf),
        "whistle": (w, n),
        "whistle_limit_cycles": limit_cycle_count(where, sample_rate),
        "thump": thump_peak(audio, sample_rate),
        "thump_frames": (int((over & ~voiced[:m]).sum()), int((~voiced[:m]).sum()), int(over.sum()), int(m)),
        "dnsmos": dnsmos(audio, sample_rate) if mos else None,
    }


def pooled(results) -> dict:
    """Pool :func:`listen` results of several files: energies and counts summed, the
    largest thump, DNSMOS averaged. ``whistle_frames``: [whistling, judged];
    ``whistle_limit_cycles``: whistles at sr/4 or sr/3. ``hnr_db``: the energy-sum ratio per band;
    ``hnr_median_db``: the median frame's; ``hnr_frames``: frames judged.
    ``thump_frames``: [unvoiced frames over the limit, unvoiced frames, all frames over
    the limit, all frames]."""
    results = list(results)
    h = sum(r["hnr"][0] for r in results)
    z = sum(r["hnr"][1] for r in results)
    w = sum(r["whistle"][0] for r in results)
    n = sum(r["whistle"][1] for r in results)
    tf = [int(sum(r["thump_frames"][i] for r in results)) for i in range(4)]
    ds = [r["dnsmos"] for r in results if r["dnsmos"]]
    nb = len(np.atleast_1d(h))
    fr = np.concatenate([np.reshape(r["hnr_frames"], (-1, nb)) for r in results] + [np.zeros((0, nb))])
    fr = fr[np.isfinite(fr).any(axis=1)]
    med = [float(np.median(c[np.isfinite(c)])) if np.isfinite(c).any() else float("nan") for c in fr.T]
    return {
        "hnr_db": [round(v, 1) for v in _ratio_db(h, z)],
        "hnr_median_db": [round(v, 1) for v in med],
        "hnr_frames": int(len(fr)),
        "whistle": round(w / n, 3) if n else 0.0,
        "whistle_frames": [int(w), int(n)],
        "whistle_limit_cycles": int(sum(r.get("whistle_limit_cycles", 0) for r in results)),
        "thump": round(max(r["thump"] for r in results), 3),
        "thump_frames": tf,
        "dnsmos": {k: round(float(np.mean([d[k] for d in ds])), 2) for k in ("sig", "bak", "ovrl")} if ds else None,
    }
