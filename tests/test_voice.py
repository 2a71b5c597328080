"""vocoder.Voice, the embedding API: events in, device-rate audio out (no audio server needed)."""

import threading

import numpy as np
import pytest

import vocoder
from vocoder.engine import kernels
from vocoder.testing import random_preset

from helpers import drive_voice

RATE = 48000


SCRIPT = [  # (device sample, method, args)
    (500, "note_on", (60, 100)),
    (9000, "pitch_bend", (0.5,)),
    (20000, "note_on", (64, 80)),  # legato: glide, no new syllable
    (26000, "note_off", (64,)),  # back to 60
    (30000, "note_off", (60,)),
    (30001, "note_on", (67, 127)),
    (34000, "control", (1, 127)),
    (40000, "control", (11, 40)),
    (44000, "note_off", (67,)),
]


def play(preset, blocks, total=48000, seed=0, level=None, script=SCRIPT, rate=RATE, frames=False):
    """A fresh voice playing ``script``; with ``frames``, also the singer's frame after each block."""
    v = vocoder.Voice(preset, sample_rate=rate, seed=seed, level=level)
    v.lyrics("twin kle lit tle star")
    feats = []
    keep_frame = (lambda end: feats.append((end, v.last_frame()))) if frames else None
    a = drive_voice(v, script, total, blocks, after_block=keep_frame)
    return (a, v, feats) if frames else (a, v)


def test_same_samples_whatever_the_block_sizes(voice_preset):
    a, v = play(voice_preset, [128])
    assert a.dtype == np.float32 and a.shape == (48000,)
    assert np.all(np.isfinite(a)) and np.abs(a).max() <= 1.0 and np.abs(a).max() > 0
    assert v.underrun_samples == 0 and v.dropped_events == 0
    for blocks in ([1, 7, 64], [4096], [7], [333, 1000, 2]):
        b, _ = play(voice_preset, blocks)
        assert a.tobytes() == b.tobytes(), blocks


def test_same_samples_on_every_level(voice_preset):
    a, _ = play(voice_preset, [256], total=12000, level=kernels.available_levels()[0])
    for level in kernels.available_levels()[1:]:
        b, _ = play(voice_preset, [256], total=12000, level=level)
        assert a.tobytes() == b.tobytes(), level
    c, _ = play(voice_preset, [256], total=12000, seed=1)
    assert c.tobytes() != a.tobytes()


@pytest.mark.parametrize("rate", [16000, 44100, 48000, 96000])
def test_any_device_rate(voice_preset, rate):
    a, v = play(voice_preset, [128], total=rate // 2, rate=rate, script=[(10, "note_on", (60, 100))])
    assert a.shape == (rate // 2,) and np.all(np.isfinite(a)) and np.abs(a).max() > 0
    assert 0 < v.latency_samples < rate * 0.012  # one 5 ms frame, the filter, a little slack


def test_singer_follows_the_events(voice_preset):
    """The feature frames the live singer makes: pitch, legato glide, bend, voicing."""
    _, v, feats = play(voice_preset, [80 * 3], frames=True)  # one feature frame per 80 device samples

    def frame_at(t):
        return min(feats, key=lambda pf: abs(pf[0] - t))[1]

    assert frame_at(400)[1] < 0.05  # before the first note: silence
    f = frame_at(8000)
    assert abs(f[0] - 60) < 0.05 and f[1] > 0.9  # voiced at C4 (no vibrato yet, no bend)
    f = frame_at(11500)
    assert abs(f[0] - 61) < 0.05  # bend 0.5 = +1 semitone
    f0s = [frame_at(t)[0] for t in range(20000, 26000, 240)]
    assert max(f0s) > 64.0 and f0s[0] < 63 and f0s[2] < 63.5  # legato glide towards E4 (+1 bend), not a jump
    f0s = [frame_at(t)[0] for t in range(26000, 30000, 240)]
    assert f0s[0] > 63 and min(f0s) < 62  # gliding back down to the held C4
    f0s = np.array([frame_at(t)[0] for t in range(36000, 44000, 240)])
    assert np.ptp(f0s) > 1.0 and abs(np.median(f0s) - 68) < 0.5  # full mod wheel: wide vibrato around G4 + bend
    assert frame_at(39000)[2:].mean() - frame_at(43000)[2:].mean() > 1.0  # expression 40: quieter
    assert frame_at(47900)[1] < 0.1  # released: unvoiced


def test_syllables_advance_per_note_not_per_legato(voice_preset):
    v = vocoder.Voice(voice_preset, sample_rate=RATE)
    v.lyrics("twin kle lit")
    buf = np.zeros(64, np.float32)
    v.note_on(60, 100)
    assert v.syllable == "twin"
    v.note_on(62, 100)  # legato
    assert v.syllable == "twin" and v.upcoming == "kle"
    v.note_off(62)
    v.note_off(60)
    v.render(buf)
    v.note_on(64, 100)
    assert v.syllable == "kle"
    v.note_off(64)
    v.lyric_step(-1)
    v.note_on(64, 100)
    assert v.syllable == "kle"
    v.note_off(64)
    v.lyric_restart()
    assert v.upcoming == "twin"


def test_flood_drops_and_counts_never_blocks(voice_preset):
    v = vocoder.Voice(voice_preset, sample_rate=RATE)
    accepted = sum(v.control(1, i % 128) for i in range(5000))
    assert accepted == 1024 and v.dropped_events == 5000 - 1024
    buf = np.zeros(128, np.float32)
    v.render(buf)  # drains the queue into the pending list
    assert np.all(np.isfinite(buf))
    assert v.control(1, 3)


def test_events_from_another_thread(voice_preset):
    """The documented threading: a producer thread pushes while render runs."""
    v = vocoder.Voice(voice_preset, sample_rate=RATE)
    stop = threading.Event()

    def midi():
        i = 0
        while not stop.is_set():
            v.note_on(60 + i % 12, 100)
            v.note_off(60 + i % 12)
            i += 1

    t = threading.Thread(target=midi)
    t.start()
    try:
        buf = np.zeros(128, np.float32)
        for _ in range(300):
            v.render(buf)
            assert np.all(np.isfinite(buf)) and np.abs(buf).max() <= 1.0
    finally:
        stop.set()
        t.join()


def test_bad_arguments_are_clear(voice_preset):
    v = vocoder.Voice(voice_preset, sample_rate=RATE)
    with pytest.raises(ValueError, match="note"):
        v.note_on(128, 100)
    with pytest.raises(ValueError, match="velocity"):
        v.note_on(60, float("nan"))
    with pytest.raises(ValueError, match="offset"):
        v.note_on(60, 100, offset=-1)
    with pytest.raises(ValueError, match="pitch bend"):
        v.pitch_bend(2.0)
    with pytest.raises(TypeError):
        v.control("mod", 3)
    with pytest.raises(ValueError, match="sample_rate"):
        vocoder.Voice(voice_preset, sample_rate=100)
    with pytest.raises(ValueError, match="cannot sing live"):
        vocoder.Voice(random_preset(hidden=32, n_features=2, hop=40, seed=1), sample_rate=RATE)  # no envelope
    with pytest.raises((ValueError, TypeError)):
        v.render(np.zeros(16, np.float64))
    v.render(np.zeros(0, np.float32))  # empty is fine


def test_panic_silences(voice_preset):
    script = [(100, "note_on", (60, 100)), (20000, "panic", ())]
    _, v, feats = play(voice_preset, [240], total=30000, script=script, frames=True)
    assert feats[-1][1][1] < 0.05
    assert v.syllable == ""
