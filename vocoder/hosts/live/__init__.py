"""Live singing: MIDI in (python-rtmidi), audio out (sounddevice), the engine in between.

``vocoder live`` runs :class:`LiveHost`. The audio callback does nothing but pull the MIDI
messages that arrived since the last callback, turn each into a :class:`vocoder.Voice`
event placed sample-accurately in the block, and call ``voice.render``::

    callback start t0 (perf_counter)
      pull the pending MIDI messages, up to 128 (rtmidi's own queue, never blocks)
        its time t (from rtmidi's delta timestamps, mapped onto perf_counter)
        offset = (t - t0) * rate + frames, clamped into [0, frames)
        -> voice.note_on / note_off / pitch_bend / control(..., offset)
      voice.render(mono)           # C, GIL released, no allocation, never raises
      copy mono to every output channel
      record the callback's own time against the period

An event is placed one block after the moment it happened: a message that arrived just
as the previous callback started lands at offset 0, one that arrived just now at the end
of the block. The added latency is exactly one block, whatever the callback's jitter.
Total latency from key to sound: ``voice.latency_samples`` (engine + singer + resampler)
+ one block + the device's output latency; ``vocoder live`` prints it.

Other threads never call a Voice's event methods (its event queue has one producer, the
audio thread): OSC commands and shutdown go to the callback through a ``deque`` (append
and popleft are atomic in CPython, no lock the callback could wait on), and the
callback applies them at offset 0. Loading lyrics (parsing text into syllables) and
switching presets happen outside the callback: lyrics and the lyric cursor are plain
attribute assignments on the Python side of the Voice (no queue involved), and a new
Voice is built in the OSC thread and swapped in with one reference assignment.

One job a module:

- :mod:`~vocoder.hosts.live.host`: :class:`LiveHost`, the voices, the routing and the callback;
- :mod:`~vocoder.hosts.live.midi`: :func:`dispatch` (MIDI bytes to voice events) and :func:`replay`;
- :mod:`~vocoder.hosts.live.stats`: :class:`CallbackStats`, callback time against the period;
- :mod:`~vocoder.hosts.live.devices`: :func:`list_midi_ports`, :func:`list_audio_devices`
  (``vocoder devices``), :func:`open_midi_in`, :class:`LiveError`;
- :mod:`~vocoder.hosts.live.osc`: :class:`OscControl`, the OSC server (127.0.0.1 only);
- :mod:`~vocoder.hosts.live.run`: :func:`run_live`, the CLI's main loop (status line,
  Ctrl-C, a vanished device).
"""

from .devices import MIDI_APIS, LiveError, find_port, format_devices, list_audio_devices, list_midi_ports, open_midi_in
from .host import LiveHost
from .midi import dispatch, replay
from .osc import OscControl
from .run import parse_channels, run_live
from .stats import CallbackStats

__all__ = [
    "MIDI_APIS",
    "CallbackStats",
    "LiveError",
    "LiveHost",
    "OscControl",
    "dispatch",
    "find_port",
    "format_devices",
    "list_audio_devices",
    "list_midi_ports",
    "open_midi_in",
    "parse_channels",
    "replay",
    "run_live",
]
