"""vocoder.train.features: the frame features of docs/features.md, and clear errors for bad input."""

import numpy as np
import pytest

pytest.importorskip("pyworld")

from vocoder.train import features as F  # noqa: E402

SR = 16000


def vowel(f0_hz, seconds, sr=SR, formants=((700, 80), (1200, 90), (2600, 120)), level=0.3, seed=0):
    """A vowel-like signal: a glottal pulse train (f0 may be an array per sample) through formant resonators."""
    from scipy.signal import lfilter

    n = int(seconds * sr)
    f0 = np.broadcast_to(np.asarray(f0_hz, np.float64), (n,))
    phase = np.cumsum(f0 / sr)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    x = pulses + 0.002 * np.random.default_rng(seed).standard_normal(n)
    for fc, bw in formants:
        r = np.exp(-np.pi * bw / sr)
        x = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / sr), r * r], x)
    return level * x / np.max(np.abs(x))


def test_shape_names_and_dtype():
    a = vowel(220.0, 1.0)
    f = F.extract(a, SR)
    assert f.dtype == np.float32
    assert f.shape == (len(a) // 80, 26)
    assert F.feature_names(24)[:3] == ["f0", "voicing", "env0"] and len(F.feature_names(24)) == 26
    f = F.extract(a[:1234], SR, hop=100, n_env=10)
    assert f.shape == (12, 12)


def test_f0_in_midi_and_voicing():
    a = vowel(220.0, 1.0)  # A3 = MIDI 57
    f = F.extract(a, SR)
    v = f[:, 1] > 0.5
    assert v.mean() > 0.9
    assert np.median(np.abs(f[v, 0] - 57.0)) * 100 < 10  # cents
    assert set(np.unique(f[:, 1])) <= {0.0, 1.0}


def test_unvoiced_f0_is_interpolated_and_finite():
    rng = np.random.default_rng(1)
    a = np.concatenate([vowel(196.0, 0.5), 0.05 * rng.standard_normal(SR // 2), vowel(262.0, 0.5)])
    f = F.extract(a, SR)
    assert np.all(np.isfinite(f))
    n = len(f)
    mid = f[n // 2 - 5 : n // 2 + 5]
    assert np.all(mid[:, 1] == 0)  # noise is unvoiced
    lo, hi = F.hz_to_midi(196.0), F.hz_to_midi(262.0)
    assert np.all((mid[:, 0] > lo - 0.5) & (mid[:, 0] < hi + 0.5))  # between the neighbours
    assert np.all(np.diff(mid[:, 0]) >= -1e-4)  # a straight line up
    assert np.all(F.interpolate_f0(np.zeros(5), np.zeros(5, bool)) == 60.0)


def test_envelope_carries_level():
    a = vowel(220.0, 0.6)
    f1, f2 = F.extract(a, SR), F.extract(0.5 * a, SR)
    v = (f1[:, 1] > 0.5) & (f2[:, 1] > 0.5)
    d = (f2[v, 2:] - f1[v, 2:]).mean()
    assert abs(d - 2 * np.log(0.5)) < 0.05


def test_envelope_follows_formants():
    lo = F.extract(vowel(150.0, 0.5, formants=((300, 60), (2300, 100))), SR)
    hi = F.extract(vowel(150.0, 0.5, formants=((800, 60), (1200, 100))), SR)
    bands = F._mel_inv(np.linspace(0, F._mel(SR / 2), 26))[1:-1]
    b300, b800 = np.argmin(np.abs(bands - 300)), np.argmin(np.abs(bands - 800))
    # the first formant's band is relatively stronger where the formant is
    assert (
        lo[20:-5, 2 + b300].mean() - lo[20:-5, 2 + b800].mean()
        > hi[20:-5, 2 + b300].mean() - hi[20:-5, 2 + b800].mean()
    )


def test_mel_weights_average():
    w = F.mel_weights(24, SR, 1024)
    assert w.shape == (24, 513)
    assert np.allclose(w.sum(axis=1), 1.0)


@pytest.mark.parametrize(
    "audio, words",
    [
        (np.zeros(16000), "silent"),
        (np.zeros(0), "empty"),
        (np.array([0.1, np.nan] * 400), "NaN"),
        (np.full(40, 0.3), "shorter than one frame"),
        (np.zeros((2, 1000)) + 0.1, "mono"),
    ],
)
def test_bad_audio_errors_name_the_source(audio, words):
    with pytest.raises(F.FeatureError, match=words) as e:
        F.extract(audio, SR, source="take7.wav")
    assert "take7.wav" in str(e.value)


def test_bad_files_errors_name_the_file(tmp_path):
    import soundfile

    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk" + bytes(range(50)))
    with pytest.raises(F.FeatureError, match="corrupt.wav"):
        F.load_wav(corrupt)
    silent = tmp_path / "silent.wav"
    soundfile.write(str(silent), np.zeros(8000, np.float32), SR)
    with pytest.raises(F.FeatureError, match=r"silent\.wav.*silent"):
        F.extract_file(silent)
    empty = tmp_path / "empty.wav"
    soundfile.write(str(empty), np.zeros(0, np.float32), SR)
    with pytest.raises(F.FeatureError, match="empty.wav"):
        F.load_wav(empty)
    with pytest.raises(F.FeatureError, match="missing.wav"):
        F.load_wav(tmp_path / "missing.wav")


def test_resampled_file_gives_same_pitch(tmp_path):
    import soundfile
    from scipy.signal import resample_poly

    a = vowel(247.0, 0.8)
    p = tmp_path / "b3.wav"
    soundfile.write(str(p), np.stack([resample_poly(a, 441, 160)] * 2, axis=1).astype(np.float32), 44100)
    audio, f = F.extract_file(p, 16000)
    assert abs(len(audio) - len(a)) <= 2
    v = f[:, 1] > 0.5
    assert np.median(np.abs(f[v, 0] - F.hz_to_midi(247.0))) * 100 < 10
