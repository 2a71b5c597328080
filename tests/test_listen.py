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
FADE = np.minimum(1.0, np.minimum(np.arange(N), N - 1 - np.arange(N)) / 1600.0)  # 0.1 s fades


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
    assert min(hnr) > 45.0, hnr
    # its own pitch analysis finds nearly the same
    assert min(listen.band_hnr(x, SR, HOP)) > 35.0
    # without the time warp (a flat f0) the vibrato would read as noise in the highs
    flat = listen.band_hnr(x, SR, HOP, np.full_like(f0, 150.0), v)
    assert flat[2] < 5.0 and flat[3] < 5.0, flat


def test_a_given_f0_is_refined_on_the_signal():
    """An intended f0 30 cents off: read as is, the highs' harmonics fall into the noise
    bins; refined on the signal (as listen() does), the tone is harmonic again."""
    x, f0, v = vibrato_tone()
    off = f0 * 2 ** (30 / 1200)
    assert listen.band_hnr(x, SR, HOP, off, v)[3] < 0.0
    assert min(listen.band_hnr(x, SR, HOP, off, v, refine=True)) > 30.0
    r = listen.refine_f0(x, SR, HOP, off, v)
    mid = slice(40, -40)
    assert np.median(np.abs(1200 * np.log2(r[mid] / f0[mid]))) < 3.0


def test_white_noise_reads_the_floor():
    """Noise alone: harmonic and noise bins hold the same energy per bin, and the noise
    is counted over the whole band (8 bins per harmonic, 3 harmonic): 10 log10(3/8)."""
    _, f0, v = vibrato_tone()
    noise = np.random.default_rng(0).standard_normal(N) * 0.1
    hnr = listen.band_hnr(noise, SR, HOP, f0, v)
    assert all(-6.0 < h < -3.0 for h in hnr), hnr
    assert abs(np.mean(hnr) - 10 * np.log10(3 / 8)) < 0.6, hnr


@pytest.mark.parametrize("snr_db", [20.0, 10.0, 0.0])
def test_harmonics_plus_noise_at_a_set_ratio(snr_db):
    """Flat harmonics plus white noise at a broadband SNR (so the same SNR in every band)
    read 10 log10(snr + 3/8): the SNR itself at 10 dB and above."""
    x, f0, v = vibrato_tone(flat=True)
    noise = np.random.default_rng(1).standard_normal(N)
    y = x + noise / np.std(noise) * np.std(x) * 10 ** (-snr_db / 20)
    want = 10 * np.log10(10 ** (snr_db / 10) + 3 / 8)
    hnr = listen.band_hnr(y, SR, HOP, f0, v)
    assert all(abs(h - want) < 1.5 for h in hnr), (hnr, want)


def test_note_middles_leave_out_noisy_onsets():
    """Notes of 0.5 s whose first 25 ms are noise: all voiced frames read lower than
    the note middles, and a longer trim reads higher still."""
    x, f0, v = vibrato_tone()
    y, v = x.copy(), v.copy()
    rng = np.random.default_rng(5)
    for s0 in range(0, N, SR // 2):
        y[s0 : s0 + 400] = rng.standard_normal(400) * 0.1
        v[s0 // HOP : s0 // HOP + 2] = False  # a break between notes
    every = listen.band_hnr(y, SR, HOP, f0, v, middles=False)
    mid = listen.band_hnr(y, SR, HOP, f0, v)
    longer = listen.band_hnr(y, SR, HOP, f0, v, trim=12)
    assert all(m > e + 1.0 for m, e in zip(mid, every)), (mid, every)
    assert all(g > m + 3.0 for g, m in zip(longer, mid)), (longer, mid)


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
    assert listen.whistle_fraction(noise * 1e-4, SR, HOP, unv) == 0.0  # inaudible frames are not judged
    assert listen.whistle_counts(noise * 1e-4, SR, HOP, unv) == (0, 0)
    # a period-4 limit cycle (+a, 0, -a, 0: exactly sr/4) in the second half, noise before
    cycle = np.tile([0.2, 0.0, -0.2, 0.0], N // 8)
    y = np.concatenate([noise[: N // 2], cycle])
    w, n, where = listen.whistle_counts(y, SR, HOP, unv, lines=True)
    assert n == N // HOP - 6 and abs(w / n - 0.5) < 0.02, (w, n)
    assert listen.limit_cycle_count(where, SR) == w and set(where) == {SR / 4}
    assert listen.limit_cycle_count([2500.0, SR / 3 + 20, SR / 4 - 40], SR) == 1
    # only the unvoiced frames are judged: the same signal with its second half voiced
    half = unv.copy()
    half[len(half) // 2 :] = False
    assert listen.whistle_fraction(y, SR, HOP, half) == 0.0


def test_thump_is_the_slow_swing():
    x, _, _ = vibrato_tone()
    assert listen.thump_peak(x, SR) < 0.02  # speech-band content: ~0
    swing = 0.3 * np.sin(2 * np.pi * 30 * T) * FADE
    assert abs(listen.thump_peak(x + swing, SR) - 0.3) < 0.02
    assert abs(listen.thump_peak(swing, SR, cutoff=40.0) - 0.3) < 0.03
    # a single slow bump in the middle: per frame, only the frames around it go over 0.1
    bump = np.zeros(N)
    k = np.arange(800)
    bump[SR : SR + 800] = 0.3 * np.sin(np.pi * k / 800) ** 2  # 50 ms raised cosine
    per = listen.thump_frames(x + bump, SR, HOP)
    assert len(per) == N // HOP and 0.2 < per.max() < 0.32
    over = np.flatnonzero(per > listen.THUMP_LIMIT)
    assert over.size and over.min() > (SR - 1600) // HOP and over.max() < (SR + 2400) // HOP, over


def test_listen_judges_the_intended_frames():
    """Given the intended voicing, a signal that is noise where the song voices is judged
    there (the noise floor), not left out; its unvoiced half is judged for whistles."""
    x, f0, v = vibrato_tone()
    noise = np.random.default_rng(4).standard_normal(N) * 0.05
    y = np.concatenate([noise, np.tile([0.2, 0.0, -0.2, 0.0], N // 4)])
    vv = np.concatenate([v, np.zeros_like(v)])
    r = listen.pooled([listen.listen(y, SR, HOP, np.concatenate([f0, f0]), vv, mos=False)])
    assert all(h < 0 for h in r["hnr_db"]) and r["hnr_frames"] > 500, r
    assert (
        r["whistle"] > 0.95
        and r["whistle_limit_cycles"] == r["whistle_frames"][0]
        and r["thump"] < 0.05
        and r["thump_frames"][2] == 0
    ), r


def test_listen_on_a_file_written_and_read_back(tmp_path):
    x, _, _ = vibrato_tone()
    noise = np.random.default_rng(3).standard_normal(N) * 0.01
    y = np.concatenate([x, noise * FADE])
    sf.write(tmp_path / "a.wav", y, SR, subtype="PCM_16")
    a, sr = sf.read(tmp_path / "a.wav")
    one = listen.listen(a, sr, HOP, mos=False)
    r = listen.pooled([one] * 2)
    assert min(r["hnr_db"]) > 30 and min(r["hnr_median_db"]) > 30 and r["thump"] < 0.05, r
    assert r["whistle"] == 0.0 and r["dnsmos"] is None
    assert r["hnr_db"] == listen.pooled([one])["hnr_db"] and r["hnr_frames"] == 2 * listen.pooled([one])["hnr_frames"]
    # pooling weighs energies: a noisy file beside it pulls the energy sum toward the noise
    noisy = listen.listen(a + np.random.default_rng(6).standard_normal(len(a)) * 0.1, sr, HOP, mos=False)
    both = listen.pooled([one, noisy])
    assert all(b < o - 10 for b, o in zip(both["hnr_db"], r["hnr_db"])), both


def test_dnsmos_when_speechmos_is_installed():
    pytest.importorskip("speechmos")
    x, _, _ = vibrato_tone()
    d = listen.dnsmos(x[: 2 * SR], SR)
    assert d is not None and set(d) == {"sig", "bak", "ovrl"} and all(1.0 <= v <= 5.0 for v in d.values()), d


def test_scheme_simulation_without_errors_keeps_the_recording(tmp_path):
    """Every scheme with every class right delivers the recording within the 8-bit
    format (whose noise caps this 1/h tone's HNR at about 28 dB in 4-8 kHz, where its
    harmonics are weakest); errors of a few classes make the plain scheme noisier."""
    from vocoder.train import floor
    from vocoder.train.features import extract

    x, _, _ = vibrato_tone()
    sf.write(tmp_path / "tone.wav", x, SR, subtype="PCM_16")
    res = floor.simulate_schemes(
        tmp_path, sigmas=(0.0, 4.0), alpha=0.6, schemes=(("plain", None), ("lpc+pitch 0.8", 0.8))
    )
    rows = {(r["scheme"], r["sigma"]): r for r in res["rows"]}
    rec = rows[("recording", 0.0)]
    for scheme in ("plain", "lpc+pitch 0.8"):
        r = rows[(scheme, 0.0)]
        assert r["stft"] < 0.5 and min(r["hnr_db"][:3]) > 30 and r["hnr_db"][3] > 24, r
    assert rows[("plain", 4.0)]["stft"] > rows[("plain", 0.0)]["stft"] + 0.2
    assert rows[("plain", 4.0)]["hnr_db"][3] < min(rec["hnr_db"][3], 30) - 10
    assert "| plain | 4 |" in floor.format_schemes(res)
    assert extract(x, SR).shape[1] == 26


def test_evaluate_songs_writes_renders_and_measures_them(tmp_path):
    """vocoder evaluate's songs: MIDI with lyric events written by the command, rendered
    with the shipped preset as vocoder render does, WORLD from the singer's frames; the
    renders are saved, read back and measure as reported."""
    import mido

    from vocoder.engine.presets import load_preset
    from vocoder.train import evaluate

    paths = evaluate.write_songs(tmp_path, count=2, seed=4, notes=5)
    assert [p.name for p in paths] == ["song00.mid", "song01.mid"]
    lyrics = [m.text for m in mido.MidiFile(str(paths[0])).tracks[0] if m.type == "lyrics"]
    assert len(lyrics) == 5 and set(lyrics) <= set(evaluate.SONG_WORDS)
    preset = load_preset("default")
    res = evaluate.evaluate_songs(preset, tmp_path, mos=False, save_audio=True, midi=paths[:1])
    assert res["count"] == 1 and res["engine"]["hnr_frames"] > 50
    world = res["world"]
    # WORLD from the same frames is harmonic below 2 kHz, without whistles or thumps
    assert min(world["hnr_db"][:2]) > 25 and world["whistle"] == 0.0 and world["thump"] < 0.1, world
    assert set(res["targets"]) == {"whistles<=5%", "sub80Hz_peak<=0.1"}
    y, sr = sf.read(tmp_path / "song00.engine.wav")
    assert sr == preset.sample_rate
    again = listen.thump_peak(y, sr)
    assert abs(again - res["engine"]["thump"]) < 1e-3
    table = evaluate.format_songs(res)
    assert "int8 engine (render)" in table and "WORLD (the singer's frames)" in table and "DNSMOS: n/a" in table


def test_evaluate_cli_songs_only_json(tmp_path, capsys):
    import json

    from vocoder.cli import main
    from vocoder.train import evaluate

    mid = evaluate.write_songs(tmp_path, count=1, seed=7, notes=4)[0]
    assert main(["evaluate", "default", "--midi", str(mid), "--no-mos", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    s = res["songs"]
    assert s["count"] == 1 and len(s["engine"]["hnr_db"]) == 4 and s["engine"]["dnsmos"] is None
    assert s["per_song"][0]["song"] == mid.name
    assert main(["evaluate", "default", "--songs", "0"]) == 2  # nothing to measure


def test_evaluate_heldout_reports_listening_for_every_signal(tmp_path):
    """On a held-out folder (one vibrato tone, written and read back): the recording's
    band HNR is high, and the engine, WORLD and the recording all carry the proxies."""
    from vocoder.train import evaluate

    x, _, _ = vibrato_tone()
    sf.write(tmp_path / "tone.wav", x[: 2 * SR], SR, subtype="PCM_16")
    res = evaluate.evaluate("default", tmp_path, max_seconds=2.0, mos=False)
    for k in ("engine", "world", "world_full", "real"):
        assert set(res[k]["listen"]) >= {"hnr_db", "hnr_median_db", "whistle", "thump", "thump_frames"}, k
    assert min(res["real"]["listen"]["hnr_db"][:3]) > 30, res["real"]["listen"]
    assert {"whistles<=5%", "sub80Hz_peak<=0.1", "hnr>=recording_to_4kHz"} <= set(res["targets"])
    assert "recording" in evaluate.format_table(res)
