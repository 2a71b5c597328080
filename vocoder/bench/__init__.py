"""Benchmarks (``vocoder bench``): they print tables and plots, they are not tests.

- :mod:`vocoder.bench.kernels`: kernel speed per ISA level against numpy and scipy.
- :mod:`vocoder.bench.engine`: the engine's real-time factor, with the kernels' share.
- :mod:`vocoder.bench.live`: callback time of live singing against the period.
"""
