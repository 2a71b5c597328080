"""The engine's per-level elementwise functions (activation quantiser, dequantiser,
Gumbel-max sampler) called directly: every level available here must give exactly the
bits of the plain C / baseline version, on awkward lengths and on NaN, inf and ties,
which whole-engine runs rarely reach."""

import numpy as np
import pytest

from vocoder import _engine, _kernels
from vocoder.engine import kernels

LEVELS = kernels.available_levels()
IDX = {name: kernels.LEVELS.index(name) for name in LEVELS}
REF = IDX[LEVELS[0]]


def noise_table():
    """The engine's table of Gumbel quantiles (wavernn.c, vk_engine_create)."""
    u = (np.arange(_kernels.NOISE_SIZE) + 0.5) / _kernels.NOISE_SIZE
    return (-np.log(-np.log(u))).astype(np.float32)


NOISE = noise_table()


def awkward_vectors(rng):
    """Vectors of many lengths with the values that test the edge rules."""
    specials = np.array(
        [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 3.4e38, -3.4e38, 0.5, -0.5, 1.5, -1.5], np.float32
    )
    for n in list(range(0, 41)) + [63, 64, 65, 191, 192, 384, 385, 1152]:
        yield rng.standard_normal(n).astype(np.float32)
        if n:
            x = rng.standard_normal(n).astype(np.float32) * np.float32(10.0 ** rng.integers(-6, 6))
            x[rng.random(n) < 0.2] = rng.choice(specials, size=None)
            yield x
            yield np.full(n, rng.choice(specials), np.float32)
            # exact halves after scaling: absmax 127 makes x * inv = x
            h = (rng.integers(-254, 255, n) / 2).astype(np.float32)
            h[0] = 127.0
            yield h


def test_quantize_same_bytes_every_level():
    rng = np.random.default_rng(0)
    for x in awkward_vectors(rng):
        for pad in (0, 3, 64):
            n_padded = x.size + pad
            want = _kernels.elementwise_quantize(REF, x, n_padded)
            for name in LEVELS:
                got = _kernels.elementwise_quantize(IDX[name], x, n_padded)
                assert np.float32(got[0]).tobytes() == np.float32(want[0]).tobytes(), (name, x)
                assert np.array_equal(got[1], want[1]), (name, x, got[1], want[1])


def test_quantize_rules():
    """The documented rule, on the active level: scale absmax/127, round half away from
    zero, NaN -> 0, inf clamps, padding 128 (zero)."""
    lv = IDX[LEVELS[-1]]
    s, q = _kernels.elementwise_quantize(lv, np.array([127, -63.5, 0.5, -0.5, np.nan, 1.49], np.float32), 8)
    assert s == np.float32(1.0)
    assert list(q) == [255, 64, 129, 127, 128, 129, 128, 128]
    s, q = _kernels.elementwise_quantize(lv, np.array([np.inf, -np.inf, 1.0], np.float32), 3)
    assert np.isfinite(s) and list(q) == [255, 1, 128]
    s, q = _kernels.elementwise_quantize(lv, np.zeros(5, np.float32), 8)
    assert s == 1.0 and list(q) == [128] * 8


def test_quantize_capped_absmax_every_level():
    """|x| in (3e38, 3.4e38] with a sum that does not overflow: the absmax is capped at
    3e38, so x * inv passes 127.5 and must still clamp to +-127 (the vector levels once
    took their unclamped path here and gave -128 for -3.2e38)."""
    for n in (1, 16, 17, 64):
        for v in (3.2e38, -3.2e38, 3.4e38, -3.0e38):
            x = np.zeros(n, np.float32)
            x[0] = v
            x[-1] = 1.0 if n > 1 else v
            want = _kernels.elementwise_quantize(REF, x, n)
            assert want[1][0] == (255 if v > 0 else 1)
            for name in LEVELS:
                got = _kernels.elementwise_quantize(IDX[name], x, n)
                assert np.array_equal(got[1], want[1]), (name, n, v, got[1], want[1])
                got = _engine.elementwise_quantize_max(IDX[name], x, n, nan_free_absmax(x))
                assert np.array_equal(got[1], want[1]), (name, n, v, got[1], want[1])


def test_dequantize_same_bits_every_level():
    rng = np.random.default_rng(1)
    for rows in list(range(0, 41)) + [192, 256, 1152]:
        acc = rng.integers(-(2**31), 2**31, rows, dtype=np.int64).astype(np.int32)
        acc[: rows // 3] //= 4096
        scales = (rng.random(rows) * 10.0 ** rng.integers(-3, 3)).astype(np.float32)
        bias = rng.standard_normal(rows).astype(np.float32)
        for x_scale in (np.float32(0.013), np.float32(3e38 / 127), np.float32(1.0)):
            for b in (None, bias):
                want = _kernels.elementwise_dequantize(REF, acc, scales, x_scale, b)
                for name in LEVELS:
                    got = _kernels.elementwise_dequantize(IDX[name], acc, scales, x_scale, b)
                    assert got.tobytes() == want.tobytes(), (name, rows, x_scale, b is None)


def nan_free_absmax(x):
    """max |x| over the non-NaN elements (0 when none): what a producer of x passes."""
    a = np.abs(x[~np.isnan(x)])
    return np.float32(a.max()) if a.size else np.float32(0.0)


def test_quantize_max_same_bytes_as_quantize():
    """Given the max its producer noted, the quantiser skips its first pass and must give
    exactly what the two-pass quantiser gives, on every level (x without NaN: the
    producers write none; inf and huge values stay)."""
    rng = np.random.default_rng(4)
    for x in awkward_vectors(rng):
        x = np.where(np.isnan(x), np.float32(0.25), x).astype(np.float32)
        for pad in (0, 5):
            want = _kernels.elementwise_quantize(REF, x, x.size + pad)
            for name in LEVELS:
                got = _engine.elementwise_quantize_max(IDX[name], x, x.size + pad, nan_free_absmax(x))
                assert np.float32(got[0]).tobytes() == np.float32(want[0]).tobytes(), (name, x)
                assert np.array_equal(got[1], want[1]), (name, x, got[1], want[1])


def test_dequantize_relu_same_bits_as_separate_passes():
    """The hidden layer's fused pass (dequantise, + excitation term, relu, max) gives the
    bits of the passes it replaced, on every level, with inf and NaN on the way."""
    rng = np.random.default_rng(5)
    with np.errstate(all="ignore"):
        for rows in list(range(1, 41)) + [192, 256, 384]:
            acc = rng.integers(-(2**31), 2**31, rows, dtype=np.int64).astype(np.int32)
            acc[: rows // 2] //= 2**20
            scales = (rng.random(rows) * 10.0 ** rng.integers(-3, 3)).astype(np.float32)
            bias = rng.standard_normal(rows).astype(np.float32)
            w0 = rng.standard_normal(rows).astype(np.float32)
            w1 = rng.standard_normal(rows).astype(np.float32)
            if rows > 3:
                w0[rows // 3] = np.inf  # inf + ... and inf - inf = NaN reach the relu
                w1[rows // 3] = -np.inf
            for x_scale in (np.float32(1e-6), np.float32(3e38 / 127)):
                for b in (None, bias):
                    for ws in ((None, None), (w0, w1)):
                        for e0, e1 in ((np.float32(0.7), np.float32(-0.3)), (np.float32(0.0), np.float32(1.0))):
                            y = _kernels.elementwise_dequantize(REF, acc, scales, x_scale, b)
                            if ws[0] is not None:
                                y = y + (ws[0] * e0 + ws[1] * e1)
                            y = np.where(y > 0, y, np.float32(0)).astype(np.float32)
                            want_max = np.float32(y.max())
                            for name in LEVELS:
                                got, m = _engine.elementwise_dequantize_relu(
                                    IDX[name], acc, scales, x_scale, b, ws[0], ws[1], e0, e1
                                )
                                assert got.tobytes() == y.tobytes(), (name, rows, x_scale)
                                assert np.float32(m).tobytes() == want_max.tobytes(), (name, rows, m, want_max)


def sample_cases(rng):
    for n in list(range(1, 40)) + [255, 256, 257, 512, 1000, 1024]:
        yield rng.standard_normal(n).astype(np.float32) * 4  # flat-ish: most classes in play
        yield (rng.standard_normal(n) * 40).astype(np.float32)  # peaky: most skipped
        yield np.zeros(n, np.float32)  # all tied
        x = rng.standard_normal(n).astype(np.float32)
        x[rng.random(n) < 0.3] = rng.choice(np.array([np.nan, -np.inf, np.inf, 1e38, -1e38], np.float32))
        yield x
        yield np.full(n, np.nan, np.float32)
        yield np.full(n, -np.inf, np.float32)


def test_sample_same_class_every_level():
    rng = np.random.default_rng(2)
    for logits in sample_cases(rng):
        for t in (0.0, -1.0, 1e-4, 0.3, 1.0, 5.0, 1e30):
            for key in rng.integers(0, 2**64, 6, dtype=np.uint64):
                want = _kernels.elementwise_sample(REF, logits, t, NOISE, int(key))
                assert 0 <= want < logits.size
                for name in LEVELS:
                    got = _kernels.elementwise_sample(IDX[name], logits, t, NOISE, int(key))
                    assert got == want, (name, logits, t, int(key), got, want)


def test_sample_acc_same_as_dequantize_then_sample():
    """The sampler fed with accumulators (dequantisation in its first pass) writes the
    dequantiser's logits and draws the class the plain sampler draws from them."""
    rng = np.random.default_rng(6)
    for n in list(range(1, 40)) + [255, 256, 257, 512]:
        scales = (rng.random(n) * 10.0 ** rng.integers(-4, 0)).astype(np.float32)
        bias = rng.standard_normal(n).astype(np.float32)
        for acc in (
            rng.integers(-3000, 3000, n).astype(np.int32),
            np.zeros(n, np.int32),
            rng.integers(-(2**31), 2**31, n, dtype=np.int64).astype(np.int32),
        ):
            for x_scale in (np.float32(0.013), np.float32(3e38 / 127)):
                for b in (None, bias):
                    want_logits = _kernels.elementwise_dequantize(REF, acc, scales, x_scale, b)
                    for t in (0.0, 1e-4, 1.0, 5.0):
                        for key in rng.integers(0, 2**64, 2, dtype=np.uint64):
                            want = _kernels.elementwise_sample(REF, want_logits, t, NOISE, int(key))
                            for name in LEVELS:
                                got, logits = _engine.elementwise_sample_acc(
                                    IDX[name], acc, scales, x_scale, b, t, NOISE, int(key)
                                )
                                assert logits.tobytes() == want_logits.tobytes(), (name, n)
                                assert got == want, (name, n, t, int(key), got, want)


def test_sample_argmax_and_edge_rules():
    lv = IDX[LEVELS[-1]]
    rng = np.random.default_rng(3)
    for _ in range(200):
        x = rng.integers(-3, 4, rng.integers(1, 300)).astype(np.float32)  # many ties
        assert _kernels.elementwise_sample(lv, x, 0.0, NOISE, 0) == int(np.argmax(x))  # first max
    assert _kernels.elementwise_sample(lv, np.array([np.nan, 2, 5, 5], np.float32), 0.0, NOISE, 0) == 2
    for t in (0.0, 1.0):
        assert _kernels.elementwise_sample(lv, np.full(20, np.nan, np.float32), t, NOISE, 7) == 0
        assert _kernels.elementwise_sample(lv, np.full(20, -np.inf, np.float32), t, NOISE, 7) == 0
        one = np.full(37, -np.inf, np.float32)
        one[29] = -5.0
        assert _kernels.elementwise_sample(lv, one, t, NOISE, 7) == 29


@pytest.mark.parametrize("name", LEVELS)
def test_sample_follows_softmax(name):
    """Gumbel-max with hashed noise samples softmax(logits / T): frequencies over many
    keys match it (a bad hash, or a skip that is not sound, would show up here)."""
    logits = np.array([0.0, 1.0, 2.0, 3.0, -1.0, 2.5, -30.0, 0.5] * 4, np.float32)
    n_draws = 40000
    for t in (1.0, 0.5):
        p = np.exp((logits - logits.max()) / t)
        p /= p.sum()
        keys = np.random.default_rng(4).integers(0, 2**64, n_draws, dtype=np.uint64)
        counts = np.bincount(
            [_kernels.elementwise_sample(IDX[name], logits, t, NOISE, int(k)) for k in keys], minlength=logits.size
        )
        freq = counts / n_draws
        sigma = np.sqrt(p * (1 - p) / n_draws)
        # the 4096-entry table truncates the Gumbel tails; its effect is far below 5 sigma
        assert np.all(np.abs(freq - p) <= 5 * sigma + 2e-3), (t, np.round(freq, 4), np.round(p, 4))


@pytest.mark.parametrize(
    "hidden,head,subscale,horizon,excitation",
    [
        (20, "dual", 1, 0, 2),  # 10 units per half: leftover units on every vector level
        (36, "dual", 1, 0, 0),  # n_in 3
        (44, "mulaw", 1, 0, 2),  # n_in 5, 22 units
        (36, "dual", 3, 1, 2),  # n_in 6
        (20, "mulaw", 2, 1, 0),  # n_in 4
        (28, "dual", 2, 4, 2),  # n_in 9: the generic (not unrolled) GRU path
    ],
)
def test_engine_odd_sizes_same_bits_every_level(hidden, head, subscale, horizon, excitation):
    """Whole engine on sizes that are not multiples of the vector width, and on every
    GRU input count, so the vector levels' leftover and generic paths run."""
    from vocoder.engine.wavernn import Vocoder
    from vocoder.testing import random_preset

    p = random_preset(
        hidden=hidden,
        density=0.5,
        head=head,
        subscale=subscale,
        horizon=horizon,
        excitation=excitation,
        n_features=8,
        hop=40,
        seed=hidden + subscale,
    )
    f = np.random.default_rng(5).normal(size=(25, 8)).astype(np.float32)
    if excitation:
        f[:, 0] = 60 + 5 * np.sin(np.arange(25))
        f[:, 1] = np.arange(25) % 3 > 0
    want = Vocoder(p, seed=1, level=LEVELS[0]).vocode(f)
    assert np.all(np.isfinite(want))
    for name in LEVELS[1:]:
        assert Vocoder(p, seed=1, level=name).vocode(f).tobytes() == want.tobytes(), name


@pytest.mark.parametrize("sample_rate,hop", [(16000, 80), (16000, 81), (24000, 120), (22050, 275), (8000, 1)])
def test_excitation_vector_path_equals_scalar_loop(sample_rate, hop):
    """Every x86 level runs the SSE2 excitation and a build without SSE2 the scalar loop,
    so only this check ties the two (the cross-level tests cannot see a difference)."""
    from vocoder import _engine

    assert _engine._excitation_selfcheck(sample_rate, hop) == 0
    assert _engine._excitation_selfcheck(16000, 0) == -1
