"""vocoder: a real-time neural singing vocoder host for the CPU.

The public API, imported lazily so that ``import vocoder`` stays cheap::

    import vocoder
    p = vocoder.load_preset("default")      # a name in presets/ or a path
    v = vocoder.Vocoder(p, seed=0)          # the streaming WaveRNN engine
    audio = v.vocode(features)

``vocoder.kernels`` holds the block-sparse int8 kernels and the ISA dispatch.
"""

__version__ = "0.1.0"

_LAZY = {
    "load_preset": ("vocoder.presets", "load_preset"),
    "save_preset": ("vocoder.presets", "save_preset"),
    "Preset": ("vocoder.presets", "Preset"),
    "PresetError": ("vocoder.presets", "PresetError"),
    "Vocoder": ("vocoder.engine", "Vocoder"),
    "Voice": ("vocoder.voice", "Voice"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name in ("kernels", "presets", "reference", "blocksparse", "engine"):
        import importlib

        return importlib.import_module(f"vocoder.{name}")
    raise AttributeError(f"module 'vocoder' has no attribute {name!r}")


__all__ = ["load_preset", "save_preset", "Preset", "PresetError", "Vocoder", "Voice", "__version__"]
