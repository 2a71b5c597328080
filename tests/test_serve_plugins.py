"""The voice plugin ABI (ext/plugin/vocoder_plugin.h): a C plugin compiled here, found
through VOCODER_PLUGIN_PATH, loaded and heard; broken plugins refused by name; the
built-in WaveRNN voice through the same ABI and mixer gives the samples of vocoder.Voice."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAW_C = ROOT / "tests" / "plugin_saw.c"
RATE = 48000

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build the test plugins")


def build_plugin(out: Path, *defines) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        "gcc",
        "-shared",
        "-fPIC",
        "-O2",
        "-Wall",
        "-I",
        str(ROOT / "ext" / "plugin"),
        *defines,
        "-o",
        str(out),
        str(SAW_C),
        "-lm",
    ]
    subprocess.run(cmd, check=True, timeout=60)
    return out


@pytest.fixture(scope="session")
def plugin_dirs(tmp_path_factory):
    """good/: the sawtooth; bad/: one library per way of being broken."""
    base = tmp_path_factory.mktemp("plugins")
    build_plugin(base / "good" / "saw.so")
    build_plugin(base / "bad" / "abi.so", "-DSAW_ABI=99", '-DSAW_ID="test.abi"')
    build_plugin(base / "bad" / "noentry.so", "-DSAW_NO_ENTRY")
    build_plugin(base / "bad" / "fail.so", "-DSAW_FAIL", '-DSAW_ID="test.fail"')
    build_plugin(base / "bad" / "crash.so", "-DSAW_CRASH", '-DSAW_ID="test.crash"')
    build_plugin(base / "bad" / "hang.so", "-DSAW_HANG", '-DSAW_ID="test.hang"')
    (base / "bad" / "notelf.so").write_bytes(b"this is not a shared library\n")
    return base / "good", base / "bad"


@pytest.fixture
def plugin_env(plugin_dirs, monkeypatch):
    good, bad = plugin_dirs
    monkeypatch.setenv("VOCODER_PLUGIN_PATH", os.pathsep.join([str(good), str(bad)]))
    monkeypatch.setenv("VOCODER_PLUGIN_PROBE_TIMEOUT", "4")
    return good, bad


def peak_hz(x: np.ndarray, rate: int = RATE) -> float:
    x = x - x.mean()
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=len(x) * 4))
    k = int(np.argmax(spec[1:])) + 1
    return k * rate / (len(x) * 4)


def test_saw_plugin_is_found_loaded_and_heard(plugin_env):
    from vocoder.hosts import plugins

    v = plugins.make_voice("test.saw", sample_rate=RATE, seed=0)
    assert v.plugin_id == "test.saw" and v.latency == 0
    out = np.zeros(RATE // 2, np.float32)
    v.instance.event(*_ev(v.note_on(69, 100)[0]))
    v.instance.render(out)
    tail = out[RATE // 8 :]
    assert np.all(np.isfinite(out)) and np.abs(tail).max() > 0.1
    assert abs(peak_hz(tail) - 440.0) < 2.0
    v.instance.close()


def _ev(e):
    kind, kw = e
    return (
        kind,
        kw.get("offset", 0),
        kw.get("note", 0),
        kw.get("value", 0),
        kw.get("cc", 0),
        kw.get("flags", 0),
        kw.get("nucleus", 0),
        kw.get("onset", ()),
        kw.get("coda", ()),
        kw.get("syllable", ""),
    )


def test_saw_through_the_mixer_with_a_swap(plugin_env):
    """Events through the host's queues; a voice swapped in at a block boundary, the old one collected."""
    from vocoder import _plugin
    from vocoder.hosts import plugins

    host = _plugin.Host(max_block=256, crossfade=480)
    a = plugins.make_voice("test.saw", sample_rate=RATE)
    assert host.swap(0, a.instance)
    for e in a.note_on(57, 127):  # A3, 220 Hz
        assert host.send(0, e[0], **e[1])
    out = np.zeros(RATE // 2, np.float32)
    for k in range(0, out.size, 128):
        host.render(out[k : k + 128])
    assert abs(peak_hz(out[RATE // 8 :]) - 220.0) < 2.0
    # swap to a second instance playing another note: a crossfade, then the old one comes back
    b = plugins.make_voice("test.saw", sample_rate=RATE)
    assert host.swap(0, b.instance)
    assert not host.swap(0, None)  # one swap at a time
    for e in b.note_on(64, 127):
        host.send(0, e[0], **e[1])
    for k in range(0, out.size, 128):
        host.render(out[k : k + 128])
    got = host.collect(0)
    assert got is a.instance and not got.attached
    got.close()
    assert abs(peak_hz(out[RATE // 8 :]) - 440.0 * 2 ** ((64 - 69) / 12)) < 2.0
    assert host.current_tag(0) == b.instance.tag
    assert host.callbacks == 2 * (out.size // 128 + (out.size % 128 > 0))
    assert host.times_ns().size > 0
    for i in host.release_all():
        i.close()


def test_broken_plugins_are_refused_by_name(plugin_env):
    from vocoder.hosts import plugins

    infos = {Path(i.path).name: i for i in plugins.list_plugins()}
    assert infos["saw.so"].ok and infos["saw.so"].id == "test.saw"
    expect = {
        "abi.so": "ABI version 99",
        "noentry.so": "no symbol 'vocoder_plugin_entry'",
        "fail.so": "instantiate failed: this test plugin always refuses",
        "crash.so": "crashed the probe process (SIGSEGV)",
        "notelf.so": "cannot load",
        "hang.so": "did not finish in 4 s",
    }
    for name, words in expect.items():
        i = infos[name]
        assert not i.ok, name
        assert name in i.error and words in i.error, (name, i.error)
    # loading one directly is refused with the same message; this process is unharmed
    for name in expect:
        with pytest.raises(plugins.PluginError, match=name):
            plugins.make_voice(str(plugin_env[1] / name))
    assert plugins.make_voice("test.saw").latency == 0


def test_plugins_command_lists_with_checks(plugin_env):
    r = subprocess.run(
        [sys.executable, "-m", "vocoder", "plugins"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr
    assert "vocoder.wavernn" in r.stdout and "test.saw" in r.stdout
    assert r.stdout.count("REFUSED") == 6 and "SIGSEGV" in r.stdout


def test_wavernn_builtin_plugin_gives_the_voice_samples():
    """The built-in voice through the ABI and the mixer: the samples vocoder.Voice gives
    alone (after the mixer's fade-in from silence)."""
    import vocoder
    from vocoder import _plugin
    from vocoder.hosts.plugins import WaveRNNVoice

    preset = vocoder.load_preset("default")
    ref = vocoder.Voice(preset, sample_rate=RATE, seed=3)
    ref.lyrics("la la")
    host = _plugin.Host(max_block=256, crossfade=64)
    v = WaveRNNVoice(preset, sample_rate=RATE, seed=3)
    v.lyrics("la la")
    assert host.swap(1, v.instance)
    n, block = 9600, 192
    a = np.zeros(n, np.float32)
    b = np.zeros(n, np.float32)
    for k in range(0, n, block):
        if k == 960:
            ref.note_on(60, 100)
            for e in v.note_on(60, 100):
                host.send(1, e[0], **e[1])
        if k == 960 * 6:
            ref.note_off(60)
            for e in v.note_off(60):
                host.send(1, e[0], **e[1])
        ref.render(a[k : k + block])
        host.render(b[k : k + block])
    assert v.syllable == "" and np.abs(a[960:]).max() > 0.01
    np.testing.assert_array_equal(a[64:], b[64:])
    for i in host.release_all():
        i.close()


def test_plugin_found_through_an_entry_point(tmp_path):
    """A pip-installed package names its library in the `vocoder.plugins` entry point group."""
    lib = build_plugin(tmp_path / "pkg" / "sawpkg" / "saw_ep.so", '-DSAW_ID="org.example.ep"')
    site = tmp_path / "site"
    (site / "sawpkg").mkdir(parents=True)
    (site / "sawpkg" / "__init__.py").write_text(f"def library_path():\n    return {str(lib)!r}\n")
    dist = site / "sawpkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sawpkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[vocoder.plugins]\nsaw = sawpkg:library_path\nbroken = sawpkg:nothing\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)]), "VOCODER_PLUGIN_PATH": ""}
    r = subprocess.run(
        [sys.executable, "-m", "vocoder", "plugins", "--json"], capture_output=True, text=True, timeout=120, env=env
    )
    assert r.returncode == 0, r.stderr
    infos = {i["id"]: i for i in json.loads(r.stdout)}
    assert infos["org.example.ep"]["ok"] and infos["org.example.ep"]["source"] == "entry point saw"
    assert "entry point 'broken'" in r.stderr  # a broken entry point is named, the others still listed
