"""`vocoder render`: real files in, real WAV/FLAC out, atomically and deterministically."""

import os
import warnings

import numpy as np
import pytest
import soundfile as sf

from vocoder import cli
from vocoder.engine.presets import list_presets, save_preset
from vocoder.hosts import render
from vocoder.score.events import read_song
from vocoder.testing import random_preset

from test_events import write_midi, write_musicxml


@pytest.fixture()
def song_mid(tmp_path):
    return write_midi(
        tmp_path / "song.mid",
        [[(0, 1, 60, "Twin-"), (1, 1, 60, "kle "), (2, 1, 67, "twin-"), (3, 1, 67, "kle "), (4, 2, 69, "star")]],
        tempo=500000,
    )


def run(capsys, *args):
    rc = cli.main(["render", *map(str, args)])
    cap = capsys.readouterr()
    return rc, cap.err


def leftovers(d):
    return sorted(f for f in os.listdir(d) if f.startswith(".") or f.endswith(".part"))


def test_render_midi_to_wav(tmp_path, song_mid, small_preset_path, capsys):
    out = tmp_path / "out.wav"
    rc, err = run(capsys, song_mid, "-o", out, "--preset", small_preset_path, "--plot", tmp_path / "out.png")
    assert rc == 0, err
    assert "100%" in err and "wrote" in err  # progress bar and summary on stderr
    info = sf.info(str(out))
    assert info.samplerate == 16000 and info.subtype == "PCM_16" and info.channels == 1
    assert info.frames == int(round((3.0 + render.TAIL) * 16000))  # 6 beats at 120 BPM + the tail
    a, _ = sf.read(str(out))
    assert np.abs(a).max() > 0.01
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert leftovers(tmp_path) == []
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)  # normal permissions, not the temp file's


def test_same_seed_same_bytes_any_jobs(tmp_path, small_preset_path, capsys):
    # two phrases with a long rest: two chunks, rendered in one or two processes
    notes = [(0, 4, 60, "la"), (4, 4, 62, "la"), (12, 4, 64, "la"), (16, 4, 65, "la")]
    mid = write_midi(tmp_path / "two.mid", [notes], tempo=500000)
    song = read_song(mid)
    voice = render.load_voice(small_preset_path)
    feats, singer = render.song_features(song, voice)
    assert len(render.split_chunks(render.silent_frames(feats, singer), singer.frame_seconds)) == 2
    outs = {}
    for name, extra in [("a", ["--jobs", "1"]), ("b", ["--jobs", "2"]), ("c", ["--seed", "1"])]:
        rc, err = run(capsys, mid, "-o", tmp_path / f"{name}.wav", "--preset", small_preset_path, "-q", *extra)
        assert rc == 0, err
        outs[name] = (tmp_path / f"{name}.wav").read_bytes()
    assert outs["a"] == outs["b"]
    assert outs["a"] != outs["c"]


def test_rate_flac_and_formats(tmp_path, song_mid, small_preset_path, capsys):
    rc, err = run(
        capsys,
        song_mid,
        "-o",
        tmp_path / "hi.flac",
        "--preset",
        small_preset_path,
        "--rate",
        48000,
        "-q",
        "--format",
        "24",
    )
    assert rc == 0, err
    info = sf.info(str(tmp_path / "hi.flac"))
    assert info.format == "FLAC" and info.subtype == "PCM_24" and info.samplerate == 48000
    assert info.frames == int(round((3.0 + render.TAIL) * 48000))
    rc, err = run(capsys, song_mid, "-o", tmp_path / "f.wav", "--preset", small_preset_path, "--format", "float", "-q")
    assert rc == 0 and sf.info(str(tmp_path / "f.wav")).subtype == "FLOAT"
    rc, err = run(capsys, song_mid, "-o", tmp_path / "f.flac", "--preset", small_preset_path, "--format", "float", "-q")
    assert rc == 1 and "FLAC holds 16 or 24-bit" in err and not (tmp_path / "f.flac").exists()
    rc, err = run(capsys, song_mid, "-o", tmp_path / "x.mp3", "--preset", small_preset_path, "-q")
    assert rc == 1 and "x.mp3: unsupported output type '.mp3'" in err


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "no such file"),
        (b"", "empty file"),
        ("trunc", "truncated MIDI file"),
        (b"RIFFxxxxWAVEfmt ", "not a MIDI file"),
    ],
)
def test_bad_input_one_clear_line(tmp_path, small_preset_path, capsys, content, message):
    src = tmp_path / "bad.mid"
    if content == "trunc":
        good = write_midi(tmp_path / "g.mid", [[(0, 1, 60, "la"), (1, 1, 62, "la")]]).read_bytes()
        src.write_bytes(good[:-7])
    elif content is not None:
        src.write_bytes(content)
    out = tmp_path / "o.wav"
    rc, err = run(capsys, src, "-o", out, "--preset", small_preset_path)
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(src) in lines[0] and message in lines[0], err
    assert not out.exists() and leftovers(tmp_path) == []


def test_missing_default_preset(tmp_path, song_mid, capsys, monkeypatch):
    if any(name == "default" for name, _, _ in list_presets()):
        pytest.skip("a preset named default is installed")
    rc, err = run(capsys, song_mid, "-o", tmp_path / "o.wav")
    assert rc == 1 and "no preset named 'default'" in err and "--preset" in err
    assert not (tmp_path / "o.wav").exists()


def test_atomic_on_failure_and_interrupt(tmp_path, song_mid, small_preset_path, capsys, monkeypatch):
    out = tmp_path / "keep.wav"
    out.write_bytes(b"old contents")
    real = render._write_sf

    def half_then_fail(tmp, *a):
        real(tmp, *a)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(render, "_write_sf", half_then_fail)
    with pytest.raises(OSError):
        render.render_file(song_mid, out, preset=small_preset_path, progress=False)
    assert out.read_bytes() == b"old contents" and leftovers(tmp_path) == []
    monkeypatch.setattr(render, "_write_sf", real)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(render, "synthesize", interrupted)
    fresh = tmp_path / "new.wav"
    rc, err = run(capsys, song_mid, "-o", fresh, "--preset", small_preset_path)
    assert rc == 130 and "interrupted" in err and not fresh.exists() and leftovers(tmp_path) == []


def test_lyrics_option_and_transpose(tmp_path, small_preset_path, capsys):
    mid = write_midi(tmp_path / "plain.mid", [[(0, 1, 60, None), (1, 1, 62, None), (2, 2, 64, None)]])
    song = read_song(mid)
    assert not song.has_lyrics
    text = tmp_path / "words.txt"
    text.write_text("sun-ny day\n")
    assert render.read_lyrics(str(text)) == "sun-ny day\n"
    rc, err = run(
        capsys, mid, "-o", tmp_path / "x.wav", "--preset", small_preset_path, "--lyrics", tmp_path / "nope.txt"
    )
    assert rc == 1 and "nope.txt: no such lyrics file" in err and not (tmp_path / "x.wav").exists()
    sung = song.with_lyrics(render.read_lyrics(str(text)))
    assert [n.syllable.phones for n in sung.notes] == [("S", "AH"), ("N", "IY"), ("D", "EY")]
    for lyr in (str(text), "sun-ny day"):
        rc, err = run(capsys, mid, "-o", tmp_path / "l.wav", "--preset", small_preset_path, "--lyrics", lyr, "-q")
        assert rc == 0, err
    voice = render.load_voice(small_preset_path)
    f0, _ = render.song_features(song, voice, transpose=0)
    f7, _ = render.song_features(song, voice, transpose=7)
    mid_note = int(0.5 * 200)
    assert f7[mid_note, 0] - f0[mid_note, 0] == pytest.approx(
        7.0, abs=1e-4
    )  # float32 frames (an ulp near note 64 is 8e-6)
    rc, err = run(capsys, mid, "-o", tmp_path / "t.wav", "--preset", small_preset_path, "--transpose", 7, "-q")
    assert rc == 0, err


def test_out_of_range_warning(tmp_path, ranged_preset_path, capsys):
    mid = write_midi(tmp_path / "low.mid", [[(0, 1, 30, None), (1, 1, 33, None)]])
    rc, err = run(capsys, mid, "-o", tmp_path / "low.wav", "--preset", ranged_preset_path, "-q")
    assert rc == 0 and "warning: 2 of 2 notes lie outside the voice's trained range C3..F#4: 2 below (F#1..A1)" in err
    assert "--transpose +24 fits 2 of 2" in err
    rc, err = run(capsys, mid, "-o", tmp_path / "low.wav", "--preset", ranged_preset_path, "-q", "--transpose", 24)
    assert rc == 0 and "warning" not in err


def test_musicxml_render_follows_the_notes(tmp_path, small_preset_path, capsys):
    xml = write_musicxml(tmp_path / "amen.musicxml", bpm=120)
    out = tmp_path / "amen.wav"
    rc, err = run(capsys, xml, "-o", out, "--preset", small_preset_path, "-q")
    assert rc == 0, err
    song = read_song(xml)
    assert sf.info(str(out)).frames == int(round((song.duration + render.TAIL) * 16000))
    feats, _ = render.song_features(song, render.load_voice(small_preset_path))
    for n in song.notes:  # voiced regions follow the notes, f0 within a few cents (vibrato is symmetric)
        seg = feats[int((n.start + 0.1) * 200) : int((n.end - 0.2) * 200)]  # before coda + onset
        assert np.all(seg[:, 1] > 0.9)
        assert abs(np.median(100 * (seg[:, 0] - n.pitch))) < 10
    rest = feats[int(1.65 * 200) : int(1.9 * 200)]  # the quarter rest after "men"
    assert np.all(rest[:, 1] < 0.01)


def test_default_preset_sings_the_notes(tmp_path, capsys):
    """With the trained voice: the f0 tracked in the audio follows the score."""
    if not any(name == "default" for name, _, _ in list_presets()):
        pytest.skip(
            "no trained preset named default installed (presets/default.safetensors); the audio "
            "of a random preset is not a voice, so its pitch is not checked"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyworld = pytest.importorskip("pyworld", reason="pyworld tracks the rendered f0 (pip install pyworld)")
    notes = [(0, 2, 57, "ah"), (2, 2, 60, "la"), (4, 2, 64, "la"), (6, 2, 62, "oh")]
    mid = write_midi(tmp_path / "sing.mid", [notes], tempo=500000)
    out = tmp_path / "sing.wav"
    rc, err = run(capsys, mid, "-o", out, "-q")
    assert rc == 0, err
    a, sr = sf.read(str(out))
    f0, t = pyworld.dio(a, sr, f0_floor=60.0, f0_ceil=1100.0, frame_period=5.0)
    f0 = pyworld.stonemask(a, f0, t, sr)
    errs = []
    for start, beats, pitch, _ in notes:
        s0, s1 = start * 0.5 + 0.15, (start + beats) * 0.5 - 0.1
        sel = (t >= s0) & (t < s1) & (f0 > 0)
        assert sel.sum() > 20, f"note {pitch} at {start * 0.5} s: only {sel.sum()} voiced frames in the audio"
        errs.extend(1200 * np.log2(f0[sel] / (440 * 2 ** ((pitch - 69) / 12))))
    assert abs(np.median(errs)) < 50, f"median f0 error {np.median(errs):.0f} cents"


def test_ctrl_c_leaves_nothing(tmp_path, small_preset_path):
    """A real SIGINT to `vocoder render` while the engine runs: exit 130, no output, no temp file."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    notes = [(4 * i, 3, 60 + (i % 5), "la") for i in range(150)]  # 300 s of song
    mid = write_midi(tmp_path / "long.mid", [notes], tempo=500000)
    out = tmp_path / "long.wav"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vocoder",
            "render",
            str(mid),
            "-o",
            str(out),
            "--preset",
            small_preset_path,
            "--jobs",
            "2",
        ],
        stderr=subprocess.PIPE,
        env=env,
    )
    err = bytearray()

    def read():
        for chunk in iter(lambda: proc.stderr.read1(256), b""):
            err.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while b"%" not in err and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the progress bar shows: the engine is running
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    reader.join(timeout=5)
    text = err.decode(errors="replace")
    assert proc.returncode == 130, text
    assert "interrupted" in text and "Traceback" not in text
    assert not out.exists() and leftovers(tmp_path) == []


def test_split_chunks():
    fs = 0.005
    sil = np.zeros(4000, bool)  # 20 s: rests of 0.5 s every 2 s
    for k in range(1, 10):
        sil[k * 400 - 50 : k * 400 + 50] = True
    chunks = render.split_chunks(sil, fs)
    assert chunks[0][0] == 0 and chunks[-1][1] == 4000
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    assert all(sil[a] for a, _ in chunks[1:])  # every cut lies in a rest
    assert all((b - a) * fs >= render.MIN_CHUNK for a, b in chunks)
    assert 4 <= len(chunks) <= 6
    assert render.split_chunks(np.zeros(500, bool), fs) == [(0, 500)]
    short = np.zeros(100, bool)
    short[40:80] = True
    assert render.split_chunks(short, fs) == [(0, 100)]


def test_preset_that_cannot_sing_and_disk_errors(tmp_path, song_mid, capsys, monkeypatch):
    bad = save_preset(
        random_preset(hidden=16, density=0.5, n_features=1, hop=80, cond_hidden=8, excitation=0),
        tmp_path / "nof0.safetensors",
    )
    rc, err = run(capsys, song_mid, "-o", tmp_path / "o.wav", "--preset", bad)
    assert rc == 1 and "nof0.safetensors: this preset cannot sing" in err and "f0, voicing" in err
    assert len(err.strip().splitlines()) == 1

    def full(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(render, "_write_sf", full)
    good = save_preset(
        random_preset(hidden=16, density=0.5, n_features=26, hop=80, cond_hidden=8), tmp_path / "g.safetensors"
    )
    rc, err = run(capsys, song_mid, "-o", tmp_path / "o.wav", "--preset", good, "-q")
    assert rc == 1 and err.strip() == f"vocoder render: {tmp_path / 'o.wav'}: No space left on device"
    assert not (tmp_path / "o.wav").exists() and leftovers(tmp_path) == []


def test_track_and_channel_options(tmp_path, small_preset_path, capsys):
    mid = write_midi(tmp_path / "two.mid", [[(0, 2, 72, None, 1)], [(0, 1, 60, "one", 0), (1, 1, 62, "two", 0)]])
    for k, (extra, ok) in enumerate(
        (
            (["--track", 1], True),
            (["--channel", 2], True),
            (["--track", 5], False),
            (["--track", 0, "--channel", 1], False),
        )
    ):
        out = tmp_path / f"o{k}.wav"
        rc, err = run(capsys, mid, "-o", out, "--preset", small_preset_path, "-q", *extra)
        assert (rc == 0) == ok, err
        if not ok:
            assert len(err.strip().splitlines()) == 1 and str(mid) in err and not out.exists()
    assert (
        "no track 5; the file has tracks 0..1"
        in run(capsys, mid, "-o", tmp_path / "o.wav", "--preset", small_preset_path, "--track", 5)[1]
    )
