"""`vocoder render SONGS... --out DIR`: many songs on a real Dask cluster (vocoder/hosts/batch.py).

A real scheduler and two real workers run as separate processes on 127.0.0.1 (started
here, every wait bounded); the outputs are compared byte for byte with single renders.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from vocoder import cli, render_file  # noqa: E402
from vocoder.engine.presets import save_preset  # noqa: E402
from vocoder.hosts import batch  # noqa: E402
from vocoder.testing import random_preset  # noqa: E402

from test_events import write_midi  # noqa: E402

N_SONGS = 6
N_LONG = 4
WAIT = 60.0  # seconds any one wait for the cluster may take


@pytest.fixture(scope="module")
def preset_path(tmp_path_factory):
    p = random_preset(hidden=64, density=0.25, n_features=26, hop=80, seed=11)
    return str(save_preset(p, tmp_path_factory.mktemp("presets") / "small.safetensors"))


def make_songs(d, ref, preset_path, n, beats, first=0):
    """``n`` songs of ``beats`` beats (120 BPM) in ``d`` and ``{stem: bytes of its single render}``."""
    refs = {}
    for i in range(first, first + n):
        notes = [(b, 1, 60 + (i + 3 * b) % 12, "la ") for b in range(beats)]
        mid = write_midi(d / f"song{i}.mid", [notes], tempo=500000)
        out = ref / f"song{i}.wav"
        render_file(mid, out, preset=preset_path, seed=3, progress=None)
        refs[f"song{i}"] = out.read_bytes()
    return refs


@pytest.fixture(scope="module")
def songs(tmp_path_factory, preset_path):
    """``(folder of N_SONGS short songs, {stem: bytes of its single render})``."""
    d = tmp_path_factory.mktemp("songs")
    return d, make_songs(d, tmp_path_factory.mktemp("ref"), preset_path, N_SONGS, 3)  # 1.5 s + the tail


def _wait(what, ok, limit=WAIT):
    t0 = time.monotonic()
    while not ok():
        if time.monotonic() - t0 > limit:
            raise TimeoutError(f"{what}: not ready after {limit:.0f} s")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A `dask scheduler` and two `dask worker` processes (no nanny: a killed worker stays
    dead) on loopback: ``{"address", "workers": {pid: Popen}}``."""
    d = tmp_path_factory.mktemp("cluster")
    sfile = d / "scheduler.json"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")]),
        # a task whose worker dies fails at once (Dask's KilledWorker) instead of being
        # rescheduled by the scheduler: the batch's own retry is what brings it back
        DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0",
    )
    procs = []
    logs = []

    def start(args, name):
        log = open(d / f"{name}.log", "wb")
        logs.append(log)
        procs.append(
            subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(d))
        )
        return procs[-1]

    try:
        start(
            [
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--dashboard-address",
                "127.0.0.1:0",
                "--scheduler-file",
                str(sfile),
            ],
            "scheduler",
        )
        _wait("dask scheduler", lambda: sfile.is_file() and sfile.stat().st_size > 0)
        address = json.loads(sfile.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        workers = {}
        for k in range(2):
            p = start(
                [
                    "distributed.cli.dask_worker",
                    address,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--name",
                    f"w{k}",
                    "--death-timeout",
                    "60",
                ],
                f"worker{k}",
            )
            workers[p.pid] = p
        with distributed.Client(address, timeout=WAIT) as c:
            c.wait_for_workers(2, timeout=WAIT)
        yield {"address": address, "workers": workers}
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        for log in logs:
            log.close()


def copy_songs(songs_dir, dest, names):
    dest.mkdir()
    for n in names:
        shutil.copy(songs_dir / f"{n}.mid", dest / f"{n}.mid")
    return dest


def render_cli(capsys, *args):
    if "--out" in args and "--timeout" not in args:
        args = (*args, "--timeout", 120)  # every wait bounded
    rc = cli.main(["render", *map(str, args)])
    return rc, capsys.readouterr().err


def wavs(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".wav") and not f.startswith("."))


def test_batch_on_cluster_equals_single_renders_and_resumes(tmp_path, songs, preset_path, cluster, capsys):
    src, refs = songs
    names = ["song0", "song1", "song2"]
    inp = copy_songs(src, tmp_path / "in", names)
    out = tmp_path / "out"
    rc, err = render_cli(
        capsys, inp, "--out", out, "--scheduler", cluster["address"], "--preset", preset_path, "--seed", 3
    )
    assert rc == 0, err
    assert wavs(out) == [f"{n}.wav" for n in names]
    for n in names:
        assert (out / f"{n}.wav").read_bytes() == refs[n], n  # the bytes of `vocoder render n.mid -o n.wav --seed 3`
    assert "[3/3]" in err and "ETA" in err and "3 rendered, 0 skipped" in err

    # resume: song1's output gone, a stale temporary file of song2's is lying there
    mtime0 = (out / "song0.wav").stat().st_mtime_ns
    (out / "song1.wav").unlink()
    os.replace(out / "song2.wav", out / ".song2.wav.stale1.wav.part")
    (out / ".song2.wav.stale1.wav.part").write_bytes(b"RIFF half a file")
    rc, err = render_cli(
        capsys, inp, "--out", out, "--scheduler", cluster["address"], "--preset", preset_path, "--seed", 3
    )
    assert rc == 0, err
    assert "2 rendered, 1 skipped" in err
    assert (out / "song0.wav").stat().st_mtime_ns == mtime0  # finished: not rendered again
    for n in names:
        assert (out / f"{n}.wav").read_bytes() == refs[n], n
    rc, err = render_cli(
        capsys, inp, "--out", out, "--scheduler", cluster["address"], "--preset", preset_path, "--seed", 3
    )
    assert rc == 0 and "nothing to render" in err


def test_bad_song_reported_rest_rendered(tmp_path, songs, preset_path, cluster, capsys):
    src, refs = songs
    inp = copy_songs(src, tmp_path / "in", ["song3", "song4"])
    (inp / "broken.mid").write_bytes(b"this is not a MIDI file")
    shutil.copy(inp / "song3.mid", inp / "blocked.mid")
    (tmp_path / "out" / "blocked.wav").mkdir(parents=True)  # its output cannot be written
    lst = tmp_path / "list.txt"
    lst.write_text("# the batch\nin/song3.mid\n\nin/broken.mid\nin/song4.mid\nin/blocked.mid\n")
    out = tmp_path / "out"
    rc, err = render_cli(
        capsys, f"@{lst}", "--out", out, "--scheduler", cluster["address"], "--preset", preset_path, "--seed", 3
    )
    assert rc == 1, err
    assert "2 rendered, 0 skipped (already done), 2 failed" in err
    assert f"failed: {inp / 'broken.mid'}: not a MIDI file" in err  # name and reason in the summary
    assert f"failed: {inp / 'blocked.mid'}: {out / 'blocked.wav'}: cannot write the output (Is a directory)" in err
    assert "retrying" not in err  # neither is worth another render
    assert sorted(os.listdir(out)) == ["blocked.wav", "song3.wav", "song4.wav"]  # no temporary files left
    assert (out / "song3.wav").read_bytes() == refs["song3"]
    assert (out / "song4.wav").read_bytes() == refs["song4"]


def test_bad_inputs_named_before_any_work(tmp_path, songs, preset_path, capsys):
    src, _ = songs
    inp = copy_songs(src, tmp_path / "in", ["song0"])
    rc, err = render_cli(capsys, inp / "song0.mid", tmp_path / "missing.mid", "--out", tmp_path / "o")
    assert rc == 1 and f"{tmp_path / 'missing.mid'}: no such file or folder" in err
    lst = tmp_path / "l.txt"
    lst.write_text("in/song0.mid\nin/nope.mid\n")
    rc, err = render_cli(capsys, f"@{lst}", "--out", tmp_path / "o")
    assert rc == 1 and f"{lst}:2: {tmp_path / 'in' / 'nope.mid'}: no such file or folder" in err
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(inp / "song0.mid", other / "song0.mid")
    rc, err = render_cli(capsys, inp / "song0.mid", other / "song0.mid", "--out", tmp_path / "o")
    assert rc == 1 and "would both be written to" in err and str(other / "song0.mid") in err
    rc, err = render_cli(capsys, inp / "song0.mid", inp / "song0.mid", "-o", tmp_path / "x.wav")
    assert rc == 2 and "--out DIR" in err
    rc, err = render_cli(
        capsys, inp / "song0.mid", "--out", tmp_path / "o", "--plot", tmp_path / "p.png", "--preset", preset_path
    )
    assert rc == 1 and "--plot" in err
    rc, err = render_cli(capsys, inp / "song0.mid", "--out", tmp_path / "o", "--preset", tmp_path / "nope.safetensors")
    assert rc == 1 and f"{tmp_path / 'nope.safetensors'}: no such preset file" in err
    assert not (tmp_path / "o").exists()  # nothing made before the batch could start
    with pytest.raises(batch.BatchError, match="tcp://127.0.0.1:9: cannot reach the Dask scheduler"):
        batch.render_batch([inp], tmp_path / "o", preset=preset_path, scheduler="tcp://127.0.0.1:9", connect_timeout=1)


def test_local_cluster_by_default(tmp_path, songs, preset_path, capsys):
    src, refs = songs
    inp = copy_songs(src, tmp_path / "in", ["song5"])
    out = tmp_path / "out"
    rc, err = render_cli(capsys, inp / "song5.mid", "--out", out, "--workers", 1, "--preset", preset_path, "--seed", 3)
    assert rc == 0, err
    assert "1 local worker process" in err
    assert (out / "song5.wav").read_bytes() == refs["song5"]


def test_time_limit_reports_unfinished_songs(tmp_path, songs, preset_path, cluster, capsys):
    src, _ = songs
    inp = copy_songs(src, tmp_path / "in", ["song0", "song1"])
    rc, err = render_cli(
        capsys,
        inp,
        "--out",
        tmp_path / "out",
        "--scheduler",
        cluster["address"],
        "--preset",
        preset_path,
        "--timeout",
        0.001,
    )
    assert rc == 1, err
    # a song may finish while the others are still being sent (a fast machine): whatever
    # finished is written whole, whatever did not is named, and nothing else is left
    m = re.search(r"(\d+) rendered, 0 skipped \(already done\), (\d+) failed", err)
    assert m, err
    rendered, failed = int(m.group(1)), int(m.group(2))
    assert failed >= 1 and rendered + failed == 2, err
    unfinished = [n for n in ("song0", "song1") if f"failed: {inp / (n + '.mid')}: not finished within" in err]
    assert len(unfinished) == failed, err
    assert "the batch's time limit (0.001 s)" in err
    assert sorted(os.listdir(tmp_path / "out")) == sorted(n + ".wav" for n in ("song0", "song1") if n not in unfinished)


def test_worker_killed_mid_batch(tmp_path, preset_path, cluster, capsys):
    """SIGKILL a worker while it renders a song, right after the first song is done: the
    batch completes on the other worker, every song delivered and written once, with the
    bytes of single renders."""
    src = tmp_path / "long"
    src.mkdir()
    refs = make_songs(src, tmp_path, preset_path, N_LONG, 8)  # 4 s + the tail: long enough to be caught mid-song
    live = {pid: p for pid, p in cluster["workers"].items() if p.poll() is None}
    assert len(live) == 2
    killed = {}
    done = []
    client = distributed.Client(cluster["address"], timeout=WAIT)

    addr_of = {pid: addr for addr, pid in client.run(os.getpid).items()}
    assert sorted(addr_of) == sorted(live)

    def running(pid):
        """The keys worker ``pid`` is executing now (asked of the worker itself)."""
        got = client.run(
            lambda dask_worker: [str(ts.key) for ts in dask_worker.state.executing], workers=[addr_of[pid]]
        )
        return got.get(addr_of[pid], [])

    def on_result(song, output, record):
        done.append((song.name, record))
        if not killed:
            # kill the worker that did not render this song, once it is rendering one (bounded wait)
            finished_on = int(record["worker"].rsplit(":", 1)[1])
            victim = next(pid for pid in live if pid != finished_on)
            t0 = time.monotonic()
            while not (keys := running(victim)):
                assert time.monotonic() - t0 < 20, "the other worker never rendered a song"
                time.sleep(0.02)
            live[victim].send_signal(signal.SIGKILL)
            live[victim].wait(timeout=10)
            killed.update(pid=victim, keys=keys)

    out = tmp_path / "out"
    try:
        summary = batch.render_batch(
            [src], out, preset=preset_path, scheduler=cluster["address"], seed=3, timeout=120, on_result=on_result
        )
    finally:
        client.close()
    assert killed, "no song finished"
    assert summary["failed"] == [] and summary["rendered"] == N_LONG
    assert sorted(n for n, _ in done) == sorted(f"song{i}.mid" for i in range(N_LONG))  # each song once
    survivor = next(pid for pid in live if pid != killed["pid"])
    lost = [k for k in killed["keys"] if k.startswith("render-")]
    assert len(lost) == 1, killed
    by_song = dict(done)
    # the song the killed worker was rendering failed (KilledWorker) and was retried on the survivor
    name = lost[0][len("render-") :].split(".mid-")[0] + ".mid"
    assert by_song[name]["worker"].endswith(f":{survivor}"), (name, by_song[name])
    assert by_song[name]["attempts"] == 2, (name, by_song[name])
    # the other songs: once, or twice where the killed worker held a finished song's result
    assert all(r["attempts"] in (1, 2) for n, r in done), done
    err = capsys.readouterr().err
    assert "attempt 1 failed (KilledWorker" in err and "retrying" in err
    assert sorted(os.listdir(out)) == [f"song{i}.wav" for i in range(N_LONG)]  # nothing else, no temp files
    # the killed worker's song folder is swept by the next song on this machine
    base = batch._worker_dir()
    assert not list(base.glob(f"work-{killed['pid']}-*")), sorted(os.listdir(base))
    for i in range(N_LONG):
        assert (out / f"song{i}.wav").read_bytes() == refs[f"song{i}"], i
