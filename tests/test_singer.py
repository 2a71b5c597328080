"""The singer: events to feature frames (docs/features.md), offline and streaming."""

import numpy as np
import pytest

from vocoder.engine.presets import Preset
from vocoder.score.events import Event, Note, Song
from vocoder.score.lyrics import Syllable, text_syllables
from vocoder.singer import Singer, fallback_table
from vocoder.testing import random_preset

from helpers import drive_voice, script_from_events

FPS = 200  # 16 kHz, hop 80


@pytest.fixture(scope="module")
def preset():
    return random_preset(hidden=32, density=0.5, n_features=26, hop=80, cond_hidden=16, seed=4)


def frames_at(t):
    return int(t * FPS)


def steady(preset, **kw):
    return Singer(preset, vibrato_depth=0.0, **kw)


def song_frames(singer, song, extra=0.5):
    return singer.render_song(song.events(), song.duration + extra)


def cents(a, b):
    return 100.0 * (np.asarray(a, float) - np.asarray(b, float))


def test_shape_and_contract(preset):
    s = Singer(preset)
    f = s.frames(10)
    assert f.shape == (10, 26) and f.dtype == np.float32
    assert s.time == pytest.approx(10 / FPS)
    assert np.all(f[:, 1] == 0)  # nothing sung: unvoiced
    assert np.all(np.isfinite(f))
    assert np.all(f[:, 2:] >= np.log(1e-10) - 1e-4)
    bad = random_preset(hidden=16, density=0.5, n_features=4, hop=16, cond_hidden=8, seed=3).config
    bad["feature_names"] = ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="f0, voicing, env0"):
        Singer(bad)
    with pytest.raises(TypeError, match="unknown option"):
        Singer(preset, vibrato=3)


def test_f0_follows_notes_and_rests(preset):
    notes = [Note(0.2, 0.8, 60, 100), Note(0.8, 1.4, 64, 100), Note(2.0, 2.6, 57, 100)]
    f = song_frames(steady(preset), Song(notes))
    for n in notes:  # the middle of every note (after the legato glide into it): on pitch, voiced
        mid = f[frames_at(n.start + 0.3) : frames_at(n.end - 0.1)]
        assert np.abs(cents(mid[:, 0], n.pitch)).max() < 1.0
        assert np.all(mid[:, 1] > 0.9)
    rest = f[frames_at(1.6) : frames_at(1.9)]
    assert np.all(rest[:, 1] < 0.01)
    # across a rest f0 stays on the last note (a live singer cannot know the next one)
    assert np.abs(rest[:, 0] - 64).max() < 1e-3
    assert f[0, 0] == pytest.approx(60, abs=0.01)  # flat before the first note
    assert f[-1, 0] == pytest.approx(57, abs=0.01)  # and after the last


def test_default_expression_stays_near_the_notes(preset):
    notes = [Note(0.0, 1.5, 62, 100), Note(1.5, 3.0, 65, 100)]
    f = song_frames(Singer(preset, seed=3), Song(notes))
    for n in notes:
        mid = f[frames_at(n.start + 0.15) : frames_at(n.end - 0.1), 0]
        assert abs(np.median(cents(mid, n.pitch))) < 10  # vibrato is symmetric
        assert 10 < np.abs(cents(mid, n.pitch)).max() < 60  # but it is there
    g = song_frames(Singer(preset, seed=3), Song(notes))
    assert np.array_equal(f, g)  # deterministic


def test_portamento_between_legato_notes(preset):
    f = song_frames(steady(preset), Song([Note(0.0, 0.5, 60), Note(0.5, 1.0, 67)]))
    glide = f[frames_at(0.4) : frames_at(0.8), 0]
    assert np.all(np.diff(glide) >= -1e-6)
    assert np.all(glide[: frames_at(0.1)] == 60)  # the glide starts on the note, not before
    # exponential, tau 45 ms: 1/e of the interval left 45 ms after the note starts
    k = frames_at(0.5) + round(0.045 * FPS)
    assert f[k, 0] == pytest.approx(67 - 7 / np.e, abs=0.25)
    assert f[frames_at(0.9), 0] == pytest.approx(67, abs=0.01)
    assert np.all(f[frames_at(0.1) : frames_at(0.9), 1] > 0.9)  # legato: no unvoiced gap


def test_onset_consonants_precede_the_beat(preset):
    sa = Syllable(("S",), "AA", (), "sa")
    f = song_frames(steady(preset), Song([Note(1.0, 2.0, 60, 100, sa)]))
    table = fallback_table(16000, 24)
    s_env = table["S"][0]
    before = f[frames_at(0.93) : frames_at(0.98)]
    assert np.all(before[:, 1] < 0.2)  # unvoiced S before the note
    assert np.abs(before[:, 2:] - s_env).mean() < 1.5  # with the S spectrum (level ~ velocity 100)
    vowel = f[frames_at(1.1) : frames_at(1.9)]
    assert np.all(vowel[:, 1] > 0.9)
    assert np.abs(vowel[:, 2:] - table["AA"][0]).max() < 0.01
    # the coda follows the note off (as live): "star" ends on R, then silence
    star = Syllable(("S", "T"), "AA", ("R",), "star")
    g = song_frames(steady(preset), Song([Note(1.0, 2.0, 60, 100, star)]))
    r_env = table["R"][0]
    end = g[frames_at(2.03) : frames_at(2.06)]
    assert np.abs(end[:, 2:] - r_env).mean() < np.abs(end[:, 2:] - table["AA"][0]).mean()
    assert np.all(g[frames_at(2.2) :, 1] < 0.01)


def test_melisma_keeps_the_vowel(preset):
    sylls = [Syllable(("L",), "AA", (), "la"), Syllable(melisma=True), Syllable(melisma=True)]
    notes = [Note(0.5 * i, 0.5 * (i + 1), 60 + 2 * i, 100, s) for i, s in enumerate(sylls)]
    f = song_frames(steady(preset), Song(notes))
    aa = fallback_table(16000, 24)["AA"][0]
    span = f[frames_at(0.2) : frames_at(1.4), 2:]
    assert np.abs(span - aa).max() < 0.01  # one vowel across the three notes


def test_bend_modwheel_dynamics_transpose(preset):
    base = [Event.note_on(0.0, 60, 100), Event.note_off(2.0, 60)]

    def run(extra, **kw):
        s = steady(preset, **kw)
        return s.render_song(sorted(base + extra, key=lambda e: e.sort_key), 2.0)

    plain = run([])
    bent = run([Event.pitch_bend(1.0, 1.0)])
    assert bent[frames_at(1.2), 0] == pytest.approx(62.0, abs=1e-3)  # +2 semitones at full bend
    assert bent[frames_at(0.5), 0] == pytest.approx(60.0, abs=1e-3)
    rpn = [Event.control_change(0.1, 101, 0), Event.control_change(0.1, 100, 0), Event.control_change(0.1, 6, 12)]
    wide = run(rpn + [Event.pitch_bend(1.0, -0.5)])  # RPN 0: a 12-semitone range
    assert wide[frames_at(1.2), 0] == pytest.approx(54.0, abs=1e-3)
    wob = run([Event.control_change(0.5, 1, 127)])
    assert np.ptp(wob[frames_at(0.6) : frames_at(1.9), 0]) > 1.4  # mod wheel: +-0.75 semitones
    assert np.ptp(plain[frames_at(0.6) : frames_at(1.9), 0]) < 1e-3
    soft = run([Event.control_change(1.0, 11, 40)])
    above = plain[frames_at(1.5), 2:] > np.log(1e-10) + 8  # bands clear of the floor
    drop = (plain[frames_at(1.5), 2:] - soft[frames_at(1.5), 2:])[above]
    assert above.sum() > 12 and np.allclose(drop, drop[0], atol=1e-4) and drop[0] > 2.0  # same in every band
    quiet = steady(preset).render_song([Event.note_on(0.0, 60, 30), Event.note_off(2.0, 60)], 2.0)
    assert (plain[frames_at(1.0), 2:] - quiet[frames_at(1.0), 2:]).mean() > 2.0
    up = steady(preset, transpose=-5).render_song(base, 2.0)
    assert up[frames_at(1.0), 0] == pytest.approx(55.0, abs=1e-3)


def test_blocks_do_not_change_the_frames(preset):
    song = Song([Note(0.1, 0.6, 60), Note(0.6, 1.2, 62), Note(1.5, 2.5, 65)]).with_lyrics("Hel-lo dear world")
    s = Singer(preset, seed=7)
    whole = song_frames(s, song)
    s.reset()
    s.push_many(song.events())
    parts, n, rng = [], whole.shape[0], np.random.default_rng(0)
    while sum(map(len, parts)) < n:
        parts.append(s.frames(min(int(rng.integers(1, 40)), n - sum(map(len, parts)))))
    assert np.array_equal(np.concatenate(parts), whole)


def test_live_cursor_and_legato(preset):
    """What a keyboard does: events at the singer's clock, lyrics from the cursor."""
    s = steady(preset, lyrics="one two three")
    table = fallback_table(16000, 24)
    s.push(Event.note_on(s.time, 60))
    a = s.frames(60)  # 0.3 s of "one" (W AH N)
    assert [x.phones for x in s.upcoming_syllables] == [("T", "UW"), ("TH", "R", "IY")]
    assert a[-1, 1] > 0.9 and np.abs(a[-1, 2:] - table["AH"][0]).max() < 0.01
    s.push(Event.note_on(s.time, 64))  # legato: a glide, no new syllable
    b = s.frames(60)
    assert len(s.upcoming_syllables) == 2
    assert b[-1, 0] == pytest.approx(64, abs=0.01) and np.all(b[:, 1] > 0.9)
    s.push(Event.note_off(s.time, 64))  # back to the key still held
    c = s.frames(80)
    assert c[-1, 0] == pytest.approx(60, abs=0.01) and s.sounding
    s.push(Event.note_off(s.time, 60))
    d = s.frames(60)
    assert not s.sounding and d[-1, 1] < 0.01
    s.push(Event.note_on(s.time, 67))  # a new note: the next syllable, T UW
    e = s.frames(80)
    assert [x.phones for x in s.upcoming_syllables] == [("TH", "R", "IY")]
    assert e[-1, 0] == pytest.approx(67, abs=1e-3)
    assert np.abs(e[-1, 2:] - table["UW"][0]).max() < 0.01


def test_singer_data_and_pitch_range(preset):
    cfg = preset.config
    table = fallback_table(16000, 24)
    phon = ["AA", "S", "sil"]
    cfg["singer"] = {
        "version": 1,
        "n_env": 24,
        "phonemes": phon,
        "envelopes": [(table[p][0] + 1.0).tolist() for p in phon],
        "voicing": [0.97, 0.1, 0.0],
        "durations": [0.2, 0.15, 0.3],
        "pitch_range": [55, 67],
        "level": -7.0,
    }
    voiced = Preset(cfg, preset.tensors, preset.layers)
    s = steady(voiced)
    assert s.has_singer_data and s.pitch_range == (55, 67)
    f = s.render_song([Event.note_on(0.5, 60, 100), Event.note_off(1.5, 60)], 2.0)
    assert f[frames_at(1.0), 1] == pytest.approx(0.97, abs=1e-4)
    assert np.abs(f[frames_at(1.0), 2:] - (table["AA"][0] + 1.0)).max() < 1e-3
    assert s.pitch_warning([60, 62, 64]) is None
    w = s.pitch_warning([40, 45, 60])  # only the notes outside are named; no octave fits more than C4 alone
    assert "2 of 3 notes lie outside the voice's trained range G3..G4: 2 below (E2..A2)" in w
    assert "no octave shift fits more" in w and "C4" not in w
    w = s.pitch_warning([45, 47, 50])
    assert "3 below (A2..D3)" in w and "--transpose +12 fits 3 of 3" in w
    assert Singer(preset).pitch_warning([10, 120]) is None  # no data, no range to check
    assert text_syllables("sa")[0].phones == ("S", "AA")


def test_build_singer_data_round_trip(preset):
    from vocoder.singer import build_singer_data, singer_table
    from vocoder.train import singer_data

    assert singer_data.build_singer_data is build_singer_data  # one version, training uses it
    rng = np.random.default_rng(0)
    f = np.zeros((200, 26))
    f[:, 0] = 60 + rng.normal(0, 1, 200)
    f[:, 1] = 1.0
    f[:, 2:] = -23.0
    f[20:40, 2:], f[20:40, 1] = -9.0, 0.0  # S, 0.1 s
    f[40:140, 2:], f[40:140, 1] = -5.0, 1.0  # AA, 0.5 s
    phones = [["S", 0.1, 0.2], ["AA1", 0.2, 0.7]]
    data = build_singer_data([(f, phones)], hop=80, sample_rate=16000, n_env=24)
    assert data["phonemes"] == ["AA1", "S"] and data["n_env"] == 24
    assert data["envelopes"][0] == [-5.0] * 24 and data["voicing"] == [1.0, 0.0]
    assert data["durations"] == [0.5, 0.1]
    voiced = np.sort(f[f[:, 1] > 0.5, 0])  # the shipped voice's range: 2nd..98th percentile
    assert data["pitch_range"] == [int(np.floor(np.percentile(voiced, 2))), int(np.ceil(np.percentile(voiced, 98)))]
    assert data["pitch_range"] != [int(np.floor(np.percentile(voiced, 5))), int(np.ceil(np.percentile(voiced, 95)))]
    cfg = preset.config
    cfg["singer"] = data
    table, pr, from_data = singer_table(cfg, 24, 16000)
    assert from_data and pr == tuple(data["pitch_range"]) and np.allclose(table["AA"][0], -5.0)
    assert set(table) >= set(fallback_table(16000, 24))  # the rest filled in from the built-in table


# --------------------------------------------------------------------------- the contract: one singer
# The same events give the same samples from `vocoder render` and from a vocoder.Voice fed
# them at the same samples (same rate, same seed); with lyrics, the frames differ only
# where render places onset consonants before the beat (vocoder.singer.EARLY_ONSETS).


def live_voice_samples(preset, events, n, seed=0, lyrics=None, block=173):
    """A Voice at the preset's rate fed ``events`` at their samples; its first ``n`` samples
    after the engine's latency (what render drops)."""
    import vocoder

    sr = preset.sample_rate
    v = vocoder.Voice(preset, sample_rate=sr, seed=seed)
    if lyrics:
        v.lyrics(lyrics)
    lat = vocoder.Vocoder(preset).latency_samples
    out = drive_voice(v, script_from_events(events, sr), n + lat, blocks=(block,))
    assert v.dropped_events == 0 and v.underrun_samples == 0
    return out[lat:]


def write_performance(path):
    """A MIDI file with what a keyboard sends: overlapping (legato) and touching notes, a
    rest, pitch bend, mod wheel, expression, breath, RPN 0 (bend range), no lyrics."""
    import mido

    tpb = 480  # 120 bpm: a tick is 1/960 s
    m = mido.MidiFile(ticks_per_beat=tpb)
    tr = mido.MidiTrack()
    m.tracks.append(tr)
    ev = [
        (0, mido.MetaMessage("set_tempo", tempo=500000)),
        (10, mido.Message("control_change", control=101, value=0)),
        (10, mido.Message("control_change", control=100, value=0)),
        (10, mido.Message("control_change", control=6, value=7)),  # bend range 7 semitones
        (60, mido.Message("note_on", note=60, velocity=100)),
        (400, mido.Message("note_on", note=64, velocity=80)),  # legato: 60 still held
        (430, mido.Message("note_off", note=60)),
        (500, mido.Message("pitchwheel", pitch=4096)),
        (700, mido.Message("control_change", control=1, value=127)),
        (800, mido.Message("note_off", note=64)),
        (800, mido.Message("note_on", note=67, velocity=120)),  # touching: joined
        (1100, mido.Message("control_change", control=11, value=50)),
        (1150, mido.Message("pitchwheel", pitch=-8192)),
        (1300, mido.Message("note_off", note=67)),
        (1700, mido.Message("control_change", control=2, value=90)),
        (1700, mido.Message("pitchwheel", pitch=0)),
        (1750, mido.Message("note_on", note=62, velocity=64)),  # after a rest
        (2300, mido.Message("note_off", note=62)),
    ]
    last = 0
    for t, msg in ev:
        tr.append(msg.copy(time=t - last))
        last = t
    m.save(str(path))
    return path


def test_render_and_voice_give_the_same_samples(tmp_path):
    import soundfile as sf

    from vocoder.engine.presets import load_preset, save_preset
    from vocoder.hosts import render
    from vocoder.score.events import read_song

    preset = random_preset(
        hidden=64,
        density=0.25,
        n_features=26,
        hop=80,
        seed=5,
        head="mulaw",
        mulaw_bits=8,
        predictor="lpc+pitch",
        preemphasis=0.6,
        temperature_unvoiced=0.5,
    )
    path = save_preset(preset, tmp_path / "p.safetensors")
    mid = write_performance(tmp_path / "perf.mid")
    info = render.render_file(mid, tmp_path / "out.wav", preset=str(path), seed=7, subtype="float", jobs=1)
    assert info["chunks"] == 1 and info["sample_rate"] == preset.sample_rate
    audio, sr = sf.read(tmp_path / "out.wav", dtype="float32")
    assert sr == preset.sample_rate and np.abs(audio).max() > 0.01

    events = read_song(mid).events()
    assert {e.kind for e in events} >= {"note_on", "note_off", "pitch_bend", "control"}
    assert {e.control for e in events if e.kind == "control"} == {1, 2, 6, 11, 100, 101}
    live = live_voice_samples(load_preset(str(path)), events, len(audio), seed=7)
    assert np.array_equal(live, audio)  # every sample, bit for bit
    other = live_voice_samples(load_preset(str(path)), events, len(audio), seed=8)
    assert not np.array_equal(other, audio)  # (the comparison can fail)


def test_with_lyrics_frames_differ_only_where_onsets_are_early():
    from vocoder.hosts import render

    preset = random_preset(
        hidden=32, density=0.5, n_features=26, hop=80, cond_hidden=16, seed=4, head="mulaw", mulaw_bits=8
    )
    text = "sa-ta pla sti stra ka"
    notes = [
        Note(0.3, 0.7, 60, 100),
        Note(0.7, 1.1, 62, 90),  # touching: S T ahead of the beat, joined
        Note(1.5, 1.9, 64, 100),
        Note(1.9, 2.3, 65, 100),  # after a rest; then coda + onset
        Note(2.3, 2.6, 67, 100),
        Note(3.0, 3.3, 60, 100),
    ]
    song = Song(notes).with_lyrics(text)
    early, singer = render.song_features(song, preset)
    live, _ = render.song_features(song, preset, early_onsets=False)
    assert early.shape == live.shape and len(singer.early) >= 4

    # the live frames are what a Voice makes: vocoded, they give a Voice's samples
    audio, _, _, chunks = render.synthesize(song, preset, seed=3, jobs=1, early_onsets=False)
    assert len(chunks) == 1
    assert np.array_equal(live_voice_samples(preset, song.events(), len(audio), seed=3, lyrics=text), audio)

    # pitch (with vibrato, glides) and dynamics are the same frame for frame
    assert np.array_equal(early[:, 0], live[:, 0])
    # the rest differs only from where render starts the consonants to where the live
    # singer's vowel has settled (its consonants, then the 12 ms transitions to the float's last bit)
    settle = 60
    inside = np.zeros(len(early), bool)
    for f_onset, f_note, cons in singer.early:
        assert f_onset < f_note
        inside[f_onset : f_note + cons + settle] = True
    differs = np.any(early != live, axis=1)
    assert differs.any() and not np.any(differs & ~inside)
    for f_onset, f_note, _ in singer.early:  # and in every such place they do differ
        assert differs[f_onset:f_note].all()
        # render's vowel is on the beat: a few frames after it, nearer the vowel than live's
        assert early[f_note + 8, 1] > live[f_note + 8, 1] or early[f_note + 8, 1] > 0.9
