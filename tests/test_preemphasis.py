"""Pre-emphasis: a preset may model x[n] - a x[n-1]; the engine de-emphasises its output
(docs/model.md). Same bits as the documented recursion, on every level; old files load."""

import numpy as np
import pytest
from test_presets import raw_parts, write_raw

import vocoder
from vocoder.engine import kernels
from vocoder.engine.presets import PresetError, load_preset, save_preset
from vocoder.engine.reference import audio_to_classes, dc_block, deemphasize, emphasis_out, mulaw_encode, preemphasize
from vocoder.testing import random_preset


def features(p, frames=60):
    f = np.random.default_rng(1).normal(size=(frames, p.n_features)).astype(np.float32)
    f[:, 0] = 57.0
    f[:, 1] = 1.0
    return f


@pytest.mark.parametrize("head", ["mulaw", "dual"])
def test_engine_output_is_the_deemphasised_network_output(head):
    kw = dict(hidden=64, density=0.25, n_features=26, hop=80, seed=4, head=head, temperature=0.7)
    plain, tilted = random_preset(**kw), random_preset(**kw, preemphasis=0.85)
    raw = vocoder.Vocoder(plain, seed=3).vocode(features(plain))
    out = vocoder.Vocoder(tilted, seed=3).vocode(features(tilted))
    expect = emphasis_out(raw, 0.85, 16000)
    assert expect.tobytes() == np.clip(dc_block(deemphasize(raw, 0.85), 16000), -1, 1).tobytes()
    assert np.abs(out).max() > 0.01 and not np.array_equal(out, raw)
    assert out.tobytes() == expect.tobytes()


def test_same_bits_on_every_level_and_in_blocks():
    p = random_preset(hidden=64, density=0.25, n_features=26, hop=80, seed=4, head="mulaw", preemphasis=0.9)
    f = features(p)
    ref = vocoder.Vocoder(p, seed=1).vocode(f)
    for level in kernels.available_levels():
        assert vocoder.Vocoder(p, seed=1, level=level).vocode(f).tobytes() == ref.tobytes(), level
    v = vocoder.Vocoder(p, seed=1)
    v.feed(f)
    v.finish()
    got = []
    while sum(map(len, got)) < len(ref) + v.latency_samples:
        b = np.zeros(333, np.float32)
        v.render(b)
        got.append(b)
    got = np.concatenate(got)[v.latency_samples : v.latency_samples + len(ref)]
    assert got.tobytes() == ref.tobytes()


def test_huge_and_nan_features_stay_finite_and_clamped():
    p = random_preset(
        hidden=64, density=0.25, n_features=26, hop=80, seed=4, head="mulaw", preemphasis=0.99, temperature=1.0
    )
    f = features(p)
    f[::3] = np.nan
    f[1::3] = 1e30
    a = vocoder.Vocoder(p, seed=0).vocode(f)
    assert np.all(np.isfinite(a)) and np.abs(a).max() <= 1.0


def test_voice_sings_a_preemphasised_preset():
    p = random_preset(hidden=64, density=0.25, n_features=26, hop=80, seed=4, head="mulaw", preemphasis=0.85)
    v = vocoder.Voice(p, sample_rate=48000, seed=0)
    v.note_on(60)
    out = np.zeros(9600, np.float32)
    v.render(out)
    assert np.all(np.isfinite(out)) and np.abs(out).max() > 0.001


def test_classes_and_recursions_are_inverse():
    x = np.sin(np.arange(4000) * 0.05) * 0.5
    y = preemphasize(x, 0.85)
    assert y[0] == x[0] and y[5] == x[5] - 0.85 * x[4]
    assert np.allclose(deemphasize(y, 0.85), x, atol=1e-5)
    assert np.array_equal(audio_to_classes(x, 8, 0.85), mulaw_encode(y, 8))
    assert np.array_equal(audio_to_classes(x, 8), mulaw_encode(x, 8))
    # the float32 recursion is the engine's: one multiply, one add
    acc, manual = np.float32(0), np.empty(50, np.float32)
    for i, v in enumerate(y[:50].astype(np.float32)):
        acc = np.float32(v + np.float32(np.float32(0.85) * acc))
        manual[i] = acc
    assert manual.tobytes() == deemphasize(y[:50], 0.85).tobytes()
    r, z, zs = np.float32(1.0 - 2.0 * np.pi * 20.0 / 16000), np.float32(0), np.empty(50, np.float32)
    for i in range(50):
        z = np.float32(manual[i] + np.float32(np.float32(r * z) - (manual[i - 1] if i else np.float32(0))))
        zs[i] = z
    assert zs.tobytes() == dc_block(manual, 16000).tobytes()
    # the blocker removes DC and keeps the voice's band
    t = np.arange(16000)
    assert abs(dc_block(np.full(16000, 0.5), 16000)[-1000:]).max() < 1e-3
    tone = np.sin(2 * np.pi * 110 * t / 16000)
    assert 0.95 < np.abs(dc_block(tone, 16000)[8000:]).max() < 1.01


def test_round_trip_and_old_files(tmp_path):
    p = random_preset(hidden=16, density=0.5, n_features=4, hop=16, cond_hidden=8, seed=3, preemphasis=0.5)
    q = load_preset(save_preset(p, tmp_path / "pe.safetensors"))
    assert q.preemphasis == 0.5 and q.config["format_version"] == 4
    cfg, flat = raw_parts(p)
    cfg["format_version"] = 2
    del cfg["preemphasis"]
    old = load_preset(write_raw(tmp_path / "v2.safetensors", flat, cfg))
    assert old.preemphasis == 0.0
    cfg["format_version"] = 3
    with pytest.raises(PresetError, match="preemphasis"):
        load_preset(write_raw(tmp_path / "v3.safetensors", flat, cfg))  # version 3 must say it
    cfg["preemphasis"] = -0.1
    with pytest.raises(PresetError, match=r"config\.preemphasis.*0\.\.0\.99"):
        load_preset(write_raw(tmp_path / "neg.safetensors", flat, cfg))
