"""Listening proxies (vocoder.train.listen) on signals whose answer is known, and the
output-scheme simulation of vocoder.train.floor on a real file written and read back."""

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pyworld")

from vocoder.train import listen  # noqa: E402

SR, HOP = 16000, 80
N = 3 * SR
T = np.arange(N) / SR
FADE = np.minimum(1.0, np.minimum(np.arange(N), N - 1 - np.arange(N)) / 1600.0)   # 0.1 s fades


def vibrato_tone(flat=False):
    """A harmonic tone at 150 Hz with +-30 cents of vibrato, harmonics to 7.9 kHz."""
    f0 = 150 * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.5 * T))
    ph = np.cumsum(f0 / SR)
    x = sum(np.sin(2 * np.pi * h * ph + h) / (1 if flat else h) for h in range(1, 52)) * FADE
    frames = N // HOP
    return x * 0.3 / np.abs(x).max(), f0[((np.arange(frames) + 0.5) * HOP).astype(int)], np.ones(frames, bool)


def test_harmonic_tone_with_vibrato_is_harmonic_in_every_band():
    x, f0, v = vibrato_tone()
    hnr = listen.band_hnr(x, SR, HOP, f0, v)
    assert min(hnr) > 35.0, hnr
    # its own pitch analysis finds the same
    assert min(listen.band_hnr(x, SR, HOP)) > 35.0


def test_white_noise_reads_about_zero():
    _, f0, v = vibrato_tone()
    noise = np.random.default_rng(0).standard_normal(N) * 0.1
    hnr = listen.band_hnr(noise, SR, HOP, f0, v)
    assert all(-1.5 < h < 1.5 for h in hnr), hnr


@pytest.mark.parametrize("snr_db", [20.0, 10.0])
def test_harmonics_plus_noise_at_a_set_ratio(snr_db):
    """Flat harmonics plus white noise at a broadband SNR (so the same SNR per band):
    reads about 10 log10(1 + 8/3 * snr) (the noise in the three harmonic bins of eight
    counts as harmonic); measured 2-3 dB under that in the bands below 2 kHz, where
    fewer harmonics and the window's leakage weigh more."""
    x, f0, v = vibrato_tone(flat=True)
    noise = np.random.default_rng(1).standard_normal(N)
    y = x + noise / np.std(noise) * np.std(x) * 10 ** (-snr_db / 20)
    want = 10 * np.log10(1 + 8 / 3 * 10 ** (snr_db / 10))
    hnr = listen.band_hnr(y, SR, HOP, f0, v)
    assert all(-3.5 < h - want < 1.5 for h in hnr), (hnr, want)


def test_note_middles_trim_each_voiced_run():
    v = np.array([0] + [1] * 20 + [0] * 3 + [1] * 6 + [0], bool)
    m = listen.note_middles(v, trim=4)
    assert m.sum() == 12 and m[5:17].all() and not m[:5].any() and not m[17:].any()


def test_whistles_are_lines_not_noise():
    unv = np.ones(N // HOP, bool)
    for hz in (SR / 4, SR / 3, 2500.0):
        assert listen.whistle_fraction(0.1 * np.sin(2 * np.pi * hz * T), SR, HOP, unv) == 1.0, hz
    noise = np.random.default_rng(2).standard_normal(N) * 0.1
    assert listen.whistle_fraction(noise, SR, HOP, unv) == 0.0
    assert listen.whistle_fraction(noise * 1e-4, SR, HOP, unv) == 0.0   # inaudible frames are not judged
    assert listen.whistle_counts(noise * 1e-4, SR, HOP, unv) == (0, 0)


def test_thump_is_the_slow_swing():
    x, _, _ = vibrato_tone()
    assert listen.thump_peak(x, SR) < 0.02
    swing = 0.3 * np.sin(2 * np.pi * 30 * T) * FADE
    assert abs(listen.thump_peak(x + swing, SR) - 0.3) < 0.03


def test_listen_on_a_file_written_and_read_back(tmp_path):
    x, _, _ = vibrato_tone()
    noise = np.random.default_rng(3).standard_normal(N) * 0.01
    y = np.concatenate([x, noise * FADE])
    sf.write(tmp_path / "a.wav", y, SR, subtype="PCM_16")
    a, sr = sf.read(tmp_path / "a.wav")
    r = listen.pooled([listen.listen(a, sr, HOP, mos=False)] * 2)
    assert min(r["hnr_db"]) > 30 and r["thump"] < 0.05 and r["whistle"] == 0.0 and r["dnsmos"] is None


def test_scheme_simulation_without_errors_keeps_the_recording(tmp_path):
    """Every scheme with every class right delivers the recording within the 8-bit
    format (whose noise caps a clean tone's HNR in the mid 30s dB); errors of a few
    classes make the plain scheme noisier."""
    from vocoder.features import extract
    from vocoder.train import floor

    x, _, _ = vibrato_tone()
    sf.write(tmp_path / "tone.wav", x, SR, subtype="PCM_16")
    res = floor.simulate_schemes(tmp_path, sigmas=(0.0, 4.0), alpha=0.6,
                                 schemes=(("plain", None), ("lpc+pitch 0.8", 0.8)))
    rows = {(r["scheme"], r["sigma"]): r for r in res["rows"]}
    rec = rows[("recording", 0.0)]
    for scheme in ("plain", "lpc+pitch 0.8"):
        r = rows[(scheme, 0.0)]
        assert r["stft"] < 0.5 and min(r["hnr_db"]) > 30, r
    assert rows[("plain", 4.0)]["stft"] > rows[("plain", 0.0)]["stft"] + 0.2
    assert rows[("plain", 4.0)]["hnr_db"][3] < min(rec["hnr_db"][3], 30) - 10
    assert "| plain | 4 |" in floor.format_schemes(res)
    assert extract(x, SR).shape[1] == 26
