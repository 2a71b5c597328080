"""Many songs, many machines: ``vocoder render A.mid B.mid songs/ @list.txt --out DIR``.

::

    from vocoder.hosts import batch
    summary = batch.render_batch(["songs/", "@more.txt"], "out/", preset="default", seed=0)
    summary = batch.render_batch(["a.mid"], "out/", scheduler="tcp://10.0.0.5:8786")

Each song is one `Dask <https://distributed.dask.org>`_ task. Without a scheduler address
the batch runs on an embedded :class:`distributed.LocalCluster` (one single-threaded worker
process per core, on 127.0.0.1, started and stopped here); with ``scheduler`` it runs on an
existing cluster (``dask scheduler`` + ``dask worker``, see docs/render.md).

What travels: the client reads each song file and the preset and sends their bytes with
the task; the worker renders in a private temporary folder with
:func:`vocoder.render_file` (``jobs=1``: one process per song, parallel across songs, no
nested pools) and sends the encoded WAV/FLAC bytes back; only the client writes into
``--out``. So workers need no shared filesystem, and a worker that dies mid-song leaves
nothing in the output folder (its song folder, ``$TMPDIR/vocoder-batch-UID/work-PID-*``,
is removed by the next song rendered on that machine).

The rules:

* **Seeds.** Every song is rendered with the ``seed`` given (default 0), exactly as
  ``vocoder render SONG -o OUT --seed S`` with the same options would: the bytes of a
  batch output equal those of that single command (render output does not depend on the
  number of processes).
* **Resuming.** Outputs are written through a temporary file (``.NAME.*.part`` beside it)
  renamed over the output when complete, so an output that exists is finished; a second
  run skips it. A leftover temporary file (an interrupted run) is ignored.
* **Failures.** A song that cannot be sung (a bad file, a transpose out of range: the
  errors a single render reports), or whose output cannot be written here, is reported
  with its reason and not retried; a failure on the worker's side (a worker lost: Dask's
  ``KilledWorker``, an error on that machine) is retried up to ``retries`` more times. The rest
  of the batch goes on either way; the summary lists every song that finally failed.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

#: Files a folder given as input contributes (the song types :func:`vocoder.read_song` reads).
SONG_SUFFIXES = (".mid", ".midi", ".kar", ".musicxml", ".xml", ".mxl")
OUTPUT_TYPES = (".wav", ".flac")


class BatchError(ValueError):
    """A batch that cannot start (no such input, two songs for one output, ...); names the file."""


# --------------------------------------------------------------------------- inputs


def expand_inputs(items) -> list:
    """The song files named by ``items``: files, folders (their song files, sorted by
    name, not recursive) and ``@LIST`` files (one path per line, relative to the list's
    folder; blank lines and lines starting with ``#`` skipped). In order, each file once."""
    out, seen = [], set()

    def add(p: Path, where: str):
        if p.is_dir():
            songs = sorted(
                f
                for f in p.iterdir()
                if f.is_file() and f.suffix.lower() in SONG_SUFFIXES and not f.name.startswith(".")
            )
            if not songs:
                raise BatchError(f"{where}: no song files ({', '.join('*' + s for s in SONG_SUFFIXES)}) in this folder")
            for f in songs:
                add(f, str(f))
            return
        if not p.is_file():
            raise BatchError(f"{where}: no such file or folder")
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            out.append(p)

    for item in items:
        s = str(item)
        if s.startswith("@"):
            lst = Path(s[1:])
            if not lst.exists() or lst.is_dir():  # a pipe will do: @<(find songs -name '*.mid')
                raise BatchError(f"{lst}: no such list file")
            try:
                lines = lst.read_text(encoding="utf-8-sig").splitlines()
            except UnicodeDecodeError:
                raise BatchError(f"{lst}: the list file is not UTF-8 text") from None
            for n, line in enumerate(lines, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                p = Path(line)
                if not p.is_absolute():
                    p = lst.parent / p
                add(p, f"{lst}:{n}: {p}")
        else:
            add(Path(s), s)
    if not out:
        raise BatchError("no songs given")
    return out


def plan_outputs(inputs, out_dir, ext: str = ".wav") -> list:
    """``[(input, output), ...]``: ``out_dir / (input's stem + ext)``; two inputs with one
    output name are refused, naming both."""
    ext = ext if ext.startswith(".") else "." + ext
    if ext.lower() not in OUTPUT_TYPES:
        raise BatchError(f"{ext}: unsupported output type; use {' or '.join(OUTPUT_TYPES)}")
    out_dir = Path(out_dir)
    by_name: dict[str, object] = {}
    plan: list = []
    for p in inputs:
        o = out_dir / (Path(p).stem + ext)
        if o.name in by_name:
            raise BatchError(
                f"{by_name[o.name]} and {p} would both be written to {o}; rename one, or render "
                "them into different --out folders"
            )
        by_name[o.name] = p
        plan.append((Path(p), o))
    return plan


# --------------------------------------------------------------------------- the worker's side


def _worker_dir() -> Path:
    """This user's folder for batch work on this machine (presets, per-song folders)."""
    d = Path(tempfile.gettempdir()) / f"vocoder-batch-{os.getuid() if hasattr(os, 'getuid') else 0}"
    d.mkdir(mode=0o700, exist_ok=True)
    return d


def _sweep_dead(base: Path) -> None:
    """Remove the song folders (``work-PID-*``) of worker processes that are gone (killed
    mid-song: they could not clean up)."""
    import shutil

    for f in base.glob("work-*-*"):
        try:
            pid = int(f.name.split("-")[1])
            os.kill(pid, 0)
        except ValueError:
            continue
        except ProcessLookupError:
            shutil.rmtree(f, ignore_errors=True)
        except OSError:  # alive but not ours to signal
            continue


def _preset_file(data: bytes, digest: str) -> str:
    """The preset's bytes as a file on this worker (written once per worker machine)."""
    d = _worker_dir()
    p = d / f"preset-{digest}.safetensors"
    if not (p.is_file() and p.stat().st_size == len(data)):
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, p)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    return str(p)


def render_song(label: str, song: bytes, out_label: str, ext: str, preset: tuple, options: dict) -> dict:
    """One song, on a worker: ``song`` (the file's bytes; ``label`` its path on the client,
    for messages) rendered with ``preset = (label, bytes, sha256)`` and the
    :func:`vocoder.render_file` ``options``; ``jobs=1``. Returns ``{"ok": True, "data":
    encoded output bytes, "info", "notes"}`` or, for a song that cannot be sung,
    ``{"ok": False, "error": message}``. Other errors are raised (the client retries)."""
    import socket

    from vocoder import PresetError, SongError, render_file
    from vocoder.hosts.render import RenderError

    preset_label, preset_data, digest = preset
    preset_path = _preset_file(preset_data, digest)
    notes = []
    _sweep_dead(_worker_dir())
    with tempfile.TemporaryDirectory(prefix=f"work-{os.getpid()}-", dir=_worker_dir()) as d:
        src = Path(d) / Path(label).name
        src.write_bytes(song)
        out = Path(d) / ("out" + ext)

        def fix(m):  # the user's names, not this worker's temporary ones
            return str(m).replace(str(src), label).replace(str(out), out_label).replace(preset_path, preset_label)

        t0, c0 = time.monotonic(), time.process_time()
        try:
            info = render_file(
                src,
                out,
                preset=preset_path,
                jobs=1,
                progress=None,
                warn=lambda m: notes.append("warning: " + fix(m)),
                log=lambda m: notes.append(fix(m)),
                **options,
            )
        except (SongError, PresetError, RenderError) as e:
            return {"ok": False, "error": fix(e)}
        data = out.read_bytes()
    info["output"] = out_label
    info["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    info["wall"] = time.monotonic() - t0
    info["cpu"] = time.process_time() - c0  # this process's CPU time for the song (jobs=1: all of it)
    return {"ok": True, "data": data, "info": info, "notes": notes}


# --------------------------------------------------------------------------- the client's side


def write_atomic(path: Path, data: bytes) -> None:
    """``data`` to ``path`` through ``.NAME.*.part`` beside it, fsynced, renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix + ".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _clock(s: float) -> str:
    s = int(round(max(0.0, s)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def local_workers() -> int:
    """Worker processes of the embedded cluster: the CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _check_options(out_dir: Path, ext: str, options: dict) -> None:
    """The checks a single render makes before its work, once for the whole batch."""
    from vocoder.hosts.render import RenderError, output_format

    probe = out_dir / ("x" + ext)
    output_format(probe, options.get("subtype"))
    rate = options.get("rate")
    if rate is not None and not 8000 <= int(rate) <= 192000:
        raise RenderError(f"--rate must be 8000..192000 Hz, got {rate}")
    seed = int(options.get("seed", 0))
    if not 0 <= seed < 2**64:
        raise RenderError(f"--seed must be 0..2**64-1, got {seed}")
    if options.get("plot") is not None:
        raise RenderError("--plot draws one song; render that song alone to plot it")


def render_batch(
    inputs,
    out_dir,
    preset="default",
    ext: str = ".wav",
    scheduler: str | None = None,
    workers: int | None = None,
    retries: int = 2,
    timeout: float | None = None,
    connect_timeout: float = 30.0,
    stream=None,
    quiet: bool = False,
    on_result=None,
    **options,
) -> dict:
    """Render every song of ``inputs`` (see :func:`expand_inputs`) into ``out_dir`` on
    Dask: ``scheduler`` (``tcp://HOST:8786``) or an embedded local cluster of ``workers``
    processes (default: one per CPU). ``options`` go to :func:`vocoder.render_file`
    (``seed``, ``rate``, ``subtype``, ``transpose``, ``track``, ``channel``, ``part``,
    ``lyrics``). Finished outputs are skipped; failures are retried ``retries`` times
    (songs that cannot be sung: not at all). Progress, notes and the summary go to
    ``stream`` (default stderr; ``quiet``: only warnings and failures).
    ``on_result(input, output, record)`` is called in this thread as each song ends.
    ``timeout``: seconds the whole batch may take; the songs not done by then are
    cancelled and reported as failed.

    Returns ``{"total", "rendered", "skipped", "failed": [(input, reason)], "elapsed",
    "work" (seconds from the first song sent), "songs": {input: record}}``. Raises
    :class:`BatchError` (or the preset's / option's error) before any work when the batch cannot start."""
    from vocoder.hosts.render import load_voice, read_lyrics

    stream = stream or sys.stderr

    def say(m, always=False):
        if always or not quiet:
            stream.write(f"vocoder render: {m}\n")
            stream.flush()

    t_start = time.monotonic()
    retries = max(0, int(retries))
    out_dir = Path(out_dir)
    ext = ext if ext.startswith(".") else "." + ext
    plan = plan_outputs(expand_inputs(inputs), out_dir, ext)
    _check_options(out_dir, ext, options)
    if options.get("lyrics") is not None:
        options["lyrics"] = read_lyrics(options["lyrics"])  # the text travels, not the client's path
    options.pop("plot", None)
    options.pop("jobs", None)
    voice = load_voice(preset)
    if voice.path is None:
        raise BatchError("a batch needs a preset file (a name or path), not a preset built in memory")
    pdata = Path(voice.path).read_bytes()
    preset_arg = (
        str(preset) if isinstance(preset, (str, os.PathLike)) else str(voice.path),
        pdata,
        hashlib.sha256(pdata).hexdigest(),
    )
    if out_dir.exists() and not out_dir.is_dir():
        raise BatchError(f"{out_dir}: --out must be a folder, and this is a file")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BatchError(f"{out_dir}: cannot create the output folder ({e.strerror or e})") from None
    if not os.access(out_dir, os.W_OK):
        raise BatchError(f"{out_dir}: the output folder is not writable")

    songs = {}
    todo = []
    for src, dst in plan:
        if dst.is_file():
            songs[str(src)] = {"status": "skipped", "output": str(dst)}
        else:
            todo.append((src, dst))
    skipped = len(plan) - len(todo)
    failed = []
    rendered = 0
    if not todo:
        say(f"all {len(plan)} outputs in {out_dir} exist; nothing to render")
        return {
            "total": len(plan),
            "rendered": 0,
            "skipped": skipped,
            "failed": [],
            "elapsed": 0.0,
            "work": 0.0,
            "songs": songs,
        }
    todo.sort(key=lambda t: -t[0].stat().st_size)  # longest first (roughly), so no worker is left with a long song
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        where = scheduler
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError) as e:
            raise BatchError(
                f"{scheduler}: cannot reach the Dask scheduler ({e}); start one with `dask scheduler` "
                "and workers with `dask worker tcp://HOST:8786`"
            ) from None
    else:
        n = int(workers) if workers else local_workers()
        if n < 1:
            raise BatchError(f"--workers must be at least 1, got {workers}")
        import logging

        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
            # no dashboard; its HTTP server (health checks) on a free loopback port
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        )
        client = Client(cluster, timeout=connect_timeout)
        where = f"{n} local worker process{'es' if n != 1 else ''}"
    say(f"{len(plan)} songs: {skipped} already done, {len(todo)} to render on {where}")
    t0 = time.monotonic()
    try:
        attempts: dict = {}
        jobs = {}
        serial = iter(range(10**9))

        def submit(src, dst):
            attempts[src] = attempts.get(src, 0) + 1
            try:
                data = src.read_bytes()
            except OSError as e:
                return f"{src}: cannot read the song ({e.strerror or e})"
            fut = client.submit(
                render_song,
                str(src),
                data,
                str(dst),
                ext,
                preset_arg,
                dict(options),
                pure=False,
                key=f"render-{src.name}-{next(serial)}-{os.getpid()}-{int(t0 * 1000)}",
            )
            jobs[fut.key] = (src, dst, fut)
            return fut

        first = []
        for src, dst in todo:
            f = submit(src, dst)
            if isinstance(f, str):
                failed.append((src, f))
                songs[str(src)] = {"status": "failed", "error": f}
                say(f"FAILED {f}", always=True)
            else:
                first.append(f)
        ac = as_completed(first, timeout=timeout)
        finished = len(failed)
        try:
            for fut in ac:  # each future once; a song is resubmitted at most `retries` times
                src, dst, _ = jobs.pop(fut.key)
                try:
                    res = fut.result()
                    err = None if res["ok"] else res["error"]
                    permanent = True
                except Exception as e:  # noqa: BLE001 - a lost worker, an I/O error on it: retried
                    res, err, permanent = None, f"{type(e).__name__}: {e}", False
                fut.release()
                if err is None:
                    try:
                        write_atomic(dst, res["data"])
                    except OSError as e:
                        # here, not on a worker: rendering again would not help (a rerun resumes)
                        err = f"{dst}: cannot write the output ({e.strerror or e})"
                if err is not None and not permanent and attempts[src] <= retries:
                    say(f"{src}: attempt {attempts[src]} failed ({err}); retrying", always=True)
                    f = submit(src, dst)
                    if not isinstance(f, str):
                        ac.add(f)
                        continue
                    err = f
                finished += 1
                el = time.monotonic() - t0
                eta = el / finished * (len(todo) - finished)
                head = f"[{finished}/{len(todo)}] elapsed {_clock(el)}, ETA {_clock(eta)}:"
                if err is not None:
                    failed.append((src, err))
                    songs[str(src)] = {"status": "failed", "error": err, "attempts": attempts[src]}
                    say(
                        f"{head} FAILED {src}: {err}" if not err.startswith(str(src)) else f"{head} FAILED {err}",
                        always=True,
                    )
                else:
                    rendered += 1
                    info = res["info"]
                    songs[str(src)] = {"status": "rendered", "attempts": attempts[src], **info}
                    for m in res["notes"]:
                        say(f"{src}: {m}", always=m.startswith("warning: "))
                    say(
                        f"{head} {src} -> {dst} ({info['seconds']:.1f} s, "
                        f"{info['seconds'] / max(info['wall'], 1e-9):.1f}x "
                        f"real time on {info['worker']})"
                    )
                if on_result is not None:
                    on_result(src, dst, songs[str(src)])
        except TimeoutError:  # as_completed's: the whole batch ran past `timeout`
            left = list(jobs.values())
            jobs.clear()
            for src, _dst, _fut in left:
                err = f"not finished within the batch's time limit ({timeout:g} s)"
                failed.append((src, err))
                songs[str(src)] = {"status": "failed", "error": err, "attempts": attempts[src]}
            try:  # closing the client releases them anyway
                client.cancel([fut for _, _, fut in left])
            except Exception:  # noqa: BLE001 - a scheduler slow to answer must not hide the report
                pass
    finally:  # the outputs are written by now: a slow shutdown must not turn into an error
        for close in (client.close, cluster.close if cluster is not None else None):
            try:
                if close is not None:
                    close()
            except Exception as e:  # noqa: BLE001
                say(f"note: closing the Dask {'client' if close == client.close else 'cluster'} failed ({e})")
    elapsed = time.monotonic() - t_start
    work = time.monotonic() - t0
    rate = f", {rendered / work * 60:.1f} songs/min" if rendered and work > 0 else ""
    say(
        f"{rendered} rendered, {skipped} skipped (already done), {len(failed)} failed, in {_clock(elapsed)}{rate}",
        always=bool(failed),
    )
    for src, reason in failed:
        say(f"failed: {src}: {reason}" if not reason.startswith(str(src)) else f"failed: {reason}", always=True)
    return {
        "total": len(plan),
        "rendered": rendered,
        "skipped": skipped,
        "failed": failed,
        "elapsed": elapsed,
        "work": work,
        "songs": songs,
    }


# --------------------------------------------------------------------------- benchmark

BENCH_LYRICS = "row row row your boat so gently down the stream merrily merrily life is but a dream".split()


def write_bench_song(path, seconds: float, k: int = 0) -> Path:
    """A MIDI song of about ``seconds`` (120 BPM quarter notes with lyrics, a half-note rest
    every 8 notes), varied by ``k``."""
    import mido

    tpb = 480
    m = mido.MidiFile(ticks_per_beat=tpb)
    tr = mido.MidiTrack()
    m.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    wait, t, i = 0, 0.0, 0
    while t + 0.5 <= seconds:
        note = 52 + (k * 5 + i * 7) % 12  # E3..D#4: inside the shipped voice's range
        tr.append(mido.MetaMessage("lyrics", text=BENCH_LYRICS[i % len(BENCH_LYRICS)] + " ", time=wait))
        tr.append(mido.Message("note_on", note=note, velocity=90, time=0))
        tr.append(mido.Message("note_off", note=note, velocity=0, time=tpb))
        wait, t, i = 0, t + 0.5, i + 1
        if i % 8 == 0:
            wait, t = 2 * tpb, t + 1.0
    m.save(str(path))
    return Path(path)


def bench_batch(workers=(1, 2), songs: int = 8, seconds: float = 30.0, preset="default", stream=None) -> list:
    """Songs per minute of a batch on the embedded local cluster with each number of
    ``workers``: ``[{"workers", "songs", "audio_s", "wall_s", "work_s", "songs_per_min", ...}]``.
    ``wall_s`` includes starting and stopping the cluster; ``work_s`` (and songs/min) is
    from the first song sent to the last written."""
    import soundfile as sf

    records = []
    with tempfile.TemporaryDirectory(prefix="vocoder-bench-batch-") as d:
        src = Path(d) / "songs"
        src.mkdir()
        for k in range(songs):
            write_bench_song(src / f"bench{k:02d}.mid", seconds, k)
        for n in workers:
            out = Path(d) / f"out{n}"
            t0 = time.monotonic()
            s = render_batch([src], out, preset=preset, workers=n, quiet=True, stream=stream, retries=0)
            wall = time.monotonic() - t0
            if s["failed"]:
                raise RuntimeError(f"bench batch: {s['failed'][0][0]}: {s['failed'][0][1]}")
            audio = sum(sf.info(str(f)).duration for f in out.glob("*.wav"))
            cpu = sum(r.get("cpu", 0.0) for r in s["songs"].values())
            records.append(
                {
                    "cpu_s": cpu,
                    "songs_per_cpu_min": s["rendered"] / cpu * 60 if cpu > 0 else 0.0,
                    "workers": n,
                    "songs": s["rendered"],
                    "audio_s": audio,
                    "wall_s": wall,
                    "work_s": s["work"],
                    "songs_per_min": s["rendered"] / s["work"] * 60,
                    "x_real_time": audio / s["work"],
                    "preset": str(preset),
                }
            )
    return records


def format_bench_table(records) -> str:
    rows = [
        "| workers | songs | audio | wall (with cluster start) | batch time | songs/min | x real time "
        "| worker CPU | songs per CPU-min |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        rows.append(
            f"| {r['workers']} | {r['songs']} | {r['audio_s']:.0f} s | {r['wall_s']:.1f} s | {r['work_s']:.1f} s | "
            f"{r['songs_per_min']:.1f} | {r['x_real_time']:.1f}x | {r['cpu_s']:.1f} s | "
            f"{r['songs_per_cpu_min']:.1f} |"
        )
    return "\n".join(rows)
