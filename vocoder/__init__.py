"""vocoder: a real-time neural singing vocoder host for the CPU.

The public API, imported lazily so that ``import vocoder`` stays cheap::

    import vocoder
    p = vocoder.load_preset("default")      # a name in presets/ or a path
    v = vocoder.Vocoder(p, seed=0)          # the streaming WaveRNN engine
    audio = v.vocode(features)

    song = vocoder.read_song("song.mid")    # MIDI / karaoke / MusicXML with lyrics (vocoder.events)
    s = vocoder.Singer(p, seed=0)           # events -> feature frames, streaming (vocoder.singer)
    s.push(vocoder.Event.note_on(0.0, 60)); frames = s.frames(100)
    vocoder.render_file("song.mid", "song.wav", preset="default")   # the whole job (vocoder.render)

``vocoder.kernels`` holds the block-sparse int8 kernels and the ISA dispatch.
"""

__version__ = "0.1.0"

_LAZY = {
    "load_preset": ("vocoder.presets", "load_preset"),
    "save_preset": ("vocoder.presets", "save_preset"),
    "Preset": ("vocoder.presets", "Preset"),
    "PresetError": ("vocoder.presets", "PresetError"),
    "Vocoder": ("vocoder.engine", "Vocoder"),
    "Singer": ("vocoder.singer", "Singer"),
    "SingerOptions": ("vocoder.singer", "SingerOptions"),
    "SingerParams": ("vocoder.singer", "SingerParams"),
    "Event": ("vocoder.events", "Event"),
    "Song": ("vocoder.events", "Song"),
    "SongError": ("vocoder.events", "SongError"),
    "read_song": ("vocoder.events", "read_song"),
    "read_midi": ("vocoder.events", "read_midi"),
    "read_musicxml": ("vocoder.events", "read_musicxml"),
    "render_file": ("vocoder.render", "render_file"),
    "Voice": ("vocoder.voice", "Voice"),
    "VoiceGroup": ("vocoder.voice", "VoiceGroup"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name in ("kernels", "presets", "reference", "blocksparse", "engine", "events", "lyrics", "singer", "render"):
        import importlib

        return importlib.import_module(f"vocoder.{name}")
    raise AttributeError(f"module 'vocoder' has no attribute {name!r}")


__all__ = ["load_preset", "save_preset", "Preset", "PresetError", "Vocoder", "Voice", "VoiceGroup", "Singer", "SingerOptions", "SingerParams", "Event", "Song",
           "SongError", "read_song", "read_midi", "read_musicxml", "render_file", "__version__"]
