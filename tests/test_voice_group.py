"""vocoder.VoiceGroup: voices on one preset rendered with one batched engine step give
exactly the samples each voice gives alone, whatever the block sizes, rates and levels."""

import numpy as np
import pytest

import vocoder
from vocoder.engine import kernels
from vocoder.testing import random_preset

from helpers import play_scripts


def script(k):
    """A different little part for voice k (device samples, method, args)."""
    s = 300 * k
    return [
        (100 + s, "note_on", (57 + 2 * k, 90)),
        (7000 + s, "pitch_bend", (0.25 * k - 0.5,)),
        (12000 + s, "note_on", (64 + k, 100)),
        (15000 + s, "note_off", (64 + k,)),
        (17000 + s, "control", (1, 30 * k)),
        (20000 + s, "note_off", (57 + 2 * k,)),
        (21000, "note_on", (60, 110)),
        (26000 - s, "panic", ()),
    ]


def make(preset, rates, level=None):
    voices = [vocoder.Voice(preset, sample_rate=r, seed=10 + k, level=level) for k, r in enumerate(rates)]
    for v in voices:
        v.lyrics("ah lit tle star")
    return voices


def drive(voices, blocks, total, render):
    """Each voice k playing script(k) over blocks of the given sizes; render(n) -> [voices, n]."""
    return play_scripts(voices, [script(k) for k in range(len(voices))], total, blocks, render)


def alone(voices, blocks, total):
    def render(n):
        o = np.zeros((len(voices), n), np.float32)
        for k, v in enumerate(voices):
            v.render(o[k])
        return o

    return drive(voices, blocks, total, render)


def grouped(voices, blocks, total, max_block=1024):
    g = vocoder.VoiceGroup(voices, max_block=max_block)

    def render(n):
        o = np.zeros((len(voices), n), np.float32)
        g.render_each(o)
        return o

    return drive(voices, blocks, total, render)


TOTAL = 30000


@pytest.fixture(scope="module")
def reference(voice_preset):
    return alone(make(voice_preset, [48000] * 4), [128], TOTAL)


def test_group_gives_each_voice_its_own_samples(voice_preset, reference):
    assert np.abs(reference).max() > 0.01 and np.all(np.isfinite(reference))
    assert all(np.abs(reference[k]).max() > 0.01 for k in range(4))
    assert not np.array_equal(reference[0], reference[1])
    for blocks in ([128], [1, 7, 64], [4096], [333, 2, 1000]):
        b = grouped(make(voice_preset, [48000] * 4), blocks, TOTAL)
        assert b.tobytes() == reference.tobytes(), blocks


def test_mix_is_the_sum_of_the_voices(voice_preset, reference):
    voices = make(voice_preset, [48000] * 4)
    g = vocoder.VoiceGroup(voices, max_block=100)  # slices inside each block

    def render(n):
        o = np.zeros(n, np.float32)
        g.render(o)
        return o[None]

    mix = drive(voices, [128, 500], TOTAL, render)[0]
    expect = np.zeros(TOTAL, np.float32)
    for k in range(4):
        expect = expect + reference[k]  # the group adds voice by voice, in float32
    assert mix.tobytes() == expect.tobytes()


def test_voices_at_different_rates_and_levels(voice_preset):
    rates = [48000, 44100, 16000, 96000]
    ref = alone(make(voice_preset, rates), [256], 12000)
    for level in kernels.available_levels():
        voices = make(voice_preset, rates, level=level)
        g = vocoder.VoiceGroup(voices)
        total = 12000

        def render(n, g=g):
            o = np.zeros((4, n), np.float32)
            g.render_each(o)
            return o

        got = drive(voices, [100, 37], total, render)
        for k in range(4):
            assert got[k].tobytes() == ref[k].tobytes(), (level, rates[k])


def test_subscale_voices_group_too(voice_preset):
    p = random_preset(hidden=64, density=0.25, n_features=26, hop=80, seed=6, head="dual", subscale=4)
    ref = alone(make(p, [48000] * 3), [128], 8000)
    got = grouped(make(p, [48000] * 3), [64, 300], 8000)
    assert got.tobytes() == ref.tobytes()


def test_sixteen_voices_one_group(voice_preset):
    voices = make(voice_preset, [48000] * 16)
    g = vocoder.VoiceGroup(voices)
    out = np.zeros((16, 512), np.float32)
    g.render_each(out)
    assert len(g) == 16 and g[3] is voices[3] and list(g) == voices
    with pytest.raises(ValueError, match="1 to 16"):
        vocoder.VoiceGroup(make(voice_preset, [48000] * 17))


def test_partition_by_preset(voice_preset):
    other = random_preset(hidden=64, density=0.25, n_features=26, hop=80, seed=99, head="mulaw", mulaw_bits=8)
    a = make(voice_preset, [48000] * 3)
    b = make(other, [48000] * 2)
    groups = vocoder.VoiceGroup.partition([a[0], b[0], a[1], b[1], a[2]])
    assert [list(g) for g in groups] == [[a[0], a[1], a[2]], [b[0], b[1]]]
    # the same weights loaded twice still share a group
    twin = random_preset(hidden=64, density=0.25, n_features=26, hop=80, seed=5, head="mulaw", mulaw_bits=8)
    assert len(vocoder.VoiceGroup.partition([a[0], make(twin, [48000])[0]])) == 1
    assert len(vocoder.VoiceGroup.partition(make(voice_preset, [48000] * 20))) == 2


def test_bad_groups_are_clear(voice_preset):
    other = random_preset(hidden=64, density=0.25, n_features=26, hop=80, seed=99, head="mulaw", mulaw_bits=8)
    with pytest.raises(ValueError, match="same preset"):
        vocoder.VoiceGroup(make(voice_preset, [48000]) + make(other, [48000]))
    v = make(voice_preset, [48000])[0]
    with pytest.raises(ValueError, match="twice"):
        vocoder.VoiceGroup([v, v])
    with pytest.raises(TypeError, match="not a vocoder.Voice"):
        vocoder.VoiceGroup([v, "alto"])
    with pytest.raises(ValueError, match="1 to 16"):
        vocoder.VoiceGroup([])
    g = vocoder.VoiceGroup([v])
    with pytest.raises(ValueError, match="one row per voice"):
        g.render_each(np.zeros((2, 64), np.float32))
