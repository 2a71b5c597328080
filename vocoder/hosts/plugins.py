"""Voice plugins: finding, checking and loading them (the plugin ABI, ext/plugin/vocoder_plugin.h).

A voice plugin is a shared library exporting ``vocoder_plugin_entry``; see docs/serve.md
for a complete minimal plugin. The host finds them in

- the directories of ``VOCODER_PLUGIN_PATH`` (``os.pathsep``-separated; every ``*.so``
  file in them), and
- the Python entry point group ``vocoder.plugins``: each entry point loads to a path (str
  or ``pathlib.Path``) of a library, or to a function returning one, so a pip package
  can ship a plugin::

      [project.entry-points."vocoder.plugins"]
      saw = "mypkg:library_path"

plus the built-in WaveRNN voice (id ``vocoder.wavernn``), which is always there.

Third-party code is probed before this process runs any of it: a child process loads
the library, checks the descriptor, instantiates it (with the preset asked for),
renders a few blocks with a note and destroys it. A library with the wrong ABI version,
a missing symbol, an instantiate that fails, crashes or hangs is refused with a message
naming it, and the host goes on. Only a library that passed is dlopen'ed here. (A
plugin that crashes later, in render, can still take the host down: it runs in the
audio thread of this process; the probe makes that unlikely, not impossible.)

``vocoder plugins`` lists what is installed, with the result of each check.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PluginInfo",
    "PluginError",
    "BUILTIN_ID",
    "plugin_path",
    "discover",
    "probe",
    "list_plugins",
    "load_descriptor",
    "find_plugin",
    "make_voice",
    "WaveRNNVoice",
    "PluginVoice",
    "main",
]

BUILTIN_ID = "vocoder.wavernn"
ENTRY_POINT_GROUP = "vocoder.plugins"
PROBE_TIMEOUT = float(os.environ.get("VOCODER_PLUGIN_PROBE_TIMEOUT", "20"))


def _plugin_module():
    from vocoder import _plugin

    return _plugin


class PluginError(Exception):
    """A plugin refused; the message names the library and the reason."""


@dataclass
class PluginInfo:
    id: str | None
    name: str | None
    version: str | None
    abi_version: int | None
    path: str
    source: str  # "built in", "VOCODER_PLUGIN_PATH", "entry point NAME"
    ok: bool
    error: str | None = None
    latency: int | None = None

    def to_json(self) -> dict:
        return asdict(self)


def plugin_path() -> list:
    raw = os.environ.get("VOCODER_PLUGIN_PATH", "")
    return [Path(p) for p in raw.split(os.pathsep) if p.strip()]


def discover(warn=None) -> list:
    """(path, source) of every candidate library, in search order, without loading any."""
    out, seen = [], set()
    for d in plugin_path():
        if not d.is_dir():
            if warn:
                warn(f"VOCODER_PLUGIN_PATH: {d} is not a directory")
            continue
        for f in sorted(d.glob("*.so")):
            if f.is_file() and f.resolve() not in seen:
                seen.add(f.resolve())
                out.append((str(f), "VOCODER_PLUGIN_PATH"))
    try:
        from importlib.metadata import entry_points

        eps: Any = entry_points(group=ENTRY_POINT_GROUP)
    except Exception as e:  # a broken installed distribution must not stop the host
        eps = []
        if warn:
            warn(f"entry points {ENTRY_POINT_GROUP!r} unreadable: {e}")
    for ep in eps:
        try:
            obj = ep.load()
            p = obj() if callable(obj) else obj
            p = Path(p)
        except Exception as e:
            if warn:
                warn(f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP!r} failed: {e}")
            continue
        if p.resolve() not in seen:
            seen.add(p.resolve())
            out.append((str(p), f"entry point {ep.name}"))
    return out


# ---------------------------------------------------------------- probing in a child
_probe_cache: dict = {}
_probe_lock = threading.Lock()


def _signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def probe(path, preset=None, sample_rate: int = 48000, timeout: float | None = None) -> PluginInfo:
    """Check the library at ``path`` in a child process; never raises for the plugin's faults.
    ``timeout`` (default $VOCODER_PLUGIN_PROBE_TIMEOUT or 20 s): a probe running longer is a hang."""
    path = str(path)
    if timeout is None:
        timeout = float(os.environ.get("VOCODER_PLUGIN_PROBE_TIMEOUT", PROBE_TIMEOUT))
    try:
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_mtime_ns, st.st_size, preset, sample_rate)
    except OSError as e:
        return PluginInfo(None, None, None, None, path, "", False, f"{path}: {e.strerror}")
    with _probe_lock:
        if key in _probe_cache:
            return _probe_cache[key]
    cmd = [sys.executable, "-m", "vocoder.hosts.plugins", "--probe", path, "--rate", str(int(sample_rate))]
    if preset is not None:
        cmd += ["--preset", str(preset)]
    env = dict(os.environ)
    # the child imports this same package
    pkg_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    info: PluginInfo | None
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        info = PluginInfo(
            None,
            None,
            None,
            None,
            path,
            "",
            False,
            f"{path}: the probe did not finish in {timeout:.0f} s (instantiate or render hangs)",
        )
    else:
        info = None
        lines = [ln for ln in r.stdout.decode("utf-8", "replace").splitlines() if ln.startswith("{")]
        if r.returncode < 0:
            info = PluginInfo(
                None,
                None,
                None,
                None,
                path,
                "",
                False,
                f"{path}: the plugin crashed the probe process ({_signal_name(-r.returncode)})",
            )
        elif lines:
            try:
                d = json.loads(lines[-1])
                info = PluginInfo(
                    d.get("id"),
                    d.get("name"),
                    d.get("version"),
                    d.get("abi_version"),
                    path,
                    "",
                    bool(d.get("ok")),
                    d.get("error"),
                    d.get("latency"),
                )
            except (ValueError, TypeError):
                info = None
        if info is None:
            tail = r.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            info = PluginInfo(
                None, None, None, None, path, "", False, f"{path}: the probe failed (exit {r.returncode}): {tail[0]}"
            )
    with _probe_lock:
        _probe_cache[key] = info
    return info


def _probe_here(path: str, preset, rate: int) -> dict:
    """The child's side of probe(): load, instantiate, render a note, destroy."""
    import numpy as np

    P = _plugin_module()
    try:
        d = P.load_library(path)
        inst = d.instantiate(rate, preset_path=preset, seed=0, max_block=4096)
    except P.PluginError as e:
        return {"ok": False, "error": str(e)}
    out = np.zeros(512, np.float32)
    inst.event(P.EV_LYRIC, syllable="la")
    inst.event(P.EV_NOTE_ON, note=57, value=100)
    for _ in range(8):
        inst.render(out)
        if not np.all(np.isfinite(out)):
            inst.close()
            return {"ok": False, "error": f"{path}: plugin {d.id!r} rendered non-finite samples"}
    inst.event(P.EV_NOTE_OFF, note=57)
    inst.event(P.EV_PANIC)
    inst.render(out)
    lat = int(inst.latency)
    inst.close()
    return {"ok": True, "id": d.id, "name": d.name, "version": d.version, "abi_version": d.abi_version, "latency": lat}


# ---------------------------------------------------------------- the built-in voice
def builtin_info() -> PluginInfo:
    P = _plugin_module()
    return PluginInfo(
        BUILTIN_ID, "WaveRNN singing voice (built in)", "1.0", P.ABI_VERSION, "(built in)", "built in", True, None, None
    )


def list_plugins(do_probe: bool = True, warn=None) -> list:
    """PluginInfo for the built-in voice and every library found (probed when do_probe)."""
    out = [builtin_info()]
    for path, source in discover(warn=warn):
        if do_probe:
            info = probe(path)
        else:
            info = PluginInfo(None, None, None, None, path, source, False, "not probed")
        info.source = source
        out.append(info)
    return out


_descriptors: dict = {}


def load_descriptor(path, preset=None, sample_rate: int = 48000):
    """The checked Descriptor of the library at ``path``, after a probe in a child process
    (with this preset and rate) passed. Raises PluginError naming the library."""
    info = probe(path, preset=preset, sample_rate=sample_rate)
    if not info.ok:
        raise PluginError(info.error or f"{path}: refused")
    P = _plugin_module()
    key = os.path.realpath(str(path))
    if key not in _descriptors:
        try:
            _descriptors[key] = P.load_library(str(path))
        except P.PluginError as e:
            raise PluginError(str(e)) from None
    return _descriptors[key]


def find_plugin(plugin_id: str, warn=None) -> str:
    """The library path of the plugin with id ``plugin_id`` (or a path given directly)."""
    if plugin_id == BUILTIN_ID:
        return BUILTIN_ID
    if os.sep in plugin_id and Path(plugin_id).is_file():
        return plugin_id
    refused: list = []
    for path, _source in discover(warn=warn):
        if plugin_id in (path, Path(path).name, Path(path).stem):
            return path
        info = probe(path)
        if info.ok and info.id == plugin_id:
            return path
        if not info.ok:
            refused.append(info.error)
    more = f"; refused libraries: {'; '.join(refused)}" if refused else ""
    raise PluginError(
        f"no plugin {plugin_id!r} found (VOCODER_PLUGIN_PATH={os.environ.get('VOCODER_PLUGIN_PATH', '')!r}, "
        f"entry point group {ENTRY_POINT_GROUP!r}); `vocoder plugins` lists them{more}"
    )


# ---------------------------------------------------------------- voices for a host
def _event(kind, **kw) -> tuple:
    return (kind, kw)


class WaveRNNVoice:
    """The built-in voice on a channel: vocoder.Voice's note planner (held notes, legato,
    lyric syllables) makes phoneme plans; the compiled voice renders them as a plugin."""

    plugin_id = BUILTIN_ID

    def __init__(self, preset="default", sample_rate: int = 48000, seed: int = 0):
        import vocoder

        P = _plugin_module()
        p = vocoder.load_preset(preset) if isinstance(preset, (str, os.PathLike)) else preset
        self.preset_name = p.config.get("name", str(preset))
        self.voice = vocoder.Voice(p, sample_rate=sample_rate, seed=seed)
        dcap, icap = self.voice._core.plugin_capsules()
        self.instance = P.wrap_instance(P.builtin_descriptor(dcap), icap, self.voice)
        self.latency = int(self.instance.latency)
        self.syllable = ""

    def _commands(self, commands) -> list:
        from vocoder.singer.planner import BEND, CC, GLIDE, NOTE, PANIC, RELEASE  # the singer's command kinds

        P = _plugin_module()
        out = []
        for c in commands:
            k = c.kind
            if k == NOTE:
                out.append(
                    _event(
                        P.EV_NOTE_ON,
                        note=c[1],
                        value=c[2],
                        nucleus=c[4],
                        onset=c.onset,
                        flags=P.EVF_PLAN | (P.EVF_LEGATO if c.legato else 0),
                    )
                )
            elif k == GLIDE:
                out.append(_event(P.EV_NOTE_ON, note=c[1], flags=P.EVF_LEGATO))
            elif k == RELEASE:
                out.append(_event(P.EV_NOTE_OFF, coda=c.coda, flags=P.EVF_PLAN))
            elif k == BEND:
                out.append(_event(P.EV_BEND, value=c[2]))
            elif k == CC:
                out.append(_event(P.EV_CC, cc=c[3], value=c[2]))
            elif k == PANIC:
                out.append(_event(P.EV_PANIC))
        syl = self.voice._planner.syllable
        self.syllable = "" if syl is None else (syl.text or ("ah" if syl.phones == ("AA",) else " ".join(syl.phones)))
        return out

    def lyrics(self, text: str) -> None:
        self.voice._planner.set_lyrics(text)

    @property
    def upcoming(self) -> str:
        return self.voice.upcoming

    def note_on(self, note, velocity=100) -> list:
        return self._commands(self.voice._planner.note_on(float(note), float(velocity)))

    def note_off(self, note) -> list:
        return self._commands(self.voice._planner.note_off(float(note)))

    def bend(self, value) -> list:
        return self._commands(self.voice._planner.bend(float(value)))

    def control(self, cc, value) -> list:
        return self._commands(self.voice._planner.control(int(cc), float(value)))

    def panic(self) -> list:
        return self._commands(self.voice._planner.panic())


class PluginVoice:
    """A third-party plugin on a channel: notes as they come, lyric syllables one per new note."""

    def __init__(self, descriptor, sample_rate: int = 48000, seed: int = 0, preset=None):
        self.plugin_id = descriptor.id
        self.preset_name = str(preset) if preset is not None else ""
        self.instance = descriptor.instantiate(sample_rate, preset_path=preset, seed=seed)
        self.latency = int(self.instance.latency)
        self._sylls: list = []
        self._pos = 0
        self._held: list = []
        self.syllable = ""

    def lyrics(self, text: str) -> None:
        self._sylls = [s for s in text.replace("-", " ").split() if s]
        self._pos = 0

    @property
    def upcoming(self) -> str:
        return self._sylls[self._pos % len(self._sylls)] if self._sylls else ""

    def note_on(self, note, velocity=100) -> list:
        P = _plugin_module()
        if velocity <= 0:
            return self.note_off(note)
        legato = bool(self._held)
        self._held = [n for n in self._held if n != note] + [note]
        syl = ""
        if not legato and self._sylls:
            syl = self._sylls[self._pos % len(self._sylls)]
            self._pos += 1
        if not legato:
            self.syllable = syl
        return [
            _event(
                P.EV_NOTE_ON, note=float(note), value=float(velocity), syllable=syl, flags=P.EVF_LEGATO if legato else 0
            )
        ]

    def note_off(self, note) -> list:
        P = _plugin_module()
        if note not in self._held:
            return []
        self._held.remove(note)
        if self._held:
            return [_event(P.EV_NOTE_ON, note=float(self._held[-1]), value=100.0, flags=P.EVF_LEGATO)]
        self.syllable = ""
        return [_event(P.EV_NOTE_OFF, note=float(note))]

    def bend(self, value) -> list:
        return [_event(_plugin_module().EV_BEND, value=float(value))]

    def control(self, cc, value) -> list:
        P = _plugin_module()
        if int(cc) in (120, 123):
            return self.panic()
        return [_event(P.EV_CC, cc=int(cc), value=float(value))]

    def panic(self) -> list:
        self._held = []
        self.syllable = ""
        return [_event(_plugin_module().EV_PANIC)]


def make_voice(plugin_id: str = BUILTIN_ID, preset=None, sample_rate: int = 48000, seed: int = 0, warn=None):
    """A voice ready for a channel: the built-in one on a preset, or a third-party plugin
    (found by id or path, probed in a child first). Raises PluginError / PresetError /
    ValueError with a message naming what failed."""
    if plugin_id in (BUILTIN_ID, "wavernn", "", None):
        return WaveRNNVoice(preset or "default", sample_rate=sample_rate, seed=seed)
    path = find_plugin(plugin_id, warn=warn)
    desc = load_descriptor(path, preset=preset, sample_rate=sample_rate)
    try:
        return PluginVoice(desc, sample_rate=sample_rate, seed=seed, preset=preset)
    except _plugin_module().PluginError as e:
        raise PluginError(str(e)) from None


# ---------------------------------------------------------------- command line
def format_table(infos) -> str:
    lines = [f"{'id':24s} {'version':9s} {'abi':4s} {'status':8s} source / path"]
    for i in infos:
        status = "ok" if i.ok else "REFUSED"
        lines.append(
            f"{(i.id or '?'):24s} {(i.version or '?'):9s} {str(i.abi_version or '?'):4s} {status:8s} "
            f"{i.source}: {i.path}"
        )
        if not i.ok and i.error:
            lines.append(f"{'':24s} {i.error}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m vocoder.hosts.plugins --probe LIB``: the child side of probe()."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m vocoder.hosts.plugins")
    ap.add_argument("--probe", metavar="LIB", required=True)
    ap.add_argument("--preset")
    ap.add_argument("--rate", type=int, default=48000)
    a = ap.parse_args(argv)
    try:
        res = _probe_here(a.probe, a.preset, a.rate)
    except Exception as e:  # report, never a traceback as the only message
        res = {"ok": False, "error": f"{a.probe}: {type(e).__name__}: {e}"}
    sys.stdout.write(json.dumps(res) + "\n")
    sys.stdout.flush()
    return 0 if res.get("ok") else 3


if __name__ == "__main__":
    sys.exit(main())
