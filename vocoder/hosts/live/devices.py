"""MIDI ports and audio devices: listing them (``vocoder devices``), opening a MIDI input,
and :class:`LiveError`, the error a user can fix (no such port, no such device)."""

from __future__ import annotations

import os
import sys

#: MIDI APIs ``--api`` accepts, as python-rtmidi constants' names.
MIDI_APIS = {"jack": "API_UNIX_JACK", "alsa": "API_LINUX_ALSA"}


class LiveError(Exception):
    """A problem the user can fix (no such port, no such device, bad routing)."""


# ---------------------------------------------------------------------------------------
# MIDI ports and audio devices
# ---------------------------------------------------------------------------------------


def _rtmidi_api(api: str):
    import rtmidi

    if api not in MIDI_APIS:
        raise LiveError(f"unknown MIDI API {api!r}; choose one of {', '.join(MIDI_APIS)}")
    return getattr(rtmidi, MIDI_APIS[api])


def list_midi_ports(api: str) -> dict:
    """``{"inputs": [...], "outputs": [...]}`` for one API, or ``{"error": message}``.

    ALSA raises SystemError where there is no sequencer (no /dev/snd/seq); JACK gives no
    ports, or an error, when no JACK server runs. Neither is fatal for a listing.
    """
    try:
        import rtmidi

        rapi = _rtmidi_api(api)
        if rapi not in rtmidi.get_compiled_api():
            return {"error": f"python-rtmidi was built without the {api} API"}
        mi = rtmidi.MidiIn(rapi, "vocoder-devices")
        try:
            ins = mi.get_ports()
        finally:
            mi.delete()
        mo = rtmidi.MidiOut(rapi, "vocoder-devices")
        try:
            outs = mo.get_ports()
        finally:
            mo.delete()
        return {"inputs": ins, "outputs": outs}
    except ImportError as e:
        return {"error": f"python-rtmidi is not installed ({e})"}
    except (SystemError, OSError, RuntimeError) as e:  # rtmidi.RtMidiError derives from Exception
        return {"error": f"{type(e).__name__}: {e}".strip()}
    except Exception as e:  # rtmidi's own error types
        return {"error": f"{type(e).__name__}: {e}".strip()}


def list_audio_devices() -> dict:
    """``{"devices": [{index, name, hostapi, inputs, outputs, default_rate}], "default_output": i}``
    or ``{"error": message}`` (PortAudio missing: ``apt-get install libportaudio2``)."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as e:
        return {"error": f"sounddevice unavailable ({e}); install libportaudio2 and sounddevice"}
    apis = sd.query_hostapis()
    devs = []
    for i, d in enumerate(sd.query_devices()):
        devs.append(
            dict(
                index=i,
                name=d["name"],
                hostapi=apis[d["hostapi"]]["name"],
                inputs=d["max_input_channels"],
                outputs=d["max_output_channels"],
                default_rate=d["default_samplerate"],
            )
        )
    try:
        default_out = sd.default.device[1]
    except Exception:
        default_out = -1
    return {"devices": devs, "default_output": default_out}


class _QuietStderr:
    """Send file descriptor 2 to /dev/null for a while: the JACK and ALSA C libraries
    print their own probing messages there ("Cannot connect to server socket", "ALSA
    lib seq_hw.c ..."), which say nothing the listing does not say better."""

    def __enter__(self):
        sys.stderr.flush()
        try:
            self.saved = os.dup(2)
            null = os.open(os.devnull, os.O_WRONLY)
        except OSError:  # no fd 2 to save: nothing to hide
            self.saved = None
            return self
        os.dup2(null, 2)
        os.close(null)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)
        return False


def format_devices(apis=("jack", "alsa")) -> str:
    """The text of ``vocoder devices``: MIDI ports per API and the audio devices, with
    the libraries' own stderr noise hidden (an unusable API gets one line saying why)."""
    with _QuietStderr():
        midi = {api: list_midi_ports(api) for api in apis}
        a = list_audio_devices()
    lines = []
    for api in apis:
        r = midi[api]
        lines.append(f"MIDI ({api}):")
        if "error" in r:
            lines.append(f"  unavailable: {r['error']}")
            continue
        lines.append(f"  inputs (vocoder live --api {api} --midi-in NAME):")
        lines += [f"    {i}: {n}" for i, n in enumerate(r["inputs"])] or ["    (none)"]
        lines.append("  outputs (ports that take MIDI):")
        lines += [f"    {i}: {n}" for i, n in enumerate(r["outputs"])] or ["    (none)"]
    lines.append("Audio devices (vocoder live --device N|NAME):")
    if "error" in a:
        lines.append(f"  unavailable: {a['error']}")
    else:
        for d in a["devices"]:
            mark = "*" if d["index"] == a["default_output"] else " "
            lines.append(
                f"  {mark}{d['index']:2d}: {d['name']} [{d['hostapi']}] "
                f"{d['inputs']} in, {d['outputs']} out, {d['default_rate']:g} Hz"
            )
        if not a["devices"]:
            lines.append("  (none)")
    return "\n".join(lines)


def open_midi_in(api: str = "jack", port=None, virtual: bool = False, name: str = "vocoder", queue_size: int = 8192):
    """Open a python-rtmidi input: the port whose name equals ``port``, else the one that
    contains it, else the one at that index; or a virtual port named ``name`` that other
    programs connect to. Returns ``(midi_in, port_description)``."""
    import rtmidi

    rapi = _rtmidi_api(api)
    try:
        mi = rtmidi.MidiIn(rapi, name, queue_size_limit=queue_size)
    except SystemError as e:
        raise LiveError(
            f"MIDI API {api!r} is not usable here ({e or 'no sequencer'}); "
            f"try --api {'jack' if api == 'alsa' else 'alsa'}"
        ) from None
    except Exception as e:
        raise LiveError(f"cannot open MIDI API {api!r}: {e}") from None
    mi.ignore_types(sysex=True, timing=True, active_sense=True)
    if virtual:
        try:
            mi.open_virtual_port("in")
        except Exception as e:
            mi.delete()
            raise LiveError(f"cannot create a virtual MIDI port on {api}: {e}") from None
        return mi, f"virtual port '{name}:in' ({api})"
    ports = mi.get_ports()
    idx = find_port(ports, port)
    if idx is None:
        mi.delete()
        listing = ", ".join(repr(p) for p in ports) or "none"
        raise LiveError(
            f"no MIDI input port matching {port!r} on {api} (ports: {listing}); see `vocoder devices`, or use --virtual"
        )
    try:
        mi.open_port(idx, "in")
    except Exception as e:
        mi.delete()
        raise LiveError(f"cannot open MIDI port {ports[idx]!r}: {e}") from None
    return mi, f"'{ports[idx]}' ({api})"


def find_port(ports, want):
    """Index of ``want`` in ``ports``: exact name, else an index (digits), else the first
    name that contains it.
    ``None`` for no port, or the first port when ``want`` is None."""
    if want is None:
        return 0 if ports else None
    want = str(want)
    if want in ports:
        return ports.index(want)
    if want.isdigit():
        return int(want) if int(want) < len(ports) else None
    # rtmidi's JACK API lists 'client:port'; ALSA lists 'client:port cl:po'.
    hits = [i for i, p in enumerate(ports) if want in p]
    return hits[0] if hits else None


class _PortProbe:
    """Whether a MIDI port still exists. Its own rtmidi client, made once (creating JACK
    clients reorders the graph, which can glitch the audio) and used only by the main
    thread, so the input the callback reads is never touched."""

    def __init__(self, api: str):
        import rtmidi

        try:
            self._mi = rtmidi.MidiIn(_rtmidi_api(api), "vocoder-probe")
        except Exception:
            self._mi = None

    def listed(self, name: str) -> bool:
        if self._mi is None:
            return True  # cannot tell: assume it is there
        try:
            return name in self._mi.get_ports()
        except Exception:
            return True

    def close(self):
        if self._mi is not None:
            self._mi.delete()
            self._mi = None
