"""The real-time side of ``vocoder serve``: 16 channels of plugin voices mixed by the
compiled host (ext/plugin/host.c through vocoder._plugin.Host), and the clock that
drives it: an audio device through sounddevice (JACK, ALSA, the PortAudio default) or,
with ``--api none``, a paced thread that renders into nothing so status and timing
stay meaningful.

Voices are built and checked off the audio thread (in a worker thread of the event
loop), then posted to the mixer, which swaps them in at a block boundary with a short
crossfade; the voice let go of is collected and destroyed here, off the audio thread.
Events reach the mixer through its lock-free queues; the callback allocates nothing
in C, takes no lock, never raises.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

CHANNELS = 16


class AudioError(Exception):
    """The audio device could not be opened; the message names it."""


class Channel:
    def __init__(self, index: int):
        self.index = index
        self.voice = None  # WaveRNNVoice / PluginVoice (vocoder.hosts.plugins)
        self.loaded_at: float | None = None
        self.seed = 0
        self.notes = 0

    def to_json(self, host) -> dict:
        v = self.voice
        d = {
            "channel": self.index + 1,
            "plugin": None,
            "preset": None,
            "syllable": "",
            "upcoming": "",
            "latency_samples": None,
            "notes_received": self.notes,
            "peak": round(float(host.peak(self.index)), 4),
            "swapping": bool(host.swapping(self.index)),
            "events_dropped": int(host.dropped(self.index)),
        }
        if v is not None:
            d.update(
                plugin=v.plugin_id,
                preset=v.preset_name,
                syllable=v.syllable,
                upcoming=v.upcoming,
                latency_samples=v.latency,
                seed=self.seed,
            )
            inner = getattr(v, "voice", None)
            if inner is not None:
                d["events_dropped"] += int(inner.dropped_events)
                d["underrun_samples"] = int(inner.underrun_samples)
        return d


class AudioHost:
    """The mixer, its clock and the channels. Control methods run on one thread (the
    event loop's); the clock's thread only renders."""

    def __init__(
        self,
        api: str = "none",
        sample_rate: int = 48000,
        blocksize: int = 256,
        device=None,
        crossfade_ms: float = 10.0,
        log=None,
    ):
        from vocoder import _plugin

        self.api = api
        self.sample_rate = int(sample_rate)
        self.blocksize = int(blocksize)
        self.device = device
        self.log = log or (lambda *a, **k: None)
        self.mixer = _plugin.Host(
            max_block=max(self.blocksize, 1024), crossfade=max(1, int(crossfade_ms * 1e-3 * self.sample_rate))
        )
        self.channels = [Channel(i) for i in range(CHANNELS)]
        self.xruns = 0
        self.errors = 0
        self.notes = 0
        self._stream: Any = None
        self._clocked = False
        self._buf = np.zeros(max(self.blocksize, 1), np.float32)
        self.device_name = "none"
        self.started = time.time()

    # ---- the clock
    def start(self) -> None:
        if self.api == "none":  # a C thread paced by the monotonic clock (ext/plugin/host.c)
            self.mixer.clock_start(self.blocksize, self.sample_rate)
            self._clocked = True
            return
        try:
            import sounddevice as sd
        except (ImportError, OSError) as e:
            raise AudioError(
                f"sounddevice unavailable ({e}); install libportaudio2 and sounddevice, or run with --api none"
            ) from None
        device = self.device
        if device is None and self.api == "jack":
            for ha in sd.query_hostapis():
                if "JACK" in ha["name"] and ha["default_output_device"] >= 0:
                    device = ha["default_output_device"]
            if device is None:
                raise AudioError("no JACK output device (is jackd running? JACK_DEFAULT_SERVER?)")
        elif device is None and self.api == "alsa":
            for ha in sd.query_hostapis():
                if "ALSA" in ha["name"] and ha["default_output_device"] >= 0:
                    device = ha["default_output_device"]
        elif device is not None and str(device).isdigit():
            device = int(device)
        try:
            info = sd.query_devices(device, "output")
            channels = min(2, int(info["max_output_channels"])) or 1
            self._channels_out = channels
            self._stream = sd.OutputStream(
                samplerate=self.sample_rate,
                blocksize=self.blocksize,
                device=device,
                channels=channels,
                dtype="float32",
                callback=self._callback,
                latency="low",
            )
            self._stream.start()
        except (ValueError, sd.PortAudioError) as e:
            which = repr(device) if device is not None else "(the default output device)"
            raise AudioError(
                f"cannot open audio output {which} ({self.api}) at {self.sample_rate} Hz, "
                f"block {self.blocksize}: {e}; `vocoder devices` lists the devices, "
                "--api none runs without one"
            ) from None
        self.device_name = info["name"]

    def _callback(self, outdata, frames, time_info, status) -> None:
        try:
            if status and status.output_underflow:
                self.xruns += 1
            buf = self._buf if frames <= self._buf.shape[0] else np.zeros(frames, np.float32)
            b = buf[:frames]
            self.mixer.render(b)
            for c in range(outdata.shape[1]):
                outdata[:, c] = b
        except Exception:  # never into PortAudio
            self.errors += 1
            outdata.fill(0)

    def stop(self) -> None:
        """Panic every channel, let the silence reach the output, stop the clock, destroy voices."""
        for ch in self.channels:
            if ch.voice is not None:
                self.send(ch.index, ch.voice.panic())
        time.sleep(max(3 * self.blocksize / self.sample_rate, 0.02))
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception:
                pass
            self._stream = None
        if self._clocked:
            self.mixer.clock_stop()
            self._clocked = False
        for inst in self.mixer.release_all():
            inst.close()
        for ch in self.channels:
            ch.voice = None

    # ---- control
    def send(self, ch: int, events) -> int:
        """Hand events (from a voice's note_on etc.) to channel ch's mixer queue; returns how many were dropped."""
        dropped = 0
        for kind, kw in events:
            if not self.mixer.send(ch, kind, **kw):
                dropped += 1
        return dropped

    def try_swap(self, ch: int, voice) -> bool:
        """Post voice (None: silence) to channel ch; False while the last swap is unfinished."""
        self.collect()
        ok = self.mixer.swap(ch, voice.instance if voice is not None else None)
        if ok:
            self.channels[ch].voice = voice
            self.channels[ch].loaded_at = time.time()
        return ok

    def collect(self) -> int:
        """Destroy the voices the mixer has let go of (here, off the audio thread)."""
        n = 0
        for c in range(CHANNELS):
            inst = self.mixer.collect(c)
            if inst is not None:
                inst.close()
                n += 1
        return n

    # ---- status
    def timing(self, window_s: float | None = None) -> dict:
        """Callback time statistics over the latest callbacks (all kept, or those of the last window_s seconds)."""
        t = self.mixer.times_ns()
        period = self.blocksize / self.sample_rate
        if window_s is not None:
            t = t[-max(1, int(window_s / period)) :]
        if t.size == 0:
            return {
                "callbacks": int(self.mixer.callbacks),
                "period_ms": round(period * 1e3, 3),
                "median_ms": None,
                "p999_ms": None,
                "max_ms": None,
                "load_median": None,
                "load_p999": None,
            }
        ms = t.astype(np.float64) * 1e-6
        med, p999, mx = float(np.median(ms)), float(np.quantile(ms, 0.999)), float(ms.max())
        return {
            "callbacks": int(self.mixer.callbacks),
            "period_ms": round(period * 1e3, 3),
            "median_ms": round(med, 4),
            "p999_ms": round(p999, 4),
            "max_ms": round(mx, 4),
            "load_median": round(med * 1e-3 / period, 4),
            "load_p999": round(p999 * 1e-3 / period, 4),
            "window": int(t.size),
        }

    def status(self, window_s: float | None = None) -> dict:
        chans = [c.to_json(self.mixer) for c in self.channels]
        return {
            "api": self.api,
            "device": self.device_name,
            "sample_rate": self.sample_rate,
            "blocksize": self.blocksize,
            "timing": self.timing(window_s),
            "xruns": int(self.xruns),
            "callback_errors": int(self.errors),
            "late_wakeups": int(self.mixer.clock_late),
            "clock_realtime": self.mixer.clock_realtime,
            "events_dropped": sum(c["events_dropped"] for c in chans),
            "notes_received": self.notes,
            "channels": chans,
        }
