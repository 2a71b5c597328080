"""vocoder: a real-time neural singing vocoder host for the CPU.

The public API, imported lazily so that ``import vocoder`` stays cheap::

    import vocoder
    p = vocoder.load_preset("default")      # a name in presets/ or a path
    v = vocoder.Vocoder(p, seed=0)          # the streaming WaveRNN engine
    audio = v.vocode(features)

    song = vocoder.read_song("song.mid")    # MIDI / karaoke / MusicXML with lyrics (vocoder.score)
    s = vocoder.Singer(p, seed=0)           # events -> feature frames, streaming (vocoder.singer)
    s.push(vocoder.Event.note_on(0.0, 60)); frames = s.frames(100)
    vocoder.render_file("song.mid", "song.wav", preset="default")   # the whole job (vocoder.hosts.render)

The subpackages follow the data flow:

- :mod:`vocoder.score`: events and lyrics, read from MIDI / MusicXML or made by hand;
- :mod:`vocoder.singer`: events to per-frame conditioning (f0, loudness, envelope);
- :mod:`vocoder.engine`: the streaming WaveRNN, its int8 kernels and the preset files;
- :mod:`vocoder.hosts`: what drives voices: render to a file, ``Voice`` for your own
  audio callback, ``vocoder live``;
- :mod:`vocoder.bench` (``vocoder bench``), :mod:`vocoder.train` (``pip install .[train]``),
  :mod:`vocoder.testing` (random presets for tests and benchmarks).

``vocoder.kernels`` (that is, :mod:`vocoder.engine.kernels`) holds the block-sparse int8
kernels and the ISA dispatch.
"""

from ._version import __version__

_LAZY = {
    "load_preset": ("vocoder.engine.presets", "load_preset"),
    "save_preset": ("vocoder.engine.presets", "save_preset"),
    "Preset": ("vocoder.engine.presets", "Preset"),
    "PresetError": ("vocoder.engine.presets", "PresetError"),
    "Vocoder": ("vocoder.engine.wavernn", "Vocoder"),
    "Singer": ("vocoder.singer", "Singer"),
    "SingerOptions": ("vocoder.singer", "SingerOptions"),
    "SingerParams": ("vocoder.singer", "SingerParams"),
    "Event": ("vocoder.score.events", "Event"),
    "Song": ("vocoder.score.events", "Song"),
    "SongError": ("vocoder.score.events", "SongError"),
    "read_song": ("vocoder.score.events", "read_song"),
    "read_midi": ("vocoder.score.events", "read_midi"),
    "read_musicxml": ("vocoder.score.events", "read_musicxml"),
    "render_file": ("vocoder.hosts.render", "render_file"),
    "Voice": ("vocoder.hosts.voice", "Voice"),
    "VoiceGroup": ("vocoder.hosts.voice", "VoiceGroup"),
}

# Modules reached as attributes (``vocoder.kernels.active_level()``) without importing them
# first: the stage subpackages, ``kernels`` (the one module the public API names by its
# short path), and the attributes the flat package offered before the stages
# (``from vocoder import render`` still works; new code imports from the stage).
_SUBMODULES = {
    "kernels": "vocoder.engine.kernels",
    **{name: f"vocoder.{name}" for name in ("score", "singer", "engine", "hosts", "bench", "train", "testing")},
    "presets": "vocoder.engine.presets",
    "reference": "vocoder.engine.reference",
    "blocksparse": "vocoder.engine.blocksparse",
    "events": "vocoder.score.events",
    "lyrics": "vocoder.score.lyrics",
    "render": "vocoder.hosts.render",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(_SUBMODULES[name])
    raise AttributeError(f"module 'vocoder' has no attribute {name!r}")


__all__ = [
    "load_preset",
    "save_preset",
    "Preset",
    "PresetError",
    "Vocoder",
    "Voice",
    "VoiceGroup",
    "Singer",
    "SingerOptions",
    "SingerParams",
    "Event",
    "Song",
    "SongError",
    "read_song",
    "read_midi",
    "read_musicxml",
    "render_file",
    "__version__",
]
