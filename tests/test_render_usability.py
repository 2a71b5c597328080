"""What a new user meets in `vocoder render` (issue 14): the MusicXML part chosen and said,
notes out of range and --transpose auto, early errors, progress output, the plot, the
language of the lyrics, one resampler for files and live voices. Real files are written
(MIDI with mido, MusicXML with music21) and read back; nothing is mocked."""

import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import soundfile as sf

from vocoder import cli
from vocoder.engine.presets import load_preset
from vocoder.hosts import render
from vocoder.score.events import SongError, read_song

from helpers import REPO, subprocess_env
from test_events import write_midi


def run(capsys, *args):
    rc = cli.main(["render", *map(str, args)])
    return rc, capsys.readouterr().err


def cli_proc(*args, **kw):
    """`python -m vocoder ...` in a child process with this checkout first on the path."""
    env = subprocess_env(PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", "vocoder", *map(str, args)], capture_output=True, text=True, env=env, timeout=300, **kw
    )


def score(path, parts, lyrics=None):
    """A MusicXML file written by music21: ``parts`` = [(name, instrument or None, [midi, ...])];
    ``lyrics`` = {part index: [word per note]}."""
    from music21 import instrument, metadata, note, stream, tempo

    sc = stream.Score()
    sc.metadata = metadata.Metadata(title="test")
    for k, (name, inst, pitches) in enumerate(parts):
        p = stream.Part()
        if inst is not None:
            p.insert(0, getattr(instrument, inst)())
        p.partName = name
        if k == 0:
            p.insert(0, tempo.MetronomeMark(number=120))
        for i, m in enumerate(pitches):
            n = note.Note(m, quarterLength=1)
            if lyrics and k in lyrics and i < len(lyrics[k]):
                n.addLyric(lyrics[k][i])
            p.append(n)
        sc.insert(0, p)
    sc.write("musicxml", fp=str(path))
    return path


# --------------------------------------------------------------------------- 2. MusicXML parts


def test_part_choice_rules_and_option(tmp_path, small_preset_path, capsys):
    trumpet, soprano, violin = [60, 62, 64, 65], [67, 69, 71, 72], [76, 77, 79, 81]
    # no lyrics, a voice part among instruments: the voice, though it is neither first nor highest
    f = score(
        tmp_path / "band.musicxml",
        [("Trumpet 1", "Trumpet", trumpet), ("Soprano", "Soprano", soprano), ("Violin", "Violin", violin)],
    )
    s = read_song(f)
    assert [n.pitch for n in s.notes] == soprano and s.part == 1 and "voice" in s.part_reason
    assert s.parts == ["Trumpet 1", "Soprano", "Violin"]
    # no lyrics, no voice: the highest part, said so
    g = score(
        tmp_path / "inst.musicxml",
        [
            ("Trumpet 1", "Trumpet", trumpet),
            ("Violin", "Violin", violin),
            ("Tenor Saxophone", "TenorSaxophone", soprano),
        ],
    )
    s = read_song(g)
    assert [n.pitch for n in s.notes] == violin and "highest part" in s.part_reason
    # lyrics win over voice and height
    h = score(
        tmp_path / "sung.musicxml",
        [("Soprano", "Soprano", soprano), ("Flute", "Flute", violin), ("Cello", "Violoncello", trumpet)],
        lyrics={2: ["la"] * 4},
    )
    assert read_song(h).part == 2 and read_song(h).part_reason == "the first part with lyrics"
    # --part by number, by name (any case, part of a name), and the CLI says what it sang
    assert [n.pitch for n in read_song(f, part="2").notes] == violin
    assert [n.pitch for n in read_song(f, part="trumpet").notes] == trumpet
    out = tmp_path / "o.wav"
    rc, err = run(capsys, f, "-o", out, "--preset", small_preset_path, "--part", "violin")
    assert rc == 0, err
    assert 'singing part 2 "Violin" (chosen with --part)' in err
    assert 'parts: 0 "Trumpet 1", 1 "Soprano", 2 "Violin"' in err
    assert sf.info(str(out)).frames == int(round((4 * 0.5 + render.TAIL) * 16000))
    rc, err = run(capsys, f, "-o", out, "--preset", small_preset_path)
    assert rc == 0 and 'singing part 1 "Soprano" (no part has lyrics; the first voice part)' in err
    rc, err = run(capsys, f, "-o", out, "--preset", small_preset_path, "-q")
    assert rc == 0 and "singing part" not in err  # -q: no notes, only warnings


def test_part_errors_name_the_parts(tmp_path, small_preset_path, capsys):
    f = score(tmp_path / "two.musicxml", [("Violin I", "Violin", [72, 74]), ("Violin II", "Violin", [67, 69])])
    for arg, msg in [
        ("viola", 'no part named \'viola\'; the parts are 0 "Violin I", 1 "Violin II"'),
        ("violin", "2 parts match 'violin'"),
        ("5", "no part 5; the parts are"),
    ]:
        rc, err = run(capsys, f, "-o", tmp_path / "x.wav", "--preset", small_preset_path, "--part", arg)
        assert rc == 1 and msg in err and str(f) in err and len(err.strip().splitlines()) == 1, err
    assert [n.pitch for n in read_song(f, part="violin ii").notes] == [67, 69]  # an exact name wins
    mid = write_midi(tmp_path / "a.mid", [[(0, 1, 60, None)]])
    rc, err = run(capsys, mid, "-o", tmp_path / "x.wav", "--preset", small_preset_path, "--part", "1")
    assert rc == 1 and "--part picks a MusicXML part" in err and "--track" in err
    with pytest.raises(SongError, match="not both"):
        read_song(f, track=0, part="0")


# --------------------------------------------------------------------------- 3. range and transpose


def test_range_warning_names_only_the_notes_outside(tmp_path, ranged_preset_path, capsys):
    # D3 and F#4 lie inside 48..66; only A#4 and C5 are outside
    mid = write_midi(tmp_path / "s.mid", [[(0, 1, 50, None), (1, 1, 66, None), (2, 1, 70, None), (3, 1, 72, None)]])
    rc, err = run(capsys, mid, "-o", tmp_path / "s.wav", "--preset", ranged_preset_path, "-q")
    assert rc == 0, err
    assert "2 of 4 notes lie outside the voice's trained range C3..F#4: 2 above (A#4..C5)" in err
    assert "D3" not in err and "below" not in err
    # -12 fits 3 of 4 (38 falls out below), which beats 2 of 4
    assert "--transpose -12 fits 3 of 4" in err


def test_suggestion_counts_from_the_transpose_given(tmp_path, ranged_preset_path, capsys):
    mid = write_midi(tmp_path / "hi.mid", [[(0, 1, 72, None), (1, 1, 74, None), (2, 1, 76, None)]])
    rc, err = run(capsys, mid, "-o", tmp_path / "a.wav", "--preset", ranged_preset_path, "-q", "--transpose", 12)
    assert rc == 0 and "3 above (C6..E6)" in err and "--transpose -12 fits 3 of 3 (instead of +12)" in err
    rc, err = run(capsys, mid, "-o", tmp_path / "b.wav", "--preset", ranged_preset_path, "-q", "--transpose", -12)
    assert rc == 0 and "warning" not in err  # C4..E4 fit: no warning, no "+0" advice
    rc, err = run(capsys, mid, "-o", tmp_path / "c.wav", "--preset", ranged_preset_path, "-q", "--transpose", -36)
    # -24 and -12 both fit all three: the smaller step from what was given
    assert rc == 0 and "3 below (C2..E2)" in err and "--transpose -24 fits 3 of 3 (instead of -36)" in err


def test_transpose_auto(tmp_path, ranged_preset_path, small_preset_path, capsys):
    mid = write_midi(tmp_path / "hi.mid", [[(0, 1, 72, "la"), (1, 1, 74, "la"), (2, 2, 77, "la")]])
    rc, err = run(capsys, mid, "-o", tmp_path / "a.wav", "--preset", ranged_preset_path, "--transpose", "auto")
    assert rc == 0, err
    assert "--transpose auto: -12 semitones puts 3 of 3 notes in the voice's range" in err
    assert "lie outside" not in err
    info = render.render_file(mid, tmp_path / "b.wav", preset=ranged_preset_path, transpose="auto")
    assert info["transpose"] == -12
    # the f0 sung is the score's minus an octave (vibrato is symmetric around the note)
    song = read_song(mid)
    feats, _ = render.song_features(song, render.load_voice(ranged_preset_path), transpose=info["transpose"])
    mid_frame = int(0.25 * 200)
    assert abs(np.median(feats[mid_frame - 10 : mid_frame + 10, 0]) - 60) < 0.3
    # a preset without a trained range cannot pick
    rc, err = run(capsys, mid, "-o", tmp_path / "c.wav", "--preset", small_preset_path, "--transpose", "auto")
    assert rc == 1 and "--transpose auto needs the voice's trained pitch range" in err
    rc, err = run(capsys, mid, "-o", tmp_path / "c.wav", "--preset", small_preset_path, "--transpose", "up")
    assert rc == 1 and "--transpose takes semitones (-48..48) or 'auto'" in err


def test_transpose_past_nyquist_or_midi_127_is_refused(tmp_path, small_preset_path, capsys):
    mid = write_midi(tmp_path / "s.mid", [[(0, 1, 72, None), (1, 1, 76, None)]])
    out = tmp_path / "x.wav"
    rc, err = run(capsys, mid, "-o", out, "--preset", small_preset_path, "--transpose", 48)
    # E4 + 48 = MIDI 124, 10.5 kHz: above 8 kHz, the Nyquist frequency of a 16 kHz voice
    assert rc == 1 and "above the voice's Nyquist frequency 8000 Hz" in err, err
    assert "use at most --transpose +43" in err and "%" not in err and not out.exists()
    rc, err = run(capsys, mid, "-o", out, "--preset", small_preset_path, "--transpose", 43, "-q")
    assert rc == 0, err
    song = read_song(write_midi(tmp_path / "t.mid", [[(0, 1, 100, None)]]))
    with pytest.raises(render.RenderError, match="past MIDI 127; use at most --transpose \\+27"):
        render.check_transpose(song, 30, 48000)
    render.check_transpose(song, 27, 48000)
    low = read_song(write_midi(tmp_path / "l.mid", [[(0, 1, 20, None)]]))
    with pytest.raises(render.RenderError, match="below MIDI 0"):
        render.check_transpose(low, -24, 16000)


# --------------------------------------------------------------------------- 4. early errors


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc (a directory no one can write)")
def test_unwritable_output_fails_before_rendering(tmp_path, small_preset_path, capsys):
    mid = write_midi(tmp_path / "s.mid", [[(0, 8, 60, "la")]])
    rc, err = run(capsys, mid, "-o", "/proc/x.wav", "--preset", small_preset_path)
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1, err
    assert lines[0].startswith("vocoder render: /proc/x.wav: cannot write the output there")
    assert ".part" not in err and "%" not in err  # named as given, and no render ran
    rc, err = run(capsys, mid, "-o", tmp_path / "ok.wav", "--preset", small_preset_path, "--plot", "/proc/x.png")
    assert rc == 1 and "/proc/x.png: cannot write the plot there" in err and not (tmp_path / "ok.wav").exists()
    assert sorted(os.listdir(tmp_path)) == ["s.mid"]


def test_empty_output_path(tmp_path, small_preset_path, capsys):
    mid = write_midi(tmp_path / "s.mid", [[(0, 1, 60, None)]])
    rc, err = run(capsys, mid, "-o", "", "--preset", small_preset_path)
    assert rc == 1 and "the output path is empty" in err and "-o song.wav" in err and ".:" not in err


# --------------------------------------------------------------------------- 5. progress


def test_progress_lines_off_a_terminal_bar_on_one(tmp_path, small_preset_path):
    mid = write_midi(tmp_path / "s.mid", [[(2 * i, 2, 60 + i % 5, "la") for i in range(10)]])
    r = cli_proc("render", mid, "-o", tmp_path / "a.wav", "--preset", small_preset_path, "--jobs", 1)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr
    steps = [ln for ln in r.stderr.splitlines() if "% (" in ln]
    assert 1 <= len(steps) <= 11 and steps[-1].startswith("s.mid: 100% (10.5/10.5 s"), r.stderr
    # a real terminal (a pty) gets the bar redrawn in place
    import pty

    master, slave = pty.openpty()
    try:
        env = subprocess_env(PYTHONWARNINGS="ignore")
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vocoder",
                "render",
                str(mid),
                "-o",
                str(tmp_path / "b.wav"),
                "--preset",
                small_preset_path,
                "--jobs",
                "1",
            ],
            stderr=slave,
            env=env,
        )
        os.close(slave)
        slave = None
        got = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            got += chunk
        assert p.wait(timeout=120) == 0, got
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    text = got.decode(errors="replace")
    assert "\r" in text and "[" in text and "100%" in text


def test_library_prints_nothing_and_calls_back(tmp_path, small_preset_path, capfd):
    mid = write_midi(tmp_path / "s.mid", [[(0, 2, 60, "la"), (2, 2, 62, "la")]])
    calls = []
    info = render.render_file(
        mid,
        tmp_path / "a.wav",
        preset=small_preset_path,
        jobs=1,
        progress=lambda done, total: calls.append((done, total)),
    )
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert calls and calls[-1][0] == calls[-1][1] == pytest.approx(info["seconds"], abs=0.01)
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
    render.render_file(mid, tmp_path / "b.wav", preset=small_preset_path, jobs=1)  # no callback: silence
    assert capfd.readouterr() == ("", "")


def test_bench_kernels_reports_progress():
    from vocoder.bench import kernels as bench_kernels

    seen = []
    records = bench_kernels.bench_kernels(
        levels=["ref"], quick=True, progress=lambda d, t, what: seen.append((d, t, what))
    )
    assert len(seen) == len(records) and seen[-1][0] == seen[-1][1] == len(records)
    assert [d for d, _, _ in seen] == list(range(1, len(records) + 1)) and "ref" in seen[0][2]


def test_devices_prints_no_library_noise():
    r = cli_proc("devices")
    assert r.returncode == 0 and "MIDI (alsa):" in r.stdout
    assert r.stderr == "", r.stderr  # JACK/ALSA probing messages ("Cannot connect to server ...") hidden


# --------------------------------------------------------------------------- 6. one resampler


def test_render_rate_uses_the_live_resampler(tmp_path, small_preset_path, capsys):
    import vocoder

    mid = write_midi(tmp_path / "s.mid", [[(0, 2, 60, "la"), (2, 2, 64, "la")]])
    for rate in (16000, 48000, 44100):
        rc, err = run(
            capsys,
            mid,
            "-o",
            tmp_path / f"{rate}.wav",
            "--preset",
            small_preset_path,
            "--format",
            "float",
            "-q",
            *(["--rate", rate] if rate != 16000 else []),
        )
        assert rc == 0, err
    base, sr = sf.read(str(tmp_path / "16000.wav"), dtype="float32")
    for rate in (48000, 44100):
        hi, r = sf.read(str(tmp_path / f"{rate}.wav"), dtype="float32")
        assert r == rate and len(hi) == math.ceil(len(base) * rate / 16000)
        assert np.array_equal(hi, render.resample(base, 16000, rate))
    # the live voice resamples with the same code: at 48 kHz it gives the 16 kHz voice resampled,
    # delayed by the filter (the file's copy has that delay removed), clamped to [-1, 1]
    p = load_preset(small_preset_path)
    outs = {}
    for rate in (16000, 48000, 44100):
        v = vocoder.Voice(p, sample_rate=rate, seed=3)
        v.note_on(60, 100, offset=0)
        outs[rate] = np.zeros(rate // 2, np.float32)
        v.render(outs[rate])
    for rate in (48000, 44100):
        ref = np.clip(render.resample(outs[16000], 16000, rate), -1, 1)[: rate // 2 - 200]
        assert np.abs(ref).max() > 0.05
        lags = [s for s in range(120) if np.array_equal(outs[rate][s : s + len(ref)], ref)]
        assert len(lags) == 1, f"{rate} Hz: live and file resampling differ"


def test_rate_does_not_import_scipy_signal(tmp_path, small_preset_path):
    mid = write_midi(tmp_path / "s.mid", [[(0, 2, 60, "la")]])
    code = (
        "import sys; from vocoder.hosts import render; "
        f"render.render_file({str(mid)!r}, {str(tmp_path / 'o.wav')!r}, preset={small_preset_path!r}, rate=48000); "
        "print('scipy.signal' in sys.modules)"
    )
    env = subprocess_env(PYTHONWARNINGS="ignore")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


# --------------------------------------------------------------------------- 7. lyrics language


def test_non_english_lyrics_are_noticed(tmp_path, small_preset_path, capsys):
    from music21 import corpus

    # a Bach chorale from music21's corpus, German lyrics ("Ich dank' dir, lieber Herre")
    f = tmp_path / "bwv347.musicxml"
    corpus.parse("bach/bwv347").write("musicxml", fp=str(f))
    rc, err = run(capsys, f, "-o", tmp_path / "de.wav", "--preset", small_preset_path, "-q")
    assert rc == 0, err
    hits = [ln for ln in err.splitlines() if "lyrics look non-English" in ln]
    assert len(hits) == 1 and "words spelled by rule" in hits[0], err
    en = score(
        tmp_path / "en.musicxml",
        [("Voice", "Vocalist", [60, 62, 64, 65, 67, 69])],
        lyrics={0: ["twinkle", "little", "star", "how", "I", "wonder"]},
    )
    rc, err = run(capsys, en, "-o", tmp_path / "en.wav", "--preset", small_preset_path, "-q")
    assert rc == 0 and "non-English" not in err, err
    rc, err = run(
        capsys,
        en,
        "-o",
        tmp_path / "fr.wav",
        "--preset",
        small_preset_path,
        "-q",
        "--lyrics",
        "quand il me prend dans ses bras",
    )
    assert rc == 0 and "non-English" in err
    from vocoder.score.lyrics import dictionary_coverage

    assert dictionary_coverage(["läßt", "the", "café"])[:2] == (1, 3)  # accents: not an English spelling


# --------------------------------------------------------------------------- 1, 9. the plot


def test_plot_extra_installs_pyworld():
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        tomllib = pytest.importorskip("tomli")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = [d.split(">")[0].split("<")[0].split("=")[0].strip() for d in extras["plot"]]
    assert {"matplotlib", "pyworld", "setuptools"} <= set(names)
    assert any(d.replace(" ", "") == "setuptools<81" for d in extras["plot"])  # pyworld imports pkg_resources


def test_plot_fits_the_song_on_a_log_axis(tmp_path, small_preset_path):
    pytest.importorskip("matplotlib")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.importorskip("pyworld")
    voice = render.load_voice(small_preset_path)
    limits = {}
    for name, notes in [("bass", [40, 43, 45, 47, 52]), ("soprano", [72, 74, 76, 79, 81])]:
        song = read_song(write_midi(tmp_path / f"{name}.mid", [[(i, 1, m, "la") for i, m in enumerate(notes)]]))
        audio, feats, singer, _ = render.synthesize(song, voice, jobs=1)
        said = []
        info = render.plot_render(
            tmp_path / f"{name}.png", audio, voice.sample_rate, song, feats, singer, warn=said.append
        )
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert info["yscale"] == "log" and said == []
        assert info["layers"] == ["score", "singer f0", "rendered f0 (pyworld)"]
        limits[name] = info["ylim"]
    hz = lambda m: 440 * 2 ** ((m - 69) / 12)  # noqa: E731
    lo, hi = limits["bass"]
    assert lo < hz(40) and hi < 1000  # E2..E3 fills the picture, not the bottom of 0..2 kHz
    lo, hi = limits["soprano"]
    assert hz(60) < lo < hz(72) and hi > hz(81)


def test_plot_says_when_the_rendered_f0_line_is_missing(tmp_path, small_preset_path):
    pytest.importorskip("matplotlib")
    mid = write_midi(tmp_path / "s.mid", [[(0, 2, 60, "la")]])
    # pyworld made unimportable the way Python itself spells "not installed" for one import
    code = (
        "import sys; sys.modules['pyworld'] = None; from vocoder import cli; "
        f"sys.exit(cli.main(['render', {str(mid)!r}, '-o', {str(tmp_path / 'o.wav')!r}, '--preset', "
        f"{small_preset_path!r}, '--plot', {str(tmp_path / 'o.png')!r}, '-q']))"
    )
    env = subprocess_env(PYTHONWARNINGS="ignore")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "--plot" in ln]
    assert len(lines) == 1 and "the rendered-f0 line is left out: pyworld cannot be imported" in lines[0]
    assert "pip install 'vocoder[plot]'" in lines[0]
    assert (tmp_path / "o.png").read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------- 8. docs


def test_docs_use_no_paths_of_the_training_machine_and_only_shipped_presets():
    import re

    for page in sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]:
        text = page.read_text()
        assert not re.search(r"(?<![\w.])/(work|root|home)/", text), f"{page.name}: an absolute path of one machine"
    shipped = {p.stem for p in (REPO / "presets").glob("*.safetensors")}
    for page in (REPO / "docs" / "live.md", REPO / "README.md"):
        for ch, preset in re.findall(r"--channel (\d+)=([\w.-]+)", page.read_text()):
            assert preset in shipped or preset.endswith(".safetensors"), f"{page.name}: --channel {ch}={preset}"
