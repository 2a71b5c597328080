"""Benchmarks (``vocoder bench``): they print tables and plots, they are not tests.

- :mod:`vocoder.bench.kernels`: kernel speed per ISA level against numpy and scipy, and
  the engine's real-time factor.
- :mod:`vocoder.bench.live`: callback time of live singing against the period.
"""
