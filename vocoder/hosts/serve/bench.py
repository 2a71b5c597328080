"""``vocoder bench serve``: do render jobs disturb the live voices of ``vocoder serve``?

Starts a real ``vocoder serve`` (a subprocess on a free loopback port) with two WaveRNN
voices holding notes, measures the audio callback's time for a while with no render
job, then again while two render jobs run in its worker processes (resubmitted as they
finish, so two are always running), and prints the callback time (median, p99.9, max)
against the period, and the xruns and late wakeups of each phase. A benchmark, not a
test: the numbers depend on the machine and on what else it runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _song(path: Path, seconds: float) -> Path:
    import mido

    m = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    m.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000))
    words = "la di da no ri mo sa ve to".split()
    for k in range(int(seconds * 2)):
        tr.append(mido.MetaMessage("lyrics", text=words[k % len(words)], time=0))
        tr.append(mido.Message("note_on", note=55 + (k * 5) % 12, velocity=90, time=0))
        tr.append(mido.Message("note_off", note=55 + (k * 5) % 12, velocity=0, time=480))
    m.save(str(path))
    return path


class _Host:
    def __init__(self, tmp: Path, api: str, blocksize: int):
        self.port_file = tmp / "port"
        self.log = open(tmp / "serve.log", "wb")
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[3])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vocoder",
                "serve",
                "--api",
                api,
                "--port",
                "0",
                "--port-file",
                str(self.port_file),
                "--spool",
                str(tmp / "spool"),
                "--blocksize",
                str(blocksize),
                "--voice",
                "1=default",
                "--voice",
                "2=default",
                "--workers",
                "2",
                "--queue",
                "4",
                "--rate-limit",
                "0",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        for _ in range(900):
            if self.port_file.exists() or self.p.poll() is not None:
                break
            time.sleep(0.1)
        if not self.port_file.exists():
            raise RuntimeError(f"vocoder serve did not start; see {tmp / 'serve.log'}")
        self.url = f"http://127.0.0.1:{int(self.port_file.read_text())}"

    def req(self, method, path, body=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        r = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(r, timeout=60) as resp:
            return json.loads(resp.read())

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
        self.log.close()


def run(seconds: float = 10.0, api: str = "none", blocksize: int = 256, jobs: int = 2, progress=None) -> list:
    say = progress or (lambda m: None)
    with tempfile.TemporaryDirectory(prefix="vocoder-bench-serve-") as tmp_name:
        tmp = Path(tmp_name)
        song = _song(tmp / "long.mid", max(60.0, seconds * 6)).read_bytes()
        host = _Host(tmp, api, blocksize)
        records = []
        try:
            host.req("POST", "/api/channels/1/events", {"type": "note_on", "note": 57})
            host.req("POST", "/api/channels/2/events", {"type": "note_on", "note": 64})
            for phase, n_jobs in (("no render job", 0), (f"{jobs} render jobs", jobs)):
                running: list = []
                t_end = None
                x0 = host.req("GET", "/api/status")
                t0 = time.monotonic()
                while True:
                    running = [
                        j for j in running if host.req("GET", f"/api/jobs/{j}")["state"] in ("queued", "running")
                    ]
                    while len(running) < n_jobs:
                        running.append(host.req("POST", "/api/jobs?name=long.mid", raw=song)["id"])
                    if t_end is None and (n_jobs == 0 or time.monotonic() - t0 > 3.0):  # workers warmed up
                        t_end = time.monotonic() + seconds
                        x0 = host.req("GET", "/api/status")
                        say(f"bench serve: measuring '{phase}' for {seconds:.0f} s")
                    if t_end is not None and time.monotonic() >= t_end:
                        break
                    time.sleep(0.25)
                st = host.req("GET", f"/api/status?window={seconds}")
                t = st["timing"]
                records.append(
                    {
                        "phase": phase,
                        "api": api,
                        "blocksize": blocksize,
                        "voices": 2,
                        "period_ms": t["period_ms"],
                        "callbacks": t.get("window"),
                        "median_ms": t["median_ms"],
                        "p999_ms": t["p999_ms"],
                        "max_ms": t["max_ms"],
                        "load_median": t["load_median"],
                        "load_p999": t["load_p999"],
                        "xruns": st["xruns"] - x0["xruns"],
                        "late_wakeups": st["late_wakeups"] - x0["late_wakeups"],
                        "jobs_done": st["jobs"]["done"],
                    }
                )
                for j in running:
                    host.req("DELETE", f"/api/jobs/{j}")
        finally:
            host.stop()
    return records


def format_table(records) -> str:
    lines = [
        f"{'phase':16s} {'api':5s} {'period':>8s} {'median':>8s} {'p99.9':>8s} {'max':>8s} {'p99.9/period':>13s} "
        f"{'xruns':>6s} {'late':>5s}"
    ]
    for r in records:
        lines.append(
            f"{r['phase']:16s} {r['api']:5s} {r['period_ms']:7.3f}m {r['median_ms']:7.3f}m "
            f"{r['p999_ms']:7.3f}m {r['max_ms']:7.3f}m {100 * r['load_p999']:12.1f}% {r['xruns']:6d} "
            f"{r['late_wakeups']:5d}"
        )
    return "\n".join(lines) + "\n(callback time of the mixer with 2 WaveRNN voices singing; m = ms)"


def main(args) -> int:
    seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 10.0)
    recs = run(seconds=seconds, api=getattr(args, "api", None) or "none", progress=lambda m: print(m, file=sys.stderr))
    print(json.dumps(recs, indent=1) if args.json else format_table(recs))
    return 0
