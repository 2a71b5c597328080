"""Render jobs of ``vocoder serve``: songs rendered in worker processes.

Each job has a directory in the spool: the uploaded song as received (never parsed in
the host: only the worker reads it), ``progress.json`` written by the worker,
``out.wav`` (written atomically by :func:`vocoder.render_file`), ``error.json`` when it
failed, and ``job.json`` once finished (so a restarted host still serves what was
rendered until it expires). Workers are separate processes (spawned, ``os.nice`` lower
priority), at most ``workers`` at a time, with at most ``queue`` jobs waiting; a
crashing or failing job is reported, never takes the host with it.

This module imports only the standard library at the top: a worker imports it first.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path

SONG_TYPES = {
    ".mid": "midi",
    ".midi": "midi",
    ".kar": "midi",
    ".musicxml": "musicxml",
    ".xml": "musicxml",
    ".mxl": "musicxml",
}
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
PRESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class JobError(Exception):
    """A request about jobs refused: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def check_options(q) -> dict:
    """Render options from a request's query (strings), validated; JobError(400) names the field."""
    allowed = {"name", "preset", "seed", "rate", "transpose", "format", "track", "channel", "part", "lyrics"}
    bad = sorted(set(q) - allowed - {"token"})
    if bad:
        raise JobError(400, f"unknown option(s) {', '.join(bad)}; allowed: {', '.join(sorted(allowed))}")
    opts: dict = {}
    preset = q.get("preset", "default")
    if not PRESET_NAME.match(preset):
        raise JobError(400, f"preset: {preset!r} is not a preset name (letters, digits, . _ -; no paths)")
    opts["preset"] = preset

    def integer(field, lo, hi, default=None):
        v = q.get(field)
        if v is None or v == "":
            return default
        try:
            x = int(v)
        except ValueError:
            raise JobError(400, f"{field}: {v!r} is not an integer") from None
        if not lo <= x <= hi:
            raise JobError(400, f"{field}: {x} is outside {lo}..{hi}")
        return x

    opts["seed"] = integer("seed", 0, 2**63 - 1, 0)
    opts["rate"] = integer("rate", 8000, 192000)
    opts["track"] = integer("track", 0, 1000)
    opts["channel"] = integer("channel", 1, 16)
    t = q.get("transpose", "0")
    opts["transpose"] = "auto" if t == "auto" else integer("transpose", -48, 48, 0)
    fmt = q.get("format", "16")
    if fmt not in ("16", "24", "float"):
        raise JobError(400, f"format: {fmt!r} is not one of 16, 24, float")
    opts["format"] = fmt
    part = q.get("part")
    if part is not None and (len(part) > 200 or "\x00" in part):
        raise JobError(400, "part: too long or not text")
    opts["part"] = part
    lyrics = q.get("lyrics")
    if lyrics is not None and len(lyrics) > 20000:
        raise JobError(400, "lyrics: longer than 20000 characters")
    opts["lyrics"] = lyrics
    return opts


def song_suffix(name: str) -> str:
    suffix = Path(name or "").suffix.lower()
    if suffix not in SONG_TYPES:
        raise JobError(
            400, f"name: {name!r} must end in one of {', '.join(sorted(SONG_TYPES))} (the song's type is taken from it)"
        )
    return suffix


# ------------------------------------------------------------------ the worker
def worker_main(job_dir: str, song: str, opts: dict, niceness: int) -> None:
    """Runs in the worker process: render the song into job_dir/out.wav."""
    try:
        os.nice(niceness)
    except OSError:
        pass
    d = Path(job_dir)
    last = [0.0]

    def progress(done, total):
        now = time.monotonic()
        if now - last[0] >= 0.2 or done >= total:
            last[0] = now
            _write_json(d / "progress.json", {"done_s": float(done), "total_s": float(total)})

    try:
        from vocoder import render_file

        lyrics = None
        if opts.get("lyrics") is not None:  # as a file: render_file reads a path or takes text
            lf = d / "lyrics.txt"
            lf.write_text(opts["lyrics"], encoding="utf-8")
            lyrics = str(lf)
        warnings: list = []
        info = render_file(
            str(d / song),
            str(d / "out.wav"),
            preset=opts["preset"],
            seed=opts["seed"],
            rate=opts.get("rate"),
            track=opts.get("track"),
            channel=opts.get("channel"),
            lyrics=lyrics,
            part=opts.get("part"),
            transpose=opts.get("transpose", 0),
            subtype=opts.get("format", "16"),
            jobs=1,
            progress=progress,
            warn=warnings.append,
        )
        _write_json(
            d / "result.json",
            {
                "seconds": info.get("seconds"),
                "sample_rate": info.get("sample_rate"),
                "notes": info.get("notes"),
                "lyrics": info.get("lyrics"),
                "warnings": warnings[:20],
            },
        )
    except BaseException as e:  # noqa: BLE001 - every failure becomes the job's error message
        msg = str(e) or type(e).__name__
        msg = msg.replace(str(d) + os.sep, "")  # the client need not see the spool's path
        _write_json(d / "error.json", {"error": msg, "type": type(e).__name__})
        os._exit(1)


# ------------------------------------------------------------------ the host's side
class Jobs:
    """The job table and its workers. Every method runs on the host's event loop thread."""

    def __init__(
        self,
        spool,
        workers: int = 2,
        queue: int = 8,
        ttl: float = 3600.0,
        niceness: int = 10,
        log=None,
        timeout: float = 3600.0,
    ):
        import multiprocessing

        self.spool = Path(spool)
        self.spool.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.workers = max(1, int(workers))
        self.queue_max = max(0, int(queue))
        self.ttl = float(ttl)
        self.niceness = int(niceness)
        self.timeout = float(timeout)
        self.log = log or (lambda *a, **k: None)
        self.ctx = multiprocessing.get_context("spawn")
        self.jobs: dict = {}
        self.order: list = []
        self._procs: dict = {}
        self._reload()

    def _reload(self) -> None:
        """Finished jobs a previous host left in the spool (unfinished ones are removed)."""
        for d in sorted(self.spool.iterdir()) if self.spool.is_dir() else []:
            if not d.is_dir() or not JOB_ID.match(d.name):
                continue
            meta = _read_json(d / "job.json")
            if meta and meta.get("state") in ("done", "failed"):
                self.jobs[d.name] = meta
                self.order.append(d.name)
            else:
                shutil.rmtree(d, ignore_errors=True)

    # ---- queries
    def check_id(self, job_id: str) -> dict:
        if not isinstance(job_id, str) or not JOB_ID.match(job_id):
            raise JobError(400, "job id must be 32 lowercase hex digits")
        j = self.jobs.get(job_id)
        if j is None:
            raise JobError(404, f"no job {job_id} (unknown, or expired)")
        return j

    def view(self, job_id: str) -> dict:
        j = dict(self.check_id(job_id))
        if j["state"] == "running":
            p = _read_json(self.spool / job_id / "progress.json")
            if p and p.get("total_s"):
                j["progress"] = max(0.0, min(1.0, p["done_s"] / p["total_s"]))
        return j

    def list(self) -> list:
        return [self.view(i) for i in self.order if i in self.jobs]

    def counts(self) -> dict:
        c = {"queued": 0, "running": 0, "done": 0, "failed": 0}
        for j in self.jobs.values():
            c[j["state"]] = c.get(j["state"], 0) + 1
        return c

    def wav_path(self, job_id: str) -> Path:
        j = self.check_id(job_id)
        if j["state"] != "done":
            raise JobError(409, f"job {job_id} is {j['state']}, no output yet")
        p = self.spool / job_id / "out.wav"
        if not p.is_file():
            raise JobError(410, f"job {job_id}: its output is gone from the spool")
        return p

    # ---- changes
    def reserve(self, name: str, opts: dict) -> tuple:
        """A new job's id and the path to write its song to; JobError(503) when the queue is full."""
        suffix = song_suffix(name)
        c = self.counts()
        if c["queued"] + c.get("uploading", 0) >= self.queue_max + max(0, self.workers - c["running"]):
            raise JobError(
                503, f"the render queue is full ({c['queued']} waiting, {c['running']} running); try again later"
            )
        job_id = secrets.token_hex(16)
        d = self.spool / job_id
        d.mkdir(mode=0o700)
        song = "song" + suffix
        self.jobs[job_id] = {
            "id": job_id,
            "state": "uploading",
            "name": Path(name).name[:200],
            "options": opts,
            "created": time.time(),
            "song": song,
        }
        return job_id, d / song

    def abandon(self, job_id: str) -> None:
        """An upload that did not complete: forget it."""
        self.jobs.pop(job_id, None)
        shutil.rmtree(self.spool / job_id, ignore_errors=True)

    def commit(self, job_id: str) -> dict:
        self.jobs[job_id]["state"] = "queued"
        self.order.append(job_id)
        self.log("job_queued", job=job_id, name=self.jobs[job_id]["name"])
        self.pump()
        return self.view(job_id)

    def delete(self, job_id: str) -> None:
        j = self.check_id(job_id)
        p = self._procs.pop(job_id, None)
        if p is not None and p.is_alive():
            p.kill()
            p.join(2)
        self.jobs.pop(job_id, None)
        if job_id in self.order:
            self.order.remove(job_id)
        shutil.rmtree(self.spool / job_id, ignore_errors=True)
        self.log("job_deleted", job=job_id, state=j["state"])

    def pump(self) -> None:
        """Start queued jobs while workers are free; notice finished ones; expire old ones."""
        now = time.time()
        for job_id, p in list(self._procs.items()):
            j = self.jobs.get(job_id)
            if j is None:
                self._procs.pop(job_id)
                continue
            if p.is_alive():
                if now - j.get("started", now) > self.timeout:
                    p.kill()
                    p.join(2)
                else:
                    continue
            p.join(0)
            self._procs.pop(job_id)
            self._finish(job_id, p.exitcode)
        running = len(self._procs)
        for job_id in self.order:
            if running >= self.workers:
                break
            j = self.jobs.get(job_id)
            if j is None or j["state"] != "queued":
                continue
            p = self.ctx.Process(
                target=worker_main, args=(str(self.spool / job_id), j["song"], j["options"], self.niceness), daemon=True
            )
            p.start()
            self._procs[job_id] = p
            j["state"] = "running"
            j["started"] = now
            running += 1
            self.log("job_started", job=job_id, pid=p.pid)
        for job_id in list(self.order):
            j = self.jobs.get(job_id)
            if j is not None and j["state"] in ("done", "failed") and now - j.get("finished", now) > self.ttl:
                self.jobs.pop(job_id)
                self.order.remove(job_id)
                shutil.rmtree(self.spool / job_id, ignore_errors=True)
                self.log("job_expired", job=job_id)

    def _finish(self, job_id: str, exitcode) -> None:
        j = self.jobs[job_id]
        d = self.spool / job_id
        j["finished"] = time.time()
        j["seconds_taken"] = round(j["finished"] - j.get("started", j["finished"]), 3)
        if exitcode == 0 and (d / "out.wav").is_file():
            j["state"] = "done"
            j["result"] = _read_json(d / "result.json") or {}
            j["progress"] = 1.0
        else:
            j["state"] = "failed"
            err = _read_json(d / "error.json")
            if err and err.get("error"):
                j["error"] = err["error"]
            elif exitcode is not None and exitcode < 0:
                j["error"] = f"the worker died (signal {-exitcode})"
            else:
                j["error"] = f"the worker failed (exit status {exitcode})"
        for f in ("progress.json", "result.json", "error.json", j["song"], "lyrics.txt"):
            if f != j["song"]:
                (d / f).unlink(missing_ok=True)
        _write_json(d / "job.json", j)
        self.log("job_" + j["state"], job=job_id, error=j.get("error"), seconds=j["seconds_taken"])

    def shutdown(self) -> None:
        for p in list(self._procs.values()):
            if p.is_alive():
                p.terminate()
        for job_id, p in list(self._procs.items()):
            p.join(3)
            if p.is_alive():
                p.kill()
                p.join(1)
            self.abandon(job_id)
        self._procs.clear()
        for job_id, j in list(self.jobs.items()):
            if j["state"] in ("queued", "uploading"):
                self.abandon(job_id)
