"""Voice presets: one safetensors file per voice, validated field by field on load.

::

    import vocoder
    p = vocoder.load_preset("default")           # a name on the search path, or a file path
    p.sample_rate, p.hidden, p.feature_names      # the config, as read-only views
    vocoder.save_preset(p, "copy.safetensors")    # validated again, written atomically

One job a module:

- :mod:`~vocoder.engine.presets.format`: what a file holds (tensor names, config keys,
  shapes); its docstring is the format's reference.
- :mod:`~vocoder.engine.presets.validate`: checking a config and its tensors, trusting nothing.
- :mod:`~vocoder.engine.presets.preset`: the :class:`Preset` object, and
  :func:`preset_from_float`, which quantizes and packs float weights into one.
- :mod:`~vocoder.engine.presets.reader`, :mod:`~vocoder.engine.presets.writer`: the file.
- :mod:`~vocoder.engine.presets.search`: names to files (:func:`preset_search_path`).

Random presets for tests and benchmarks: :func:`vocoder.testing.random_preset`.
"""

from .format import (
    FORMAT_VERSION,
    SUFFIX,
    PresetError,
    SparseLayer,
    default_feature_names,
    expected_dense_shapes,
    expected_matrix_shapes,
)
from .preset import Preset, preset_from_float
from .search import ENV_PATH, list_presets, load_preset, preset_search_path
from .validate import check_config
from .writer import save_preset

__all__ = [
    "ENV_PATH",
    "FORMAT_VERSION",
    "SUFFIX",
    "Preset",
    "PresetError",
    "SparseLayer",
    "check_config",
    "default_feature_names",
    "expected_dense_shapes",
    "expected_matrix_shapes",
    "list_presets",
    "load_preset",
    "preset_from_float",
    "preset_search_path",
    "save_preset",
]
