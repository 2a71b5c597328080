"""``vocoder.kernels``: the public name of :mod:`vocoder.engine.kernels` (one module, two paths).

``import vocoder.kernels`` and ``from vocoder import kernels`` give the very module object
of :mod:`vocoder.engine.kernels`, so state set through one name is seen through the other.
"""

import sys

from .engine import kernels as _kernels

sys.modules[__name__] = _kernels
