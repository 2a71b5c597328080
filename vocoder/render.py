"""Render a song (MIDI, karaoke or MusicXML, with its lyrics) to a WAV or FLAC file.

::

    from vocoder import render
    info = render.render_file("song.mid", "song.wav", preset="default", seed=0)
    audio, sr, feats = render.synthesize(song, preset, seed=0)   # in memory

Steps: :func:`vocoder.events.read_song` -> :class:`vocoder.singer.Singer` (all frames of
the song) -> the frames are cut at rests into chunks (:func:`split_chunks`) that the
engine renders in parallel processes, each from a fresh state with the seed
``(seed, chunk index)`` -> concatenated, resampled (``scipy.signal.resample_poly``) if
asked, written through a temporary file in the output's directory that is renamed only
when everything succeeded. The chunks depend only on the song, so the output bytes
depend only on the input, preset, seed and options, never on the number of processes.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from math import gcd
from pathlib import Path

import numpy as np

from .events import Song, SongError, read_song
from .singer import Singer

#: Seconds of audio after the last note ends (the release and its decay).
TAIL = 0.5
#: A rest this long (seconds) may separate two chunks.
MIN_REST = 0.2
#: Chunks shorter than this (seconds) are merged with a neighbour.
MIN_CHUNK = 3.0
#: Longest song rendered (seconds).
MAX_DURATION = 2 * 3600.0
SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT"}
FORMATS = {".wav": "WAV", ".flac": "FLAC"}


class RenderError(ValueError):
    """A render that cannot be done (bad output path, options); names the file."""


# --------------------------------------------------------------------------- features


def song_features(song: Song, preset, seed: int = 0, transpose: int = 0, singer_options=None):
    """The singer's frames for the whole song: ``(features [frames, nf], singer)``."""
    singer = Singer(preset, seed=seed, transpose=transpose, options=singer_options)
    dur = song.duration + TAIL
    if dur > MAX_DURATION:
        raise SongError(f"{song.source}: the song lasts {dur / 60:.0f} minutes, more than the "
                        f"{MAX_DURATION / 60:.0f}-minute limit")
    return singer.render_song(song.events(), dur), singer


def silent_frames(features: np.ndarray, singer: Singer) -> np.ndarray:
    """Frames the singer made silent: unvoiced, every band at most 1 above its silence."""
    sil = singer.table["sil"][0]
    return (features[:, 1] < 0.01) & np.all(features[:, 2:] <= sil[None, :] + 1.0, axis=1)


def split_chunks(silent: np.ndarray, frame_seconds: float, min_rest: float = MIN_REST,
                 min_chunk: float = MIN_CHUNK) -> list:
    """``[(start, end), ...]`` frame ranges covering every frame, cut in the middle of
    rests of at least ``min_rest`` seconds, each at least ``min_chunk`` seconds long
    (except a song shorter than that)."""
    n = len(silent)
    cuts = []
    i = 0
    need = max(1, int(round(min_rest / frame_seconds)))
    while i < n:
        if silent[i]:
            j = i
            while j < n and silent[j]:
                j += 1
            if j - i >= need and i > 0 and j < n:
                cuts.append((i + j) // 2)
            i = j
        else:
            i += 1
    bounds = [0] + cuts + [n]
    chunks = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    min_frames = int(round(min_chunk / frame_seconds))
    merged = []
    for a, b in chunks:
        if merged and merged[-1][1] - merged[-1][0] < min_frames:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    if len(merged) > 1 and merged[-1][1] - merged[-1][0] < min_frames:
        last = merged.pop()
        merged[-1] = (merged[-1][0], last[1])
    return merged or [(0, n)]


def chunk_seed(seed: int, index: int) -> int:
    """The engine seed of chunk ``index`` (independent of how chunks are scheduled)."""
    return int(np.random.SeedSequence([int(seed) & (2**64 - 1), index]).generate_state(1, np.uint64)[0])


# --------------------------------------------------------------------------- engine

_WORKER = {}   # set before forking: preset, progress counter


def _vocode(preset, features: np.ndarray, seed: int, counter=None, block: int = 8192, on_block=None) -> np.ndarray:
    """``Vocoder.vocode`` in blocks, adding rendered samples to ``counter`` as it goes."""
    from .engine import Vocoder

    v = Vocoder(preset, seed=seed, frame_capacity=max(64, min(4096, features.shape[0] + 8)))
    f = np.ascontiguousarray(features, np.float32)
    lat = v.latency_samples
    out = np.empty(f.shape[0] * v.hop + lat, np.float32)
    pos = fed = 0

    def emit(k):
        nonlocal pos
        while k > 0:
            m = min(k, block)
            v.render(out[pos:pos + m])
            pos += m
            k -= m
            if counter is not None:
                with counter.get_lock():
                    counter.value += m
            if on_block is not None:
                on_block()

    while fed < f.shape[0]:
        fed += v.feed(f[fed:])
        if fed == f.shape[0]:
            break
        emit(min(v.ready_samples, out.shape[0] - pos))
    v.finish()
    emit(out.shape[0] - pos)
    return out[lat:]


def _ignore_sigint():
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


def _worker(job):
    i, feats, seed = job
    return i, _vocode(_WORKER["preset"], feats, seed, _WORKER.get("counter"), on_block=_WORKER.get("on_block"))


def vocode_chunks(preset, features: np.ndarray, chunks: list, seed: int, jobs: int | None = None,
                  progress=None) -> np.ndarray:
    """Audio of all chunks, concatenated; ``jobs`` processes (default: CPU count).
    ``progress(samples_done, samples_total)`` is called now and then."""
    import multiprocessing as mp

    hop = preset.hop
    total = features.shape[0] * hop
    if not jobs:
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = max(1, min(int(jobs), len(chunks)))
    work = [(i, features[a:b], chunk_seed(seed, i)) for i, (a, b) in enumerate(chunks)]
    if jobs > 1:  # longest first, so no process is left with a long chunk at the end
        work.sort(key=lambda w: -w[1].shape[0])
    counter = mp.Value("q", 0)
    parts = [None] * len(chunks)
    if jobs == 1 or "fork" not in mp.get_all_start_methods():
        _WORKER.update(preset=preset, counter=counter,
                       on_block=(lambda: progress(counter.value, total)) if progress else None)
        try:
            for job in work:
                i, audio = _worker(job)
                parts[i] = audio
        finally:
            _WORKER.clear()
    else:
        ctx = mp.get_context("fork")
        _WORKER.update(preset=preset, counter=counter)
        pool = ctx.Pool(jobs, initializer=_ignore_sigint)
        try:
            res = pool.map_async(_worker, work, chunksize=1)
            while not res.ready():
                res.wait(0.25)
                if progress:
                    progress(counter.value, total)
            for i, audio in res.get():
                parts[i] = audio
            pool.close()
        finally:
            pool.terminate()
            pool.join()
            _WORKER.clear()
    if progress:
        progress(total, total)
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def synthesize(song: Song, preset, seed: int = 0, transpose: int = 0, jobs: int | None = None, progress=None,
               singer_options=None):
    """``(audio float32 at the preset's rate, features, singer, chunks)`` for a song."""
    feats, singer = song_features(song, preset, seed=seed, transpose=transpose, singer_options=singer_options)
    chunks = split_chunks(silent_frames(feats, singer), singer.frame_seconds)
    audio = vocode_chunks(preset, feats, chunks, seed, jobs=jobs, progress=progress)
    return audio, feats, singer, chunks


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate:
        return audio
    from scipy.signal import resample_poly

    g = gcd(int(from_rate), int(to_rate))
    return resample_poly(audio.astype(np.float64), to_rate // g, from_rate // g).astype(np.float32)


# --------------------------------------------------------------------------- output


def output_format(path, subtype=None) -> tuple:
    """``(soundfile format, subtype)`` for an output path and ``subtype`` (16, 24, float)."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise RenderError(f"{path}: unsupported output type {path.suffix or '(no extension)'!r}; "
                          f"use {' or '.join(FORMATS)}")
    key = str(subtype or "16").lower()
    if key not in SUBTYPES:
        raise RenderError(f"{path}: unknown sample format {subtype!r}; use 16, 24 or float")
    st = SUBTYPES[key]
    if fmt == "FLAC" and st == "FLOAT":
        raise RenderError(f"{path}: FLAC holds 16 or 24-bit samples, not float; use a .wav file for float")
    return fmt, st


def _check_output_dir(path: Path) -> None:
    d = path.parent if str(path.parent) else Path(".")
    if not d.is_dir():
        raise RenderError(f"{path}: directory {d} does not exist")
    if path.is_dir():
        raise RenderError(f"{path}: is a directory")
    if not os.access(d, os.W_OK):
        raise RenderError(f"{path}: directory {d} is not writable")


def _temp_beside(path: Path) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix + ".part", dir=path.parent or ".")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # what open() would have made, not mkstemp's 0600
    return tmp


def write_audio(path, audio: np.ndarray, sample_rate: int, subtype=None) -> Path:
    """Write ``audio`` atomically (a temporary file renamed over ``path``)."""
    path = Path(path)
    fmt, st = output_format(path, subtype)
    _check_output_dir(path)
    tmp = _temp_beside(path)
    try:
        _write_sf(tmp, audio, sample_rate, fmt, st)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    return path


def _write_sf(tmp, audio, sample_rate, fmt, st):
    import soundfile as sf

    a = np.asarray(audio, np.float32)
    a = np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=-1.0)
    if st != "FLOAT":
        a = np.clip(a, -1.0, 32767.0 / 32768.0)
    with sf.SoundFile(tmp, "w", samplerate=int(sample_rate), channels=1, format=fmt, subtype=st) as f:
        f.write(a)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())


def _unlink(p) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


# --------------------------------------------------------------------------- plot


def plot_render(path, audio, sample_rate, song: Song, features, singer: Singer, transpose: int = 0,
                title: str = "") -> None:
    """A PNG: spectrogram (0 .. 2 kHz) with the score's notes, the singer's f0 and the f0
    tracked in the audio (pyworld, if installed) on top."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RenderError(f"{path}: --plot needs matplotlib (pip install 'vocoder[plot]')") from None
    from scipy.signal import spectrogram

    a = np.asarray(audio, np.float64)
    nper = int(2 ** round(math.log2(max(64, sample_rate * 0.04))))
    fr, tt, S = spectrogram(a if len(a) >= nper else np.pad(a, (0, nper - len(a))), fs=sample_rate,
                            nperseg=nper, noverlap=nper * 3 // 4)
    top = min(2000.0, sample_rate / 2)
    keep = fr <= top
    fig, ax = plt.subplots(figsize=(12, 4.5), dpi=100)
    ax.pcolormesh(tt, fr[keep], 10 * np.log10(S[keep] + 1e-12), shading="auto", cmap="magma",
                  vmin=10 * np.log10(S.max() + 1e-12) - 80)

    def hz(m):
        return 440.0 * 2.0 ** ((np.asarray(m, np.float64) - 69.0) / 12.0)

    for k, n in enumerate(song.notes):
        ax.plot([n.start, n.end], [hz(n.pitch + transpose)] * 2, color="white", lw=3, alpha=0.7,
                solid_capstyle="butt", label="score" if k == 0 else None)
    fs = singer.frame_seconds
    t = (np.arange(features.shape[0]) + 0.5) * fs
    f0 = np.where(features[:, 1] > 0.5, hz(features[:, 0]), np.nan)
    ax.plot(t, f0, color="cyan", lw=1.2, label="singer f0")
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pyworld

        x = np.ascontiguousarray(a)
        f0a, ta = pyworld.dio(x, sample_rate, f0_floor=60.0, f0_ceil=1100.0, frame_period=fs * 1000)
        f0a = pyworld.stonemask(x, f0a, ta, sample_rate)
        ax.plot(ta, np.where(f0a > 0, f0a, np.nan), ".", color="lime", ms=2, label="rendered f0 (pyworld)")
    except Exception:  # noqa: BLE001 - optional
        pass
    ax.set_ylim(0, top)
    ax.set_xlim(0, len(a) / sample_rate)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("Hz")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


# --------------------------------------------------------------------------- files


def load_voice(preset="default"):
    """A preset by name or path; ``"default"`` missing gets a message saying what to do."""
    from .presets import Preset, PresetError, load_preset

    if isinstance(preset, Preset):
        return preset
    try:
        return load_preset(preset)
    except PresetError as e:
        if preset == "default" and "no preset of that name" in str(e):
            raise PresetError("no preset named 'default' is installed (the trained voice ships as "
                              "presets/default.safetensors); pass --preset NAME or --preset PATH") from None
        raise


def read_lyrics(arg) -> str:
    """``--lyrics``: the text of a file when ``arg`` names one, else ``arg`` itself."""
    if arg is None:
        return None
    p = Path(arg)
    try:
        if len(arg) < 4096 and p.is_file():
            try:
                return p.read_text(encoding="utf-8-sig")
            except UnicodeDecodeError:
                raise SongError(f"{p}: the lyrics file is not UTF-8 text") from None
    except OSError:
        pass
    if p.suffix.lower() in (".txt", ".lrc", ".text") and " " not in arg:
        raise SongError(f"{p}: no such lyrics file")
    return arg


class _Bar:
    def __init__(self, label: str, rate: int, stream=None, enabled=True):
        self.label, self.rate, self.stream, self.enabled = label, rate, stream or sys.stderr, enabled
        self.t0 = time.monotonic()
        self.last = -1.0

    def __call__(self, done, total):
        if not self.enabled or self.last == math.inf:
            return
        now = time.monotonic()
        if done < total and now - self.last < 0.2:
            return
        self.last = now
        frac = done / total if total else 1.0
        w = 30
        el = now - self.t0
        speed = (done / self.rate) / el if el > 0 else 0.0
        self.stream.write(f"\r{self.label} [{'#' * int(frac * w):<{w}}] {frac * 100:3.0f}%  "
                          f"{done / self.rate:6.1f}/{total / self.rate:.1f} s  {speed:5.1f}x real time")
        if done >= total:
            self.stream.write("\n")
            self.last = math.inf
        self.stream.flush()


def render_file(input_path, output_path, preset="default", seed: int = 0, rate: int | None = None,
                track: int | None = None, channel: int | None = None, lyrics: str | None = None,
                transpose: int = 0, plot=None, subtype=None, jobs: int | None = None, progress: bool = True,
                warn=None) -> dict:
    """Render a song file to ``output_path`` (``.wav`` or ``.flac``); see ``docs/render.md``.

    Raises :class:`SongError`, :class:`vocoder.PresetError` or :class:`RenderError` with a
    one-line message naming the file; on any error (and on Ctrl-C) no output file is left.
    ``warn(message)`` receives warnings (default: stderr).
    """
    warn = warn or (lambda m: print(f"vocoder render: warning: {m}", file=sys.stderr))
    out = Path(output_path)
    output_format(out, subtype)
    _check_output_dir(out)
    if plot is not None:
        plot = Path(plot)
        if plot.suffix.lower() != ".png":
            raise RenderError(f"{plot}: --plot writes a PNG; name the file *.png")
        _check_output_dir(plot)
    if rate is not None and not 8000 <= int(rate) <= 192000:
        raise RenderError(f"{out}: --rate must be 8000..192000 Hz, got {rate}")
    if not -48 <= int(transpose) <= 48:
        raise RenderError(f"{out}: --transpose must be -48..48 semitones, got {transpose}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise RenderError(f"{out}: --seed must be 0..2**64-1, got {seed}")
    song = read_song(input_path, track=track, channel=channel)
    text = read_lyrics(lyrics)
    if text is not None:
        song = song.with_lyrics(text)
        if not song.has_lyrics:
            warn("--lyrics holds no words; singing the default vowel")
    voice = load_voice(preset)
    t0 = time.monotonic()
    bar = _Bar(f"{Path(input_path).name}", voice.sample_rate, enabled=progress)
    try:
        sing = Singer(voice, seed=seed, transpose=transpose)
    except ValueError as e:
        raise RenderError(f"{voice.path or preset}: this preset cannot sing: {e}") from None
    w = sing.pitch_warning([n.pitch for n in song.notes])
    if w:
        warn(w)
    audio, feats, singer, chunks = synthesize(song, voice, seed=seed, transpose=transpose, jobs=jobs,
                                              progress=bar)
    sr = voice.sample_rate
    if rate is not None:
        audio = resample(audio, sr, int(rate))
        sr = int(rate)
    fmt, st = output_format(out, subtype)
    tmp = _temp_beside(out)
    tmp_plot = None
    try:
        _write_sf(tmp, audio, sr, fmt, st)
        if plot is not None:
            tmp_plot = _temp_beside(plot)
            plot_render(tmp_plot, audio, sr, song, feats, singer, transpose,
                        title=f"{Path(input_path).name}: {voice.meta.get('name', '')} seed {seed}")
        os.replace(tmp, out)
        if tmp_plot is not None:
            os.replace(tmp_plot, plot)
    except BaseException:
        _unlink(tmp)
        if tmp_plot is not None:
            _unlink(tmp_plot)
        raise
    elapsed = time.monotonic() - t0
    seconds = len(audio) / sr
    return {"output": str(out), "seconds": seconds, "sample_rate": sr, "notes": len(song.notes),
            "lyrics": song.has_lyrics, "chunks": len(chunks), "elapsed": elapsed,
            "speed": seconds / elapsed if elapsed > 0 else float("inf"), "frames": int(feats.shape[0])}
