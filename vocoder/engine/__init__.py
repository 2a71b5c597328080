"""The engine: feature frames in, samples out, through the streaming int8 WaveRNN.

- :mod:`vocoder.engine.wavernn`: :class:`Vocoder`, the engine itself (compiled core,
  no GIL, no allocation while it runs).
- :mod:`vocoder.engine.kernels`: the block-sparse int8 kernels and the ISA dispatch
  (also reachable as ``vocoder.kernels``).
- :mod:`vocoder.engine.blocksparse`: the 16x4 block format the kernels and presets share.
- :mod:`vocoder.engine.presets`: voice preset files (format, validation, search, writing).
- :mod:`vocoder.engine.predict`: the LPC and pitch predictor of the engine, from Python.
- :mod:`vocoder.engine.reference`: the same network in numpy, the definition tests
  compare the compiled engine against.
"""

from .wavernn import Vocoder, compiled_model

__all__ = ["Vocoder", "compiled_model"]
