"""The float reference (docs/model.md in numpy) and the shared sample <-> class mappings."""

import numpy as np
import pytest

from vocoder.engine.reference import (
    ReferenceModel,
    audio_to_dual,
    byte_to_input,
    class_to_input,
    dual_to_audio,
    mulaw_decode,
    mulaw_encode,
    normalise_features,
)
from vocoder.testing import random_preset


def features(preset, frames, seed=0):
    return np.random.default_rng(seed).standard_normal((frames, preset.n_features)).astype(np.float32)


# --------------------------------------------------------------------------- mappings


def test_dual_round_trip_every_16bit_value():
    s = np.arange(-32768, 32768)
    audio = (s / 32768.0).astype(np.float32)
    c, f = audio_to_dual(audio)
    assert c.min() == 0 and c.max() == 255 and f.min() == 0 and f.max() == 255
    np.testing.assert_array_equal(c * 256 + f - 32768, s)
    np.testing.assert_array_equal(dual_to_audio(c, f), audio)
    assert audio_to_dual(0.0) == (128, 0)


def test_dual_clips_and_handles_nan():
    c, f = audio_to_dual(np.array([-2.0, 2.0, np.nan, np.inf, -np.inf]))
    np.testing.assert_array_equal(c * 256 + f - 32768, [-32768, 32767, 0, 32767, -32768])


def test_input_mappings():
    np.testing.assert_allclose(byte_to_input([0, 255]), [-1.0, 1.0])
    np.testing.assert_allclose(class_to_input([0, 511], 512), [-1.0, 1.0])


@pytest.mark.parametrize("bits", [8, 9, 10])
def test_mulaw_round_trip(bits):
    Q = 2**bits
    k = np.arange(Q)
    audio = mulaw_decode(k, bits)
    assert audio.dtype == np.float32 and np.all(np.diff(audio) > 0)
    assert audio[0] == -1.0 and audio[-1] == 1.0
    np.testing.assert_array_equal(mulaw_encode(audio, bits), k)
    x = np.linspace(-1, 1, 10001)
    err = np.abs(mulaw_decode(mulaw_encode(x, bits), bits) - x)
    assert err.max() < 0.05  # coarse steps only near +-1
    assert mulaw_encode(0.0, bits) == Q // 2  # (0 + 1)/2 * (Q-1) = Q/2 - 0.5 rounds up
    np.testing.assert_array_equal(mulaw_encode([-5.0, 5.0, np.nan], bits), [0, Q - 1, Q // 2])


# --------------------------------------------------------------------------- conditioning


def test_conditioning_shape_and_manual_frame(dual_preset):
    m = ReferenceModel(dual_preset)
    f = features(dual_preset, 6)
    cond = m.conditioning(f)
    H = dual_preset.hidden
    assert cond.shape == (6, 3 * H) and cond.dtype == np.float64
    # Frame 0 with ctx_before = lookahead = 1 sees frames [0, 0, 1].
    t = dual_preset.tensors
    z = np.clip((f.astype(np.float64) - t["feat_mean"]) / t["feat_std"], -8, 8)
    x = np.concatenate([z[0], z[0], z[1]])
    c1 = np.tanh(t["cond1_w"].astype(np.float64) @ x + t["cond1_b"])
    np.testing.assert_allclose(cond[0], t["cond2_w"].astype(np.float64) @ c1 + t["cond2_b"], rtol=1e-12, atol=1e-12)
    assert m.conditioning(f[:0]).shape == (0, 3 * H)
    with pytest.raises(ValueError, match="features must be"):
        m.conditioning(f[:, :-1])


def test_conditioning_bad_values_are_finite_and_clamped(dual_preset):
    m = ReferenceModel(dual_preset)
    f = features(dual_preset, 5)
    f[0, 0], f[1, 1], f[2, 2], f[3, 3], f[4, :] = np.nan, np.inf, -np.inf, 1e30, -1e30
    cond = m.conditioning(f)
    assert np.all(np.isfinite(cond))
    t = dual_preset.tensors
    z = normalise_features(f, t["feat_mean"], t["feat_std"])
    assert z[0, 0] == 0 and z[1, 1] == 8 and z[2, 2] == -8 and z[3, 3] == 8 and np.all(z[4] == -8)
    assert np.all(normalise_features(np.full((1, 8), 1e300), t["feat_mean"], t["feat_std"]) == 8)


# --------------------------------------------------------------------------- teacher forcing


def test_teacher_forced_shapes(dual_preset, mulaw_preset):
    for p, keys in ((dual_preset, {"logits_c": 256, "logits_f": 256}), (mulaw_preset, {"logits": 512})):
        m = ReferenceModel(p)
        f = features(p, 3)
        audio = np.random.default_rng(0).uniform(-0.5, 0.5, 3 * p.hop)
        out = m.teacher_forced(f, audio)
        assert set(out) == set(keys)
        for k, q in keys.items():
            assert out[k].shape == (3 * p.hop, q) and np.all(np.isfinite(out[k]))
        with pytest.raises(ValueError, match="samples"):
            m.teacher_forced(f, audio[:-1])


def test_coarse_logits_do_not_see_current_coarse(dual_preset):
    m = ReferenceModel(dual_preset)
    f = features(dual_preset, 2)
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, 2 * dual_preset.hop)
    a = m.teacher_forced(f, audio)
    i = 17
    audio2 = audio.copy()
    audio2[i] = -audio2[i]  # a different coarse byte at sample i
    b = m.teacher_forced(f, audio2)
    np.testing.assert_array_equal(a["logits_c"][: i + 1], b["logits_c"][: i + 1])
    assert not np.allclose(a["logits_f"][i], b["logits_f"][i])
    assert not np.allclose(a["logits_c"][i + 1], b["logits_c"][i + 1])


def test_teacher_forcing_reproduces_argmax_generation(dual_preset, mulaw_preset):
    """Free-running at T = 0 then teacher-forcing its output gives back the same classes."""
    for p in (dual_preset, mulaw_preset):
        m = ReferenceModel(p)
        f = features(p, 4, seed=3)
        audio = m.generate(f, temperature=0.0)
        out = m.teacher_forced(f, audio)
        if p.head == "dual":
            c, fi = audio_to_dual(audio)
            np.testing.assert_array_equal(out["logits_c"].argmax(1), c)
            np.testing.assert_array_equal(out["logits_f"].argmax(1), fi)
        else:
            np.testing.assert_array_equal(out["logits"].argmax(1), mulaw_encode(audio, 9))


# --------------------------------------------------------------------------- generation


@pytest.mark.parametrize(
    "kw",
    [dict(head="dual"), dict(head="mulaw"), dict(head="dual", subscale=4, horizon=2), dict(head="mulaw", subscale=3)],
)
def test_generate(kw):
    p = random_preset(hidden=32, density=0.3, n_features=6, hop=25, cond_hidden=16, seed=4, **kw)
    m = ReferenceModel(p)
    f = features(p, 5)
    a = m.generate(f, seed=1)
    assert a.shape == (5 * 25,) and a.dtype == np.float32
    assert np.all(np.isfinite(a)) and np.all(np.abs(a) <= 1.0)
    assert len(np.unique(a)) > 10  # random weights still make a varying signal
    np.testing.assert_array_equal(m.generate(f, seed=1), a)
    assert not np.array_equal(m.generate(f, seed=2), a)
    assert m.generate(f[:0]).shape == (0,)


def test_generate_with_bad_features_is_finite(dual_preset):
    f = features(dual_preset, 2)
    f[0, :] = np.nan
    f[1, :] = np.inf
    a = ReferenceModel(dual_preset).generate(f)
    assert np.all(np.isfinite(a))
    with pytest.raises(ValueError, match="temperature"):
        ReferenceModel(dual_preset).generate(f, temperature=-1)


def test_float32_reference_is_close_to_float64(dual_preset):
    f = features(dual_preset, 2)
    audio = np.random.default_rng(5).uniform(-0.5, 0.5, 2 * dual_preset.hop)
    a = ReferenceModel(dual_preset).teacher_forced(f, audio)
    b = ReferenceModel(dual_preset, dtype=np.float32).teacher_forced(f, audio)
    assert b["logits_c"].dtype == np.float32
    np.testing.assert_allclose(a["logits_c"], b["logits_c"], atol=1e-3)
