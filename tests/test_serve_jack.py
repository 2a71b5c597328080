"""`vocoder serve --api jack` on a real JACK server (dummy driver, AUDIO-TESTING.md): the
sawtooth plugin compiled by the test and the WaveRNN voice side by side, recorded by a
JACK client from the host's output ports and checked by FFT."""

import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("aiohttp")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_serve import Serve  # noqa: E402
from test_serve_plugins import build_plugin, peak_hz  # noqa: E402

RATE = 48000


@pytest.fixture(scope="module")
def jackd(tmp_path_factory):
    if shutil.which("jackd") is None or shutil.which("jack_lsp") is None or shutil.which("gcc") is None:
        pytest.skip("needs jackd2 and gcc")
    pytest.importorskip("jack")
    from test_live_jack import server_name, start_jackd, stop_jackd

    name = server_name("serve")
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"
    proc = start_jackd(name, tmp_path_factory.mktemp("jack") / "jackd.log", period=256)
    try:
        yield name
    finally:
        stop_jackd(proc, name)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Recorder:
    def __init__(self, seconds):
        import jack

        self.client = jack.Client(f"vrec{uuid.uuid4().hex[:6]}", no_start_server=True)
        self.inp = self.client.inports.register("in")
        self.buf = np.zeros(int(seconds * RATE), np.float32)
        self.pos = 0
        self.on = False

        @self.client.set_process_callback
        def process(frames):
            if self.on and self.pos + frames <= self.buf.shape[0]:
                self.buf[self.pos : self.pos + frames] = self.inp.get_array()
                self.pos += frames

        self.client.activate()

    def record(self, seconds):
        self.pos = 0
        self.on = True
        for _ in range(int(seconds * 20) + 100):
            if self.pos >= int(seconds * RATE):
                break
            time.sleep(0.05)
        self.on = False
        return self.buf[: self.pos].copy()

    def close(self):
        self.client.deactivate()
        self.client.close()


def test_saw_plugin_beside_wavernn_over_jack(jackd, tmp_path):
    plugdir = tmp_path / "plugins"
    build_plugin(plugdir / "saw.so")
    s = Serve(
        tmp_path / "serve",
        "--api",
        "jack",
        "--blocksize",
        "256",
        "--voice",
        "1=default",
        "--voice",
        "2=test.saw",
        env={"VOCODER_PLUGIN_PATH": str(plugdir), "JACK_DEFAULT_SERVER": jackd, "JACK_NO_START_SERVER": "1"},
    )
    rec = None
    try:
        st = s.status()
        assert st["api"] == "jack" and [c["plugin"] for c in st["channels"][:2]] == ["vocoder.wavernn", "test.saw"]
        rec = Recorder(3.0)
        sources = [p.name for p in rec.client.get_all_connections("system:playback_1")]
        assert sources, "serve's output is not connected to system:playback_1"
        rec.client.connect(sources[0], rec.inp)
        # the saw alone at B-flat 4 (466.16 Hz)
        s.req("POST", "/api/channels/2/events", {"type": "note_on", "note": 70, "velocity": 127})
        time.sleep(0.3)
        saw = rec.record(1.0)
        assert saw.size >= RATE // 2 and np.abs(saw).max() > 0.05
        assert abs(peak_hz(saw) - 466.16) < 3.0
        # the WaveRNN voice joins at A3 (220 Hz): its fundamental appears beside the saw's
        s.req("POST", "/api/channels/1/events", {"type": "note_on", "note": 57, "velocity": 110})
        time.sleep(0.4)
        both = rec.record(1.0)

        def band(x, f):
            spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
            k = int(round(f * len(x) / RATE))
            return spec[k - 3 : k + 4].max() / len(x)

        assert band(both, 220.0) > 10 * band(saw, 220.0), (band(both, 220.0), band(saw, 220.0))
        assert band(both, 466.16) > 0.3 * band(saw, 466.16)
        st = s.status()
        assert st["timing"]["callbacks"] > 100 and st["notes_received"] == 2
        assert st["channels"][0]["syllable"] == "ah" and st["channels"][0]["latency_samples"] > 0
        s.req("POST", "/api/panic")
    finally:
        if rec is not None:
            rec.close()
        rc, log = s.stop()
    assert rc == 0, log[-2000:]
