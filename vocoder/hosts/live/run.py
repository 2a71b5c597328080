"""``vocoder live``: the main loop (:func:`run_live`) and its command-line helpers."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import threading
import time

import numpy as np

from ..render import read_lyrics
from .devices import LiveError, _PortProbe, find_port, open_midi_in
from .host import LiveHost
from .osc import OscControl
from .realtime import set_sched_fifo

#: GIL switch interval while the stream runs. When render returns (or a callback starts)
#: while another thread runs Python (the status line, OSC), the audio thread waits up to
#: this long for the GIL: at 0.5 ms that was 0.19 of a 128-frame period at 48 kHz, seen
#: once every few seconds with the status line on; at 0.1 ms it measured 0.04-0.10.
SWITCH_INTERVAL = 0.0001


def parse_channels(specs, default_preset):
    """``["1=alto", "2=bass"]`` -> (preset names in voice order, 16-entry routing).
    Without specs every channel goes to ``default_preset`` (omni). With specs, channels
    not named go to ``default_preset`` only if it was given explicitly (not None)."""
    names, routing = [], [None] * 16
    for spec in specs or ():
        ch, sep, preset = spec.partition("=")
        if not sep or not ch.strip().isdigit() or not preset.strip():
            raise LiveError(f"--channel {spec!r}: expected CH=PRESET with CH in 1..16")
        c = int(ch)
        if not 1 <= c <= 16:
            raise LiveError(f"--channel {spec!r}: channel must be 1..16")
        if routing[c - 1] is not None:
            raise LiveError(f"--channel {spec!r}: channel {c} is routed twice")
        names.append(preset.strip())
        routing[c - 1] = len(names) - 1
    if not specs:
        names.append(default_preset or "default")
        routing = [0] * 16
    elif default_preset is not None:
        names.append(default_preset)
        routing = [len(names) - 1 if r is None else r for r in routing]
    return names, routing


def _pick_device(sd, device, api):
    """The output device: --device as given, else with --api jack the JACK host API's
    default output when PortAudio has one (so audio and MIDI share a server)."""
    if device is not None:
        return int(device) if str(device).isdigit() else device
    if api == "jack":
        for ha in sd.query_hostapis():
            if "JACK" in ha["name"] and ha["default_output_device"] >= 0:
                return ha["default_output_device"]
    return None


def run_live(args, out=sys.stderr) -> int:
    """The ``vocoder live`` main loop. Returns the exit status."""
    import vocoder

    def say(s):
        print(s, file=out, flush=True)

    if not hasattr(vocoder, "Voice"):
        raise LiveError("this build has no vocoder.Voice (the compiled live core); rebuild: pip install -e .")
    names, routing = parse_channels(args.channel, args.preset)
    lyrics = read_lyrics(args.lyrics)
    rate = int(args.rate)
    cache = {}

    def load(name):
        if name not in cache:
            cache[name] = vocoder.load_preset(name)
        return cache[name]

    def make_voice(name, index):
        v = vocoder.Voice(load(name), sample_rate=rate, seed=int(args.seed) + index)
        if lyrics:
            v.lyrics(lyrics)
        return v

    voices = [make_voice(n, i) for i, n in enumerate(names)]

    try:
        import sounddevice as sd
    except (ImportError, OSError) as e:
        raise LiveError(f"sounddevice unavailable ({e}); install libportaudio2 and sounddevice") from None
    device = _pick_device(sd, args.device, args.api)
    try:
        info = sd.query_devices(device, "output")
    except (ValueError, sd.PortAudioError) as e:
        if device is None:
            raise LiveError(
                "no audio output device (no sound card, and no JACK server for PortAudio to "
                "use?); see `vocoder devices`"
            ) from None
        raise LiveError(f"audio output device {args.device!r}: {e}; see `vocoder devices`") from None
    channels = max(1, min(2, int(info["max_output_channels"])))

    midi, midi_desc = open_midi_in(args.api, args.midi_in, args.virtual, name=args.client_name)
    midi_port_name = None if args.virtual else midi_desc.split("'")[1]
    probe = _PortProbe(args.api) if midi_port_name else None
    total = 0
    host = LiveHost(
        voices, routing, rate, midi, channels=channels, event_log=args.event_log_size if args.event_log else 0
    )

    stop = threading.Event()
    reason = ["stopped"]

    def on_signal(signum, frame):
        reason[0] = signal.Signals(signum).name
        stop.set()

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    old_switch = sys.getswitchinterval()
    osc = None
    stream = None
    code = 0
    vanished = False
    # The audio callback needs the GIL, and this thread takes it ten times a second: if
    # the OS preempted it while holding it (a busy machine), the callback would wait a
    # whole scheduler tick. SCHED_FIFO at the lowest priority (where allowed) prevents
    # that; the OSC thread, made from this one, inherits it. Both sleep nearly always.
    housekeeping_rt = set_sched_fifo(1)
    try:
        try:
            stream = sd.OutputStream(
                samplerate=rate,
                blocksize=int(args.blocksize),
                device=device,
                channels=channels,
                dtype="float32",
                callback=host.callback,
                latency="low",
                finished_callback=lambda: None,
            )
        except sd.PortAudioError as e:
            raise LiveError(
                f"cannot open audio output {info['name']!r} at {rate} Hz, block {args.blocksize}: {e}"
            ) from None
        if args.osc_port is not None:
            osc = OscControl(host, args.osc_port, make_voice, log=say).start()
        lat_engine = max(v.latency_samples for v in voices)
        lat_dev = stream.latency * rate
        total = lat_engine + int(args.blocksize) + lat_dev
        say(
            f"vocoder live: {len(voices)} voice(s) "
            + ", ".join(
                f"ch {','.join(str(c + 1) for c in range(16) if routing[c] == i) if routing.count(i) < 16 else 'all'}"
                f"={n}"
                for i, n in enumerate(names)
            )
        )
        say(
            f"  MIDI in: {midi_desc}   audio out: {info['name']!r} ({channels} ch, {rate} Hz, block {args.blocksize})"
            + (f"   OSC: 127.0.0.1:{osc.port}" if osc else "")
        )
        say(
            f"  latency: engine+singer {lat_engine} + block {args.blocksize} + device {lat_dev:.0f} "
            f"= {total:.0f} samples = {1000 * total / rate:.1f} ms"
        )
        # The callback is Python: keep the collector off the objects made at start-up (a
        # full collection of them takes milliseconds, inside whichever callback triggers
        # it), and let the audio thread get the GIL back quickly after render.
        gc.collect()
        gc.freeze()
        sys.setswitchinterval(SWITCH_INTERVAL)
        stream.start()
        t_start = time.monotonic()
        next_status = t_start + 1.0
        next_port_check = t_start + 1.0
        port_gone = False
        tty = out.isatty() if hasattr(out, "isatty") else False
        last_n, last_progress = -1, t_start
        while not stop.wait(0.1):
            now = time.monotonic()
            if host.stats.n != last_n:
                last_n, last_progress = host.stats.n, now
            # Gone: PortAudio stopped the stream, or the callbacks stopped coming.
            if not stream.active or now - last_progress > 2.0:
                vanished = True
                reason[0] = "audio device vanished"
                break
            if args.duration and now - t_start >= args.duration:
                reason[0] = "duration reached"
                break
            if midi_port_name and now >= next_port_check:
                next_port_check = now + 1.0
                alive = probe is None or probe.listed(midi_port_name)
                if not alive and not port_gone:
                    port_gone = True
                    host.post("panic")  # a keyboard unplugged mid-note: no stuck note
                    say(f"\nMIDI port {midi_port_name!r} vanished: all notes off; waiting for it")
                elif alive and port_gone:
                    port_gone = False
                    host.set_midi(None)
                    try:
                        midi.close_port()
                        idx = find_port(midi.get_ports(), midi_port_name)
                        midi.open_port(idx, "in")
                        say(f"MIDI port {midi_port_name!r} is back")
                    except Exception as e:
                        say(f"MIDI port {midi_port_name!r} is back but cannot be opened: {e}")
                    host.set_midi(midi)
            if args.status and now >= next_status:
                next_status = now + 1.0
                line = host.status_line()
                print(("\r" + line + "   ") if tty else line, file=out, end="" if tty else "\n", flush=True)
        if tty and args.status:
            print(file=out)
    finally:
        # No stuck note: every voice gets a panic, and while the device lives it plays
        # the release before the stream stops.
        host.set_midi(None)
        host.post("panic")
        if stream is not None and stream.active and not vanished:
            time.sleep(min(0.5, 2 * (max(v.latency_samples for v in voices) + int(args.blocksize)) / rate + 0.05))
        if osc is not None:
            osc.close()
        for s, h in old_handlers.items():
            signal.signal(s, h)
        # With the device gone (a JACK server that died) PortAudio's and rtmidi's teardown
        # would wait on it forever: leave those to the OS (os._exit below).
        # The stream first: closing rtmidi's JACK client holds the GIL during a server
        # round trip, which would make the last callbacks wait.
        if not vanished:
            if stream is not None:
                try:
                    stream.stop()
                    stream.close()
                except Exception:
                    pass
            try:
                midi.close_port()
                midi.delete()
            except Exception:
                pass
            if probe is not None:
                probe.close()
        # Only now that no callback runs: back to the ordinary scheduling.
        sys.setswitchinterval(old_switch)
        gc.unfreeze()
        if housekeeping_rt:
            set_sched_fifo(None)
    summary = host.stats.summary()
    summary.update(
        dropped_events=host.dropped_events,
        midi_events=host.midi_events,
        samples=host.position,
        voice_latency_samples=max(v.latency_samples for v in voices),
        voice_underrun_samples=host.voice_underrun_samples,
        period_frames=int(args.blocksize),
        sample_rate=rate,
        latency_samples=int(total),
        reason=reason[0],
    )
    say(
        f"vocoder live: {reason[0]}; {summary['callbacks']} callbacks, load median "
        f"{100 * summary['median']:.1f}% p99.9 {100 * summary['p999']:.1f}% max {100 * summary['max']:.1f}%, "
        f"engine underruns {summary['engine_underruns']} (host overruns {summary['host_overruns']}, "
        f"late callbacks {summary['slow_callbacks']}, "
        f"xruns {summary['xruns']}), "
        f"dropped events {summary['dropped_events']}"
    )
    if args.stats_json:
        with open(args.stats_json, "w") as f:
            json.dump(summary, f, indent=1)
    if args.event_log:
        np.save(args.event_log, host.logged_events())
    if vanished:
        code = 3
        # PortAudio's JACK client hangs or asserts at exit once its server is gone: skip
        # its teardown (the OS reclaims the rest).
        sys.stdout.flush()
        out.flush()
        os._exit(code)
    try:
        sd._terminate()
    except Exception:
        pass
    return code
