"""The engine (vocoder.Vocoder): the same bits on every kernel level, streaming in any
blocks equals one offline call, underruns, agreement with the float reference, subscale,
hostile features and bad arguments, presets through a file."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from vocoder.engine import kernels
from vocoder.engine.presets import load_preset, save_preset
from vocoder.engine.reference import ReferenceModel
from vocoder.engine.wavernn import Vocoder
from vocoder.testing import random_preset

LEVELS = kernels.available_levels()


def make_features(preset, frames, seed=0, scale=1.0):
    """Frames around the preset's feature statistics (normalised values ~ N(0, scale))."""
    t = preset.tensors
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((frames, preset.n_features)) * scale
    f = t["feat_mean"] + z * t["feat_std"]
    if preset.excitation:  # raw pitch (MIDI note) and voicing drive the excitation
        f[:, 0] = 57 + 12 * rng.random(frames)
        f[:, 1] = rng.random(frames) > 0.3
    return f.astype(np.float32)


def sha(a) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def assert_same_bits(got, want, what=""):
    """Byte equality, with the first differing sample in the message when it fails."""
    assert got.dtype == want.dtype and got.shape == want.shape, (what, got.dtype, got.shape, want.shape)
    if got.tobytes() != want.tobytes():
        i = int(np.flatnonzero(got.view(np.uint32) != want.view(np.uint32))[0])
        n = int(np.count_nonzero(got.view(np.uint32) != want.view(np.uint32)))
        pytest.fail(f"{what}: {n} of {got.size} samples differ; first at {i}: got {got[i]!r}, want {want[i]!r}")


def assert_sane_audio(a, n):
    assert a.dtype == np.float32 and a.shape == (n,)
    assert np.all(np.isfinite(a)), "non-finite audio"
    assert np.all(np.abs(a) <= 1.0), f"audio outside [-1, 1]: max |a| = {np.abs(a).max()}"


def stream_reference(v, features):
    """What ``render`` must give after feed(all) + finish: latency zeros, then vocode."""
    return np.concatenate([np.zeros(v.latency_samples, np.float32), v.vocode(features)])


# --------------------------------------------------------------------------- 1. every level, same bits

# 1 s of output (frames = sample_rate // hop) from random presets.
ONE_SECOND = {
    "dual": dict(hidden=384, head="dual", seed=11),
    "mulaw": dict(hidden=384, head="mulaw", mulaw_bits=10, seed=12),
    "dual-b4": dict(hidden=384, head="dual", subscale=4, seed=13),
    "mulaw-b16": dict(hidden=128, density=0.25, head="mulaw", subscale=16, horizon=2, seed=14),
    # remainder after the predictor; sampled in unvoiced frames, argmax in voiced ones
    "mulaw-pred": dict(
        hidden=384,
        head="mulaw",
        mulaw_bits=8,
        n_features=26,
        predictor="lpc+pitch",
        preemphasis=0.6,
        temperature=0.0,
        temperature_unvoiced=1.0,
        highpass_hz=60.0,
        seed=15,
    ),
}


@pytest.fixture(scope="module")
def one_second():
    cases = {}
    for name, kw in ONE_SECOND.items():
        p = random_preset(**kw)
        f = make_features(p, p.sample_rate // p.hop, seed=kw["seed"])
        cases[name] = (p, f)
    return cases


@pytest.mark.parametrize("name", list(ONE_SECOND))
def test_same_bits_on_every_level(one_second, name):
    p, f = one_second[name]
    n = f.shape[0] * p.hop
    assert n == p.sample_rate
    want = Vocoder(p, seed=0, level=LEVELS[0]).vocode(f)
    assert_sane_audio(want, n)
    assert np.std(want) > 0.01, "the random preset should make audible noise, not silence"
    for level in LEVELS:
        v = Vocoder(p, seed=0, level=level)
        assert v.level == level
        assert_same_bits(v.vocode(f), want, f"{name} level {level} vs {LEVELS[0]}")
        assert_same_bits(v.vocode(f), want, f"{name} level {level}, second vocode on the same object")
    # a fresh object with the default level, once more
    assert_same_bits(Vocoder(p, seed=0).vocode(f), want, f"{name} default level, fresh object")


SUBPROCESS_SCRIPT = r"""
import hashlib, json, sys
import numpy as np
from vocoder.engine import kernels
from vocoder.engine.wavernn import Vocoder
from vocoder.testing import random_preset
cases = json.loads(sys.argv[1])
out = {"active": kernels.active_level()}
for name, (kw, path) in cases.items():
    v = Vocoder(random_preset(**kw), seed=0)
    out[name] = [v.level, hashlib.sha256(v.vocode(np.load(path)).tobytes()).hexdigest()]
print(json.dumps(out))
"""


@pytest.mark.parametrize("level", LEVELS)
def test_same_bits_when_level_forced_by_env(one_second, level, tmp_path):
    """VOCODER_ISA=<level> in a fresh process: the default level is that one, same audio."""
    cases = {}
    for name, (_, f) in one_second.items():
        path = tmp_path / f"{name}.npy"
        np.save(path, f)
        cases[name] = (ONE_SECOND[name], str(path))
    env = dict(os.environ, VOCODER_ISA=level)
    r = subprocess.run(
        [sys.executable, "-c", SUBPROCESS_SCRIPT, json.dumps(cases)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["active"] == level
    for name, (p, f) in one_second.items():
        assert got[name] == [level, sha(Vocoder(p, seed=0).vocode(f))], name


# --------------------------------------------------------------------------- 2. streaming

STREAM = {
    "dual": dict(hidden=64, density=0.25, head="dual", n_features=8, hop=40, seed=21),
    "mulaw": dict(hidden=64, density=0.25, head="mulaw", n_features=8, hop=40, seed=22),
    "dual-b4": dict(hidden=64, density=0.25, head="dual", subscale=4, n_features=8, hop=40, seed=23),
    "mulaw-b4-f2": dict(hidden=64, density=0.25, head="mulaw", subscale=4, horizon=2, n_features=8, hop=40, seed=24),
    "mulaw-pred": dict(
        hidden=64,
        density=0.25,
        head="mulaw",
        mulaw_bits=8,
        n_features=26,
        hop=40,
        seed=25,
        predictor="lpc+pitch",
        preemphasis=0.6,
        temperature_unvoiced=0.5,
    ),
}
STREAM_FRAMES = 130  # 5200 samples: more than one 4096 block


@pytest.fixture(scope="module", params=list(STREAM))
def stream_case(request):
    p = random_preset(**STREAM[request.param])
    return p, make_features(p, STREAM_FRAMES, seed=3)


def render_blocks(v, sizes, total):
    """Render blocks of the given sizes (cycled) until ``total`` samples are out."""
    chunks, n, k = [], 0, 0
    while n < total:
        out = np.full(sizes[k % len(sizes)], np.nan, np.float32)
        v.render(out)
        chunks.append(out)
        n += out.size
        k += 1
    return np.concatenate(chunks)


@pytest.mark.parametrize("block", [1, 7, 64, 4096, "mix"])
def test_render_in_blocks_equals_one_call(stream_case, block):
    p, f = stream_case
    v = Vocoder(p, seed=0)
    want = stream_reference(v, f)
    assert want.size == v.latency_samples + STREAM_FRAMES * p.hop
    if block == "mix":
        sizes = [int(s) for s in np.random.default_rng(7).choice([0, 1, 2, 3, 5, 16, 63, 100, 333, 1000, 4096], 200)]
    else:
        sizes = [block]
    v.reset()
    assert v.feed(f) == STREAM_FRAMES
    v.finish()
    got = render_blocks(v, sizes, want.size)
    assert_same_bits(got[: want.size], want, f"blocks of {block}")
    assert np.all(np.isfinite(got)) and np.all(np.abs(got) <= 1.0)  # also what follows the end
    assert v.underrun_samples == 0


def test_uneven_feeds_render_only_what_is_ready(stream_case):
    p, f = stream_case
    v = Vocoder(p, seed=0)
    want = stream_reference(v, f)
    v.reset()
    lat, hop, B = v.latency_samples, p.hop, p.subscale
    assert hop % B == 0  # so the frontier after n frames falls on a frame boundary
    chunks, fed, rendered = [], 0, 0
    for n in (1, 3, 17, 1, 40, STREAM_FRAMES - 62):
        assert v.feed(f[fed : fed + n]) == n
        fed += n
        ready = v.ready_samples
        # One frame in, one frame's worth of stream out: the latency (lookahead and
        # subscale lag) is the only delay.
        assert rendered + ready == max(lat, fed * hop), (fed, rendered, ready)
        out = np.full(ready, np.nan, np.float32)
        v.render(out)
        chunks.append(out)
        rendered += ready
        assert v.underrun_samples == 0
        assert v.ready_samples == 0
    assert fed == STREAM_FRAMES
    v.finish()
    out = np.full(want.size - rendered, np.nan, np.float32)
    v.render(out)
    chunks.append(out)
    assert_same_bits(np.concatenate(chunks), want, "uneven feeds")
    assert v.underrun_samples == 0


@pytest.mark.parametrize("capacity", [1, 2, 3, 8])
def test_small_frame_queue(stream_case, capacity):
    """A queue smaller than the input: vocode streams through it; feed takes what fits."""
    p, f = stream_case
    want = Vocoder(p, seed=0).vocode(f)
    v = Vocoder(p, seed=0, frame_capacity=capacity)
    assert_same_bits(v.vocode(f), want, f"vocode, frame_capacity={capacity}")
    v.reset()
    # The queue takes at least `capacity` frames, and at most that plus the conditioning
    # window (frames the next samples still read).
    assert capacity <= v.feed(f) <= capacity + p.context_frames
    v.reset()
    chunks, fed = [], 0
    while fed < STREAM_FRAMES:
        took = v.feed(f[fed:])
        assert 0 <= took <= capacity + p.context_frames
        fed += took
        out = np.empty(v.ready_samples, np.float32)
        v.render(out)
        chunks.append(out)
        assert took > 0 or out.size > 0, "no progress: the queue is full and nothing is ready"
    v.finish()
    done = sum(c.size for c in chunks)
    out = np.empty(v.latency_samples + want.size - done, np.float32)
    v.render(out)
    chunks.append(out)
    assert_same_bits(np.concatenate(chunks)[v.latency_samples :], want, f"streamed, frame_capacity={capacity}")
    assert v.underrun_samples == 0


# --------------------------------------------------------------------------- 3. underruns


def test_frames_running_out_give_counted_silence(stream_case):
    p, f = stream_case
    v = Vocoder(p, seed=0)
    want = stream_reference(v, f)
    v.reset()
    v.feed(f[:5])
    ready = v.ready_samples
    assert 0 < ready < want.size
    extra = 123
    out = np.full(ready + extra, np.nan, np.float32)
    v.render(out)
    assert np.all(np.isfinite(out))
    assert_same_bits(out[:ready], want[:ready], "audio before the underrun")
    assert np.all(out[ready:] == 0)
    assert v.underrun_samples == extra
    assert v.ready_samples == 0
    out2 = np.full(50, np.nan, np.float32)
    v.render(out2)
    assert np.all(out2 == 0)
    assert v.underrun_samples == extra + 50
    # The underrun inserted silence; the audio then carries on where it stopped.
    v.feed(f[5:])
    v.finish()
    rest = np.full(want.size - ready, np.nan, np.float32)
    v.render(rest)
    assert_same_bits(rest, want[ready:], "audio after the underrun")
    assert v.underrun_samples == extra + 50
    v.reset()
    assert v.underrun_samples == 0


def test_nothing_fed_is_latency_then_underrun(stream_case):
    p, _ = stream_case
    v = Vocoder(p, seed=0)
    lat = v.latency_samples
    assert v.ready_samples == lat
    out = np.full(lat + 77, np.nan, np.float32)
    v.render(out)
    assert np.all(out == 0)
    assert v.underrun_samples == 77


# --------------------------------------------------------------------------- 4. float reference

# Engine (int8 weights and activations) against the float64 reference, teacher forced on
# audio the reference generated. Measured over 36 cases (dual and mulaw, H = 128 and
# 384, 6 seeds, 100 frames of 80 samples): max |diff| / max |logit| <= 0.0136 (max |diff|
# <= 0.25 with max |logit| ~10..27), rms diff <= 0.021, argmax agreement >= 0.985, KL(ref ||
# engine) mean <= 2.4e-4 and max <= 5.4e-3 nats. The bounds leave 2-3x headroom; an
# off-by-one frame or sample in the engine gives max |diff| > 10 and argmax agreement < 0.65.
LOGIT_RTOL = 0.02  # max |diff| <= LOGIT_RTOL * max |logit| + LOGIT_ATOL
LOGIT_ATOL = 0.1
LOGIT_RMS_MAX = 0.04
ARGMAX_AGREEMENT_MIN = 0.95
KL_MEAN_MAX = 1e-3
KL_MAX_MAX = 2e-2


def log_softmax(x):
    x = np.asarray(x, np.float64)
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("hidden", [128, 384])
@pytest.mark.parametrize("head", ["dual", "mulaw"])
def test_teacher_forced_logits_match_float_reference(head, hidden):
    p = random_preset(hidden=hidden, head=head, n_features=8, seed=hidden + (head == "mulaw"))
    f = make_features(p, 40, seed=5, scale=1.5)
    ref = ReferenceModel(p)
    audio = ref.generate(f, seed=1)
    assert np.std(audio) > 0.01
    want = ref.teacher_forced(f, audio)
    got = Vocoder(p, seed=0).teacher_forced(f, audio)
    assert sorted(got) == sorted(want)
    for k in want:
        w, g = want[k], got[k]
        assert g.shape == w.shape and np.all(np.isfinite(g)), k
        d = np.abs(g.astype(np.float64) - w)
        scale = np.abs(w).max()
        agree = np.mean(g.argmax(axis=1) == w.argmax(axis=1))
        lw, lg = log_softmax(w), log_softmax(g)
        kl = np.sum(np.exp(lw) * (lw - lg), axis=1)
        msg = (
            f"{head} H={hidden} {k}: max|diff| {d.max():.4f} (max|logit| {scale:.2f}), "
            f"rms {np.sqrt(np.mean(d**2)):.4f}, "
            f"argmax agreement {agree:.4f}, KL mean {kl.mean():.2e} max {kl.max():.2e}"
        )
        assert d.max() <= LOGIT_RTOL * scale + LOGIT_ATOL, msg
        assert np.sqrt(np.mean(d**2)) <= LOGIT_RMS_MAX, msg
        assert agree >= ARGMAX_AGREEMENT_MIN, msg
        assert kl.mean() <= KL_MEAN_MAX and kl.max() <= KL_MAX_MAX, msg


# --------------------------------------------------------------------------- 5. subscale


@pytest.mark.parametrize("B,F,head", [(4, 1, "dual"), (4, 2, "mulaw"), (16, 1, "mulaw"), (16, 2, "dual")])
def test_subscale_length_latency_and_start(B, F, head):
    # hop 50: the sample count is not a multiple of B, so sub-tensors end unevenly.
    p = random_preset(hidden=64, density=0.25, head=head, subscale=B, horizon=F, n_features=8, hop=50, seed=B + F)
    v = Vocoder(p, seed=0)
    lat = p.config["lookahead"] * p.hop + B * (B - 1) * F
    assert v.latency_samples == lat
    for frames in (1, 7, 60):
        f = make_features(p, frames, seed=frames)
        a = v.vocode(f)
        assert_sane_audio(a, frames * p.hop)
    assert np.std(a) > 0.01
    v.reset()
    v.feed(f)
    v.finish()
    out = np.full(lat + frames * p.hop, np.nan, np.float32)
    v.render(out)
    assert np.all(out[:lat] == 0), "the stream must start with latency_samples of silence"
    assert np.any(out[lat + 1 : lat + 1 + 64] != 0), "audio must follow the latency"
    assert_same_bits(out[lat:], a, "render after feed + finish vs vocode")
    assert v.underrun_samples == 0


# --------------------------------------------------------------------------- 6. hostile features

BAD_VALUES = {"nan": np.nan, "+inf": np.inf, "-inf": -np.inf, "1e30": 1e30, "-1e30": -1e30}


@pytest.fixture(scope="module", params=["dual", "mulaw", "dual-b4"])
def small_preset(request):
    kw = {"dual": dict(head="dual"), "mulaw": dict(head="mulaw"), "dual-b4": dict(head="dual", subscale=4)}[
        request.param
    ]
    return random_preset(hidden=64, density=0.25, n_features=8, hop=40, seed=31, **kw)


@pytest.mark.parametrize("kind", list(BAD_VALUES) + ["mixed", "1e300-float64"])
def test_bad_features_give_bounded_audio(small_preset, kind):
    p = small_preset
    frames = 30
    if kind == "mixed":
        f = make_features(p, frames, seed=1).astype(np.float64)
        rng = np.random.default_rng(2)
        pick = rng.random(f.shape) < 0.5
        f[pick] = rng.choice([np.nan, np.inf, -np.inf, 1e30, -1e30, 1e300, -1e300, 5e-324], pick.sum())
    elif kind == "1e300-float64":
        f = np.full((frames, p.n_features), 1e300)
    else:
        f = np.full((frames, p.n_features), BAD_VALUES[kind], np.float32)
    v = Vocoder(p, seed=0)
    a = v.vocode(f)
    assert_sane_audio(a, frames * p.hop)
    # Streaming the same frames gives the same (bounded) audio.
    v.reset()
    v.feed(f)
    v.finish()
    out = np.full(v.latency_samples + a.size, np.nan, np.float32)
    v.render(out)
    assert_same_bits(out[v.latency_samples :], a, f"{kind}: streamed")


def test_bad_features_normalise_as_documented(small_preset):
    """docs/model.md: z = clip((f - mean) / std, -8, 8), NaN -> 0, +-inf -> +-8.

    Without the excitation, which reads the raw f0 and voicing (tested below)."""
    c = small_preset.config
    p = random_preset(
        hidden=64, density=0.25, n_features=8, hop=40, seed=31, head=c["head"], subscale=c["subscale"], excitation=0
    )
    frames, nf = 20, p.n_features
    v = Vocoder(p, seed=0)

    def voc(x):
        return v.vocode(np.broadcast_to(np.asarray(x, np.float32), (frames, nf)))

    mean, std = p.tensors["feat_mean"], p.tensors["feat_std"]
    assert_same_bits(voc(np.inf), voc(1e30), "+inf vs 1e30")
    assert_same_bits(voc(np.inf), voc(mean + 100 * std), "+inf vs mean + 100 std")
    assert_same_bits(voc(-np.inf), voc(-1e30), "-inf vs -1e30")
    assert_same_bits(voc(np.nan), voc(mean), "nan vs mean")


def test_bad_pitch_and_voicing_clamp_as_documented(small_preset):
    """The excitation: f0 NaN -> 60, clamped to [12, 120]; voicing NaN -> 0, clamped to [0, 1]."""
    p = small_preset
    frames = 20
    base = make_features(p, frames, seed=4)

    def voc(f0, vuv):
        f = base.copy()
        f[:, 0], f[:, 1] = f0, vuv
        return Vocoder(p, seed=0).vocode(f)

    for f0, vuv in ((np.nan, 1.0), (1e30, 1.0), (-1e30, 1.0), (60.0, np.nan), (60.0, 1e30), (60.0, -5.0)):
        out = voc(f0, vuv)
        assert out.shape == (frames * p.hop,)
        assert np.all(np.isfinite(out)) and np.all(np.abs(out) <= 1.0)
    from vocoder.engine.reference import excitation

    f = base.copy()
    for (a0, a1), (b0, b1) in (
        ((np.nan, 1.0), (60.0, 1.0)),
        ((1e30, 1.0), (120.0, 1.0)),
        ((-7.0, 1.0), (12.0, 1.0)),
        ((60.0, np.nan), (60.0, 0.0)),
        ((60.0, 9.0), (60.0, 1.0)),
        ((60.0, -1.0), (60.0, 0.0)),
    ):
        fa, fb = f.copy(), f.copy()
        fa[:, 0], fa[:, 1], fb[:, 0], fb[:, 1] = a0, a1, b0, b1
        ea, eb = excitation(fa, p.hop, p.sample_rate), excitation(fb, p.hop, p.sample_rate)
        np.testing.assert_array_equal(ea, eb)


def test_excitation_engine_matches_reference(small_preset):
    """The engine's own exp2/sin polynomials give the numpy excitation to ~1e-6, seen through
    teacher forcing: logits agree as closely with the excitation as without."""
    from vocoder.engine.reference import excitation

    p = small_preset
    f = make_features(p, 12, seed=9)
    f[:, 0] = np.linspace(40, 80, 12)  # sweep the pitch: many K values and phases
    f[:, 1] = np.linspace(0, 1, 12)
    e = excitation(f, p.hop, p.sample_rate)
    assert e.shape == (12 * p.hop, 2) and np.all(np.abs(e) <= 1.0 + 1e-6)
    assert np.abs(e[f.shape[0] // 2 * p.hop :]).max() > 0.5  # voiced part is not silent
    assert np.all(e[: p.hop] == 0)  # voicing 0 in frame 0


# --------------------------------------------------------------------------- 7. bad arguments


def test_wrong_feature_shape_or_type(dual_preset):
    v = Vocoder(dual_preset, seed=0)
    nf = dual_preset.n_features
    for bad in (np.zeros((3, nf - 1)), np.zeros((3, nf + 1)), np.zeros(nf), np.zeros((3, nf, 1)), np.zeros((0, 0))):
        for call in (v.vocode, v.feed):
            with pytest.raises(ValueError):
                call(bad)
    with pytest.raises(ValueError):
        v.teacher_forced(np.zeros((2, nf + 1)), np.zeros(2 * dual_preset.hop))
    for bad in (np.full((3, nf), "a"), np.full((3, nf), None, dtype=object)):
        for call in (v.vocode, v.feed):
            with pytest.raises(TypeError):
                call(bad)
    # nothing is an empty sequence, not an error
    assert v.vocode(np.zeros((0, nf), np.float32)).shape == (0,)
    assert v.feed(np.zeros((0, nf), np.float32)) == 0


def test_bad_render_buffers(dual_preset):
    v = Vocoder(dual_preset, seed=0)
    v.feed(make_features(dual_preset, 4))
    for bad in (np.zeros(10, np.float64), np.zeros(10, np.int16), np.zeros((2, 5), np.float32), [0.0] * 10, None):
        with pytest.raises(TypeError):
            v.render(bad)
    with pytest.raises(ValueError):
        v.render(np.zeros(20, np.float32)[::2])
    ro = np.zeros(10, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        v.render(ro)
    assert v.underrun_samples == 0
    ok = np.full(10, np.nan, np.float32)
    v.render(ok)  # the engine is still usable
    assert np.all(ok == 0)  # the latency


@pytest.mark.parametrize("seed", [-1, 2**64, "x", 1.0, True, None])
def test_bad_seed(dual_preset, seed):
    with pytest.raises(ValueError):
        Vocoder(dual_preset, seed=seed)
    v = Vocoder(dual_preset, seed=0)
    if seed is not None:  # reset(None) keeps the seed
        with pytest.raises(ValueError):
            v.reset(seed=seed)
    assert v.seed == 0


def test_extreme_seeds_accepted(dual_preset):
    f = make_features(dual_preset, 5)
    for seed in (0, 2**64 - 1, np.uint64(2**63)):
        a = Vocoder(dual_preset, seed=seed).vocode(f)
        assert_sane_audio(a, 5 * dual_preset.hop)


@pytest.mark.parametrize("level", ["avx9", "AVX2", "neon", 1.5, "", 0])
def test_unknown_level(dual_preset, level):
    with pytest.raises(ValueError):
        Vocoder(dual_preset, level=level)


def test_unavailable_level(dual_preset):
    for level in kernels.LEVELS:
        if level not in LEVELS:
            with pytest.raises(ValueError):
                Vocoder(dual_preset, level=level)


def test_bad_capacity_temperature_and_teacher_forcing_args(dual_preset):
    for cap in (0, -1, 1.5, "8"):
        with pytest.raises(ValueError):
            Vocoder(dual_preset, frame_capacity=cap)
    for t in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            Vocoder(dual_preset, temperature=t)
    v = Vocoder(dual_preset, seed=0)
    f = make_features(dual_preset, 3)
    with pytest.raises(ValueError):
        v.teacher_forced(f, np.zeros(3 * dual_preset.hop - 1))
    b4 = random_preset(hidden=32, density=0.5, subscale=4, n_features=8, hop=40, seed=4)
    with pytest.raises(ValueError):
        Vocoder(b4).teacher_forced(f, np.zeros(3 * 40))


# --------------------------------------------------------------------------- seeds and reset


def test_seed_and_temperature(dual_preset):
    f = make_features(dual_preset, 20)
    a0 = Vocoder(dual_preset, seed=0).vocode(f)
    a1 = Vocoder(dual_preset, seed=1).vocode(f)
    assert a0.tobytes() != a1.tobytes(), "the seed must change the sampled audio"
    v = Vocoder(dual_preset, seed=0)
    v.reset(seed=1)
    assert_same_bits(v.vocode(f), a1, "reset(seed=1) vs Vocoder(seed=1)")
    assert v.seed == 1
    # T = 0 is argmax: no noise, the seed does not matter
    g0 = Vocoder(dual_preset, seed=0, temperature=0).vocode(f)
    g1 = Vocoder(dual_preset, seed=12345, temperature=0).vocode(f)
    assert_same_bits(g1, g0, "temperature 0 with two seeds")
    assert_sane_audio(g0, a0.size)


def test_vocode_resets_after_streaming(dual_preset):
    f = make_features(dual_preset, 20)
    v = Vocoder(dual_preset, seed=0)
    want = v.vocode(f)
    v.feed(f[:7])
    v.render(np.empty(1000, np.float32))  # with an underrun
    assert_same_bits(v.vocode(f), want, "vocode after a half-used stream")


# --------------------------------------------------------------------------- 8. presets through a file


@pytest.mark.parametrize(
    "kw",
    [dict(head="dual"), dict(head="mulaw", mulaw_bits=8), dict(head="dual", subscale=4)],
    ids=["dual", "mulaw", "dual-b4"],
)
def test_saved_and_loaded_preset_gives_same_audio(tmp_path, kw):
    p = random_preset(hidden=64, density=0.25, n_features=8, hop=40, seed=41, **kw)
    path = save_preset(p, tmp_path / "voice.safetensors")
    q = load_preset(path)
    f = make_features(p, 100, seed=2)
    want = Vocoder(p, seed=3).vocode(f)
    assert_same_bits(Vocoder(q, seed=3).vocode(f), want, "loaded preset")
    assert_same_bits(Vocoder(load_preset(str(path)), seed=3).vocode(f), want, "loaded by str path")


def test_bench_engine_reports_every_case_and_the_numpy_baseline(monkeypatch):
    """The benchmark runs (tiny: a smoke test, no timing asserted) and its records carry
    the fields docs/benchmarks.md and --json promise, with the numpy baseline beside the
    engine's H384 16 kHz B=1 case."""
    from vocoder.bench import engine as bench

    monkeypatch.setattr(bench, "ENGINE_CASES", [(64, 16000, 1), (64, 16000, 4)])
    monkeypatch.setattr(bench, "PREDICTOR_CASES", (64,))
    records = bench.bench_engine(seconds=0.05, repeats=1)
    plain, pred = records[:2], records[2:]
    assert [r["subscale"] for r in plain] == [1, 4]
    for r in plain:
        assert {"name", "hidden", "density", "sample_rate", "subscale", "rtf"} <= set(r)
        assert r["rtf"] > 0 and r["gemv_us"] > 0 and r["peak_rss_mb"] > 0
    # the predictor's cost: the same network with and without it, the plain one first
    assert [r["name"] for r in pred] == ["H64 16kHz B=1 mulaw", "H64 16kHz B=1 mulaw+predictor"]
    assert pred[0]["relative_to_plain"] == 1.0 and pred[1]["relative_to_plain"] > 0
    from vocoder.testing import random_preset

    p = random_preset(hidden=64, density=0.1, head="dual", seed=0)
    feats = np.zeros((4, p.n_features), np.float32)
    base = bench._numpy_baseline(p, feats, 16000, 1, 0.1)
    assert base["level"].startswith("numpy") and base["us_per_sample"] > 0 and base["gemv_us"] is None
    table = bench.format_engine_table(plain + [base])
    assert table.count("\n") == 4 and "| - |" in table
