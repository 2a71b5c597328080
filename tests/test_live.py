"""The live host without an audio server: the callback fed MIDI in-process, event
placement, routing, callback statistics, ``vocoder devices`` with no server, the embedding
API's block-size invariance, and ``vocoder bench live``. The same host against a real
JACK server: test_live_jack.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from vocoder.hosts import live

from helpers import REPO, drive_voice, subprocess_env

RATE = 48000
BLOCK = 128


EVENTS = [  # (sample position, method, args)
    (100, "note_on", (60, 100)),
    (2500, "pitch_bend", (0.5,)),
    (4000, "control", (1, 90)),
    (7001, "note_on", (64, 80)),
    (9000, "note_off", (60,)),
    (12000, "note_off", (64,)),
    (15007, "note_on", (67, 110)),
    (16000, "control", (11, 40)),
    (19999, "panic", ()),
    (21000, "note_on", (55, 100)),
    (23000, "note_off", (55,)),
]


def _render_in_blocks(preset, block, n=24000):
    import vocoder

    v = vocoder.Voice(preset, sample_rate=RATE, seed=3)
    v.lyrics("twin kle twin kle lit tle star")
    return drive_voice(v, EVENTS, n, blocks=(block,))


def test_embedding_api_renders_the_same_samples_whatever_the_block_sizes(live_preset):
    ref = _render_in_blocks(live_preset, 4096)
    assert np.all(np.isfinite(ref)) and np.any(ref != 0)
    for block in (1, 7, 64, 128):
        out = _render_in_blocks(live_preset, block)
        bad = np.flatnonzero(out != ref)
        assert bad.size == 0, f"block {block}: first differing sample {bad[0]}"


def test_host_callback_with_a_real_voice_matches_replay(live_preset):
    """LiveHost's callback, fed MIDI from a fake source, gives replay()'s samples."""
    import vocoder

    msgs = [([0x90, 60, 100], 0.0), ([0xE0, 0, 80], 0.004), ([0x80, 60, 0], 0.3), ([0x90, 62, 90], 0.1)]
    src = FakeMidi()
    host = live.LiveHost(
        [vocoder.Voice(live_preset, sample_rate=RATE, seed=1)], [0] * 16, RATE, src, channels=2, event_log=64
    )
    out = np.zeros((BLOCK, 2), np.float32)
    chunks = []
    for i in range(300):
        if i in (10, 100, 200, 250):
            src.pending.append(msgs.pop(0))
        host.callback(out, BLOCK, None, None)
        assert np.array_equal(out[:, 0], out[:, 1])
        chunks.append(out[:, 0].copy())
    got = np.concatenate(chunks)
    ref = live.replay(vocoder.Voice(live_preset, sample_rate=RATE, seed=1), host.logged_events(), got.shape[0])
    assert host.logged_events().shape[0] == 4 and host.stats.errors == 0
    assert np.array_equal(got, ref)


class FakeMidi:
    def __init__(self):
        self.pending = []

    def get_message(self):
        return self.pending.pop(0) if self.pending else None


class CallLog:
    """A stand-in voice that records its calls."""

    latency_samples = 0
    syllable = ""
    dropped_events = 0
    underrun_samples = 0

    def __init__(self, fail=False):
        self.calls = []
        self.fail = fail

    def __getattr__(self, name):
        if name in ("note_on", "note_off", "pitch_bend", "control", "panic", "lyrics"):
            return lambda *a: self.calls.append((name,) + a)
        raise AttributeError(name)

    def render(self, out):
        if self.fail:
            raise RuntimeError("boom")
        out.fill(0.25)


def test_events_are_placed_by_their_timestamps_and_clamped_into_the_block():
    v = CallLog()
    src = FakeMidi()
    host = live.LiveHost([v], [0] * 16, RATE, src)
    out = np.zeros((BLOCK, 1), np.float32)
    # Deltas: an old message, then two 1 ms apart; the newest is taken as just arrived.
    src.pending = [([0x90, 60, 100], 0.0), ([0xB0, 1, 64], 0.050), ([0xE0, 0, 127], 0.001), ([0x80, 60, 0], 0.001)]
    host.callback(out, BLOCK, None, None)
    assert np.all(out == 0.25)
    names = [c[0] for c in v.calls]
    assert names == ["note_on", "control", "pitch_bend", "note_off"]
    offs = [c[-1] for c in v.calls]
    assert offs[0] == 0  # 52 ms old: clamped to the block start
    assert offs[3] == BLOCK - 1  # newest: end of the block
    assert offs[3] - offs[2] in (47, 48, 49) and offs[2] - offs[1] in (47, 48, 49)  # 1 ms = 48 samples
    assert v.calls[2][1] == (127 * 128 - 8192) / 8192  # one bend scale for files and keyboards
    assert v.calls[0][1:3] == (60, 100)


def test_channel_routing_commands_and_a_failing_voice_never_raise():
    a, b = CallLog(), CallLog(fail=True)
    names, routing = live.parse_channels(["1=alto", "10=bass"], None)
    assert names == ["alto", "bass"] and routing[0] == 0 and routing[9] == 1 and routing[1] is None
    src = FakeMidi()
    host = live.LiveHost([a, b], routing, RATE, src)
    src.pending = [([0x90, 60, 100], 0.0), ([0x99, 36, 100], 0.0), ([0x91, 61, 100], 0.0), ([0xF8], 0.0)]
    host.post("panic")
    host.post("control", 1, 64, 0, voice=0)
    out = np.ones((BLOCK, 2), np.float32)
    host.callback(out, BLOCK, None, None)  # voice b raises in render: silence, counted
    assert np.all(out == 0) and host.stats.errors == 1
    assert a.calls == [("panic",), ("control", 1, 64, 0), ("note_on", 60, 100, BLOCK - 1)]
    assert b.calls == [("panic",), ("note_on", 36, 100, BLOCK - 1)]
    assert live.parse_channels(None, "x") == (["x"], [0] * 16)
    assert live.parse_channels(["2=a"], "b")[1] == [1, 0] + [1] * 14
    for bad in (["0=a"], ["17=a"], ["1"], ["1=a", "1=b"], ["x=a"]):
        with pytest.raises(live.LiveError):
            live.parse_channels(bad, None)


def test_callback_stats_quantiles_and_engine_underruns():
    st = live.CallbackStats()
    for i in range(1000):
        slow = i >= 998
        # wall, render wall, CPU, render CPU; one callback late only because it did not run
        st.add(
            time.perf_counter(),
            1.5 if slow else 0.1,
            1.4 if slow else 0.08,
            1.2 if slow else 0.1,
            1.1 if slow else 0.08,
        )
    st.add(time.perf_counter(), 3.0, 0.05, 0.1, 0.05)
    assert st.engine_underruns == 2 and st.host_overruns == 2 and st.slow_callbacks == 3
    assert st.max_load == 3.0 and st.engine_max == 1.1 and st.engine_wall_max == 1.4
    assert st.quantile(0.5) == pytest.approx(0.1025, abs=0.003)
    assert st.quantile(0.99) < 0.11 and st.quantile(0.5, engine=True) == pytest.approx(0.0825, abs=0.003)
    # The engine's time is the render calls' CPU time; their wall time is kept beside it.
    assert st.quantile(1.0, engine=True) == 1.1 and st.quantile(1.0, engine=True, wall=True) == 1.4
    summary = st.summary()
    assert [w["wall"] for w in summary["worst"][:3]] == [3.0, 1.5, 1.5]
    assert summary["underrun_at"] == [998, 999] and summary["engine_max"] == 1.1


def test_find_port():
    ports = ["system:midi_capture_1", "vsend:out", "Keystation 49:Keystation 49 MIDI 1 24:0"]
    assert live.find_port(ports, "vsend:out") == 1
    assert live.find_port(ports, "Keystation") == 2
    assert live.find_port(ports, "0") == 0
    assert live.find_port(ports, "nope") is None
    assert live.find_port([], None) is None


def test_devices_without_a_server_or_sequencer_still_lists(tmp_path):
    env = subprocess_env()
    env["JACK_DEFAULT_SERVER"] = f"no-such-server-{uuid.uuid4().hex[:6]}"
    env["JACK_NO_START_SERVER"] = "1"
    r = subprocess.run(
        [sys.executable, "-m", "vocoder", "devices"], capture_output=True, text=True, env=env, cwd=str(REPO), timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert "MIDI (jack):" in r.stdout and "MIDI (alsa):" in r.stdout and "Audio devices" in r.stdout


def test_a_midi_burst_is_spread_over_callbacks():
    v = CallLog()
    src = FakeMidi()
    host = live.LiveHost([v], [0] * 16, RATE, src)
    src.pending = [([0xB0, 1, i % 128], 0.0001) for i in range(300)]
    out = np.zeros((BLOCK, 1), np.float32)
    counts = []
    for _ in range(4):
        host.callback(out, BLOCK, None, None)
        counts.append(len(v.calls))
    assert counts == [128, 256, 300, 300]
    assert [c[2] for c in v.calls] == [i % 128 for i in range(300)]


def test_bench_live_runs_and_reports_every_case(live_preset_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "vocoder",
            "bench",
            "live",
            "--json",
            "--seconds",
            "0.2",
            "--no-load",
            "--preset",
            str(live_preset_path),
        ],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=str(REPO),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    recs = json.loads(r.stdout)
    assert [(x["frames"], x["voices"]) for x in recs] == [(f, v) for f in (64, 128, 256) for v in (1, 4)]
    for x in recs:
        assert x["paced"] and x["errors"] == 0 and x["dropped_events"] == 0
        assert 0 < x["engine_median"] <= x["median"] <= x["p99"] <= x["p999"] <= x["max"]
