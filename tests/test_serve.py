"""`vocoder serve` as a user runs it: a real process, real sockets on loopback.

Every wait is bounded in count and time. After each abuse (floods, broken and huge
uploads, clients vanishing mid-upload, bad tokens, bad plugins, failing songs) the host
must still answer, and what it already rendered must still be there."""

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_serve_plugins import build_plugin  # noqa: E402

from test_events import write_midi  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


class Serve:
    """A `vocoder serve` process on a free loopback port."""

    def __init__(self, tmp: Path, *extra, token=None, env=None):
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.port_file = tmp / "port"
        self.log_path = tmp / "serve.log"
        self.token = token
        self.port_file.unlink(missing_ok=True)
        args = [
            sys.executable,
            "-m",
            "vocoder",
            "serve",
            "--api",
            "none",
            "--port",
            "0",
            "--port-file",
            str(self.port_file),
            "--spool",
            str(tmp / "spool"),
            *extra,
        ]
        if token:
            (tmp / "token").write_text(token + "\n")
            args += ["--token-file", str(tmp / "token")]
        self.log = open(self.log_path, "wb")
        self.p = subprocess.Popen(
            args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env={**ENV, **(env or {})}
        )
        for _ in range(600):  # 60 s at most
            if self.port_file.exists() or self.p.poll() is not None:
                break
            time.sleep(0.1)
        assert self.port_file.exists(), f"serve did not start: {self.log_path.read_text()[-3000:]}"
        self.port = int(self.port_file.read_text())
        self.url = f"http://127.0.0.1:{self.port}"

    def req(self, method, path, body=None, raw=None, token=None, timeout=60):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        r = urllib.request.Request(self.url + path, data=data, method=method)
        tok = token if token is not None else self.token
        if tok:
            r.add_header("Authorization", f"Bearer {tok}")
        if body is not None:
            r.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(r, timeout=timeout) as resp:
                payload = resp.read()
                status = resp.status
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            payload, status, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
        if "json" in ctype:
            return status, json.loads(payload)
        return status, payload

    def status(self):
        s, st = self.req("GET", "/api/status")
        assert s == 200 and st["ok"], st
        return st

    def wait_job(self, job_id, seconds=120):
        for _ in range(int(seconds * 10)):
            s, j = self.req("GET", f"/api/jobs/{job_id}")
            assert s == 200, j
            if j["state"] in ("done", "failed"):
                return j
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not finish in {seconds} s: {j}")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(10)
        self.log.close()
        return self.p.returncode, self.log_path.read_text()


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve_plugins")
    if shutil.which("gcc"):
        build_plugin(d / "saw.so")
        build_plugin(d / "crash.so", "-DSAW_CRASH", '-DSAW_ID="test.crash"')
    return d


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    d = tmp_path_factory.mktemp("songs")
    return write_midi(d / "song.mid", [[(0, 1, 60, "la"), (1, 1, 62, "di"), (2, 1, 64, "da")]])


@pytest.fixture(scope="module")
def server(tmp_path_factory, plugin_dir):
    s = Serve(
        tmp_path_factory.mktemp("serve"),
        "--workers",
        "1",
        "--queue",
        "2",
        "--max-upload-mb",
        "1",
        "--rate-limit",
        "100",
        env={"VOCODER_PLUGIN_PATH": str(plugin_dir)},
    )
    yield s
    rc, log = s.stop()
    assert rc == 0, log[-3000:]
    lines = [json.loads(ln) for ln in log.splitlines() if ln.startswith("{")]
    assert lines[-1]["event"] == "stopped"  # clean SIGTERM shutdown, structured logs


def test_status_page_and_voices(server):
    st = server.status()
    assert st["api"] == "none" and st["channels"][0]["plugin"] == "vocoder.wavernn"  # the default voice
    assert st["timing"]["callbacks"] > 0 and st["timing"]["load_p999"] is not None
    s, page = server.req("GET", "/")
    assert s == 200 and b"<title>vocoder serve</title>" in page
    s, pl = server.req("GET", "/api/plugins")
    assert s == 200 and {"vocoder.wavernn", "test.saw"} <= {p["id"] for p in pl["plugins"] if p["ok"]}
    # lyrics and notes on the WaveRNN voice: the syllable sung shows in the status
    s, r = server.req("PUT", "/api/channels/1/lyrics", {"text": "hel lo world"})
    assert s == 200 and r["upcoming"] == "hel"
    s, r = server.req("POST", "/api/channels/1/events", {"type": "note_on", "note": 62, "velocity": 90})
    assert s == 200 and r["results"][0]["sent"] >= 1
    time.sleep(0.3)
    ch1 = server.status()["channels"][0]
    assert ch1["syllable"] == "hel" and ch1["upcoming"] == "lo" and ch1["latency_samples"] > 0
    server.req("POST", "/api/channels/1/events", {"type": "note_off", "note": 62})
    # the sawtooth plugin on channel 2, swapped in; notes, panic, unload
    s, r = server.req("PUT", "/api/channels/2/voice", {"plugin": "test.saw"})
    assert s == 200 and r["plugin"] == "test.saw", r
    s, r = server.req(
        "POST",
        "/api/channels/2/events",
        [{"type": "note_on", "note": 69}, {"type": "bend", "value": 0.5}, {"type": "cc", "cc": 1, "value": 64}],
    )
    assert s == 200 and len(r["results"]) == 3
    peaks = []
    for _ in range(20):  # the level meter sees the note
        peaks.append(server.status()["channels"][1]["peak"])
        if peaks[-1] > 0.05:
            break
        time.sleep(0.05)
    assert max(peaks) > 0.05, peaks
    assert server.req("POST", "/api/panic")[0] == 200
    s, r = server.req("DELETE", "/api/channels/2/voice")
    assert s == 200 and r["plugin"] is None
    # bad requests get clear errors
    assert server.req("POST", "/api/channels/2/events", {"type": "note_on", "note": 60})[0] == 409
    s, r = server.req("POST", "/api/channels/1/events", {"type": "note_on", "note": 300})
    assert s == 400 and "note" in r["error"]
    assert server.req("POST", "/api/channels/1/events", raw=b"{not json")[0] == 400
    assert server.req("POST", "/api/channels/17/events", {"type": "panic"})[0] == 404
    s, r = server.req("PUT", "/api/channels/3/voice", {"preset": "../../etc/passwd"})
    assert s == 400 and "preset" in r["error"]
    s, r = server.req("PUT", "/api/channels/3/voice", {"preset": "no-such-preset"})
    assert s == 400 and "no-such-preset" in r["error"]
    assert server.req("GET", "/api/nothing")[0] == 404
    s, r = server.req("PUT", "/api/channels/3/voice", {"plugin": "/tmp/evil.so"})
    assert s == 400 and "not a path" in r["error"]


def test_cross_origin_and_foreign_host_refused(server):
    """A web page elsewhere (or DNS rebinding) must not drive a loopback host."""
    for headers in ({"Origin": "http://evil.example"}, {"Host": "evil.example:8720"}, {"Origin": "null"}):
        r = urllib.request.Request(
            server.url + "/api/channels/1/events",
            method="POST",
            data=b'{"type": "note_on", "note": 60}',
            headers=headers,
        )
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(r, timeout=30)
        assert e.value.code == 403 and "refused" in json.loads(e.value.read())["error"]
    same = urllib.request.Request(server.url + "/api/status", headers={"Origin": server.url})
    with urllib.request.urlopen(same, timeout=30) as resp:
        assert resp.status == 200


def test_a_plugin_that_fails_to_load_is_refused(server):
    s, r = server.req("PUT", "/api/channels/4/voice", {"plugin": "test.crash"})
    assert s == 422 and "crash.so" in r["error"] and "SIGSEGV" in r["error"], r
    st = server.status()
    assert st["channels"][3]["plugin"] is None
    s, r = server.req("PUT", "/api/channels/4/voice", {"plugin": "no.such.plugin"})
    assert s == 422 and "no plugin 'no.such.plugin'" in r["error"]
    assert server.status()["ok"]


def test_websocket_status_and_notes(server):
    import aiohttp

    async def go():
        async with aiohttp.ClientSession() as cs:
            async with cs.ws_connect(server.url + "/api/ws") as ws:
                first = await asyncio.wait_for(ws.receive_json(), 10)
                assert first["kind"] == "status" and first["status"]["ok"]
                n0 = first["status"]["notes_received"]
                await ws.send_json({"op": "event", "channel": 1, "event": {"type": "note_on", "note": 65}})
                got = None
                for _ in range(50):
                    m = await asyncio.wait_for(ws.receive_json(), 10)
                    if m["kind"] == "event":
                        got = m
                    if got and m["kind"] == "status" and m["status"]["notes_received"] > n0:
                        break
                assert got and got["result"]["sent"] >= 1
                assert m["status"]["notes_received"] == n0 + 1
                await ws.send_json({"op": "nope"})
                for _ in range(20):
                    m = await asyncio.wait_for(ws.receive_json(), 10)
                    if m["kind"] == "error":
                        break
                assert "op" in m["error"]
                await ws.send_json({"op": "panic"})

    asyncio.run(go())


def test_render_job_equals_vocoder_render(server, song, tmp_path):
    s, j = server.req("POST", "/api/jobs?name=song.mid&seed=5", raw=song.read_bytes())
    assert s == 202, j
    j = server.wait_job(j["id"])
    assert j["state"] == "done", j
    s, wav = server.req("GET", f"/api/jobs/{j['id']}/wav")
    assert s == 200 and wav[:4] == b"RIFF"
    out = tmp_path / "cli.wav"
    r = subprocess.run(
        [sys.executable, "-m", "vocoder", "render", str(song), "-o", str(out), "--seed", "5", "-q"],
        env=ENV,
        capture_output=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == wav
    server.done_job = j["id"]


def test_bad_uploads_and_failing_jobs(server, song):
    sizes = []
    # garbage, truncated, and empty songs: accepted for rendering, failed with the reader's message
    for name, data in (
        ("garbage.mid", b"\x00garbage" * 50),
        ("cut.mid", song.read_bytes()[:30]),
        ("bad.musicxml", b"<score-partwise><part"),
    ):
        s, j = server.req("POST", f"/api/jobs?name={name}", raw=data)
        assert s == 202, j
        j = server.wait_job(j["id"])
        assert j["state"] == "failed" and j["error"], j
        assert "spool" not in j["error"]
        sizes.append(j["error"])
    s, r = server.req("POST", "/api/jobs?name=empty.mid", raw=b"")
    assert s == 400 and "empty" in r["error"]
    s, r = server.req("POST", "/api/jobs?name=huge.mid", raw=b"\x00" * (1024 * 1024 + 10))
    assert s == 413 and "upload limit" in r["error"]
    s, r = server.req("POST", "/api/jobs?name=song.exe", raw=b"MThd")
    assert s == 400 and "name" in r["error"]
    s, r = server.req("POST", "/api/jobs?name=a.mid&preset=../x", raw=b"MThd")
    assert s == 400 and "preset" in r["error"]
    s, r = server.req("POST", "/api/jobs?name=a.mid&seed=-1", raw=b"MThd")
    assert s == 400 and "seed" in r["error"]
    s, r = server.req("POST", "/api/jobs?name=a.mid&evil=1", raw=b"MThd")
    assert s == 400 and "evil" in r["error"]
    # job ids are validated: no path traversal
    for bad in ("..%2F..%2Fetc%2Fpasswd", "ABC", "0" * 31 + "g"):
        s, r = server.req("GET", f"/api/jobs/{bad}/wav")
        assert s in (400, 404), (bad, s, r)
    assert server.req("GET", "/api/jobs/" + "0" * 32)[0] == 404
    assert server.status()["ok"]
    # nothing already rendered is lost
    if getattr(server, "done_job", None):
        assert server.req("GET", f"/api/jobs/{server.done_job}/wav")[0] == 200


def test_client_disconnecting_mid_upload(server):
    spool = server.tmp / "spool"
    before = set(os.listdir(spool))
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as c:
            c.sendall(b"POST /api/jobs?name=x.mid HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n" + b"M" * 70000)
            time.sleep(0.2)
    for _ in range(50):  # the host notices and removes the partial upload
        if set(os.listdir(spool)) <= before:
            break
        time.sleep(0.1)
    assert set(os.listdir(spool)) <= before
    st = server.status()
    assert st["jobs"].get("uploading", 0) == 0


def test_full_queue_answers_503(server, song):
    data = song.read_bytes()
    codes, ids = [], []
    for _ in range(8):  # one worker, two waiting: the rest are refused
        s, j = server.req("POST", "/api/jobs?name=q.mid", raw=data)
        codes.append(s)
        if s == 202:
            ids.append(j["id"])
        else:
            assert s == 503 and "queue is full" in j["error"]
    assert 503 in codes and 202 in codes
    for i in ids:
        assert server.wait_job(i)["state"] == "done"


def test_flooding_client_is_limited_and_host_keeps_serving(server):
    import aiohttp

    async def flood():
        async with aiohttp.ClientSession() as cs:

            async def one():
                async with cs.get(server.url + "/api/channels") as r:
                    return r.status

            return await asyncio.wait_for(asyncio.gather(*[one() for _ in range(1500)]), 180)

    codes = asyncio.run(flood())
    assert codes.count(429) > 0 and codes.count(200) > 0
    time.sleep(1.5)  # the bucket refills
    assert server.status()["ok"]


def test_tokens(tmp_path):
    s = Serve(tmp_path / "tok", "--no-default-voice", token="s3cret-token-0123456789")
    try:
        for tok in ("", "wrong-token-xxxxxxxxxxx"):
            code, r = s.req("GET", "/api/status", token=tok)
            assert code == 401 and "token" in r["error"]
        assert s.req("GET", "/")[0] == 200
        assert s.req("GET", "/", token="")[0] == 401
        assert s.req("GET", "/api/status")[0] == 200
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "vocoder",
                "serve",
                "--check",
                "--port",
                str(s.port),
                "--token-file",
                str(s.tmp / "token"),
            ],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0 and r.stdout.startswith("ok"), r.stderr
    finally:
        rc, log = s.stop()
    assert rc == 0, log[-2000:]
    r = subprocess.run(
        [sys.executable, "-m", "vocoder", "serve", "--check", "--port", str(s.port)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "no healthy host" in r.stderr


def test_remote_bind_without_token_is_refused(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vocoder",
            "serve",
            "--api",
            "none",
            "--listen",
            "0.0.0.0",
            "--port",
            "0",
            "--spool",
            str(tmp_path / "spool"),
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "refusing to listen on 0.0.0.0 without --token-file" in r.stderr
    (tmp_path / "short").write_text("abc")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vocoder",
            "serve",
            "--api",
            "none",
            "--listen",
            "0.0.0.0",
            "--port",
            "0",
            "--token-file",
            str(tmp_path / "short"),
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0 and "at least 16 characters" in r.stderr


def test_finished_jobs_survive_a_restart(tmp_path, song):
    """What was rendered is still served after the host restarts on the same spool."""
    a = Serve(tmp_path / "one", "--no-default-voice", "--workers", "1")
    try:
        s, j = a.req("POST", "/api/jobs?name=keep.mid", raw=song.read_bytes())
        assert s == 202
        j = a.wait_job(j["id"])
        assert j["state"] == "done"
        _, wav = a.req("GET", f"/api/jobs/{j['id']}/wav")
    finally:
        assert a.stop()[0] == 0
    b = Serve(tmp_path / "one", "--no-default-voice")  # the same directory: the same spool
    try:
        s, again = b.req("GET", f"/api/jobs/{j['id']}/wav")
        assert s == 200 and again == wav
        assert b.req("GET", f"/api/jobs/{j['id']}")[1]["state"] == "done"
    finally:
        assert b.stop()[0] == 0


def test_a_bad_start_voice_is_logged_and_the_host_serves(tmp_path, plugin_dir):
    s = Serve(
        tmp_path / "bad",
        "--voice",
        "3=test.crash",
        "--voice",
        "4=no-such-preset",
        "--no-default-voice",
        env={"VOCODER_PLUGIN_PATH": str(plugin_dir)},
    )
    try:
        st = s.status()
        assert st["channels"][2]["plugin"] is None and st["channels"][3]["plugin"] is None
    finally:
        rc, log = s.stop()
    assert rc == 0
    refused = [json.loads(ln) for ln in log.splitlines() if '"voice_refused"' in ln]
    assert {r["channel"] for r in refused} == {3, 4}
    assert any("SIGSEGV" in r["error"] for r in refused) and any("no-such-preset" in r["error"] for r in refused)
