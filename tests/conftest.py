"""Shared fixtures: small random presets (fast to build, quantize and run)."""

import pytest

from vocoder.testing import random_preset


@pytest.fixture(scope="session")
def dual_preset():
    """Dual head, H=64, 8 features, hop 40: a few ms to build, a fraction of a second to run."""
    return random_preset(hidden=64, density=0.25, head="dual", n_features=8, hop=40, seed=1)


@pytest.fixture(scope="session")
def mulaw_preset():
    return random_preset(hidden=64, density=0.25, head="mulaw", mulaw_bits=9, n_features=8, hop=40, seed=2)


@pytest.fixture(scope="session")
def tiny_preset():
    """The smallest sensible preset (a ~15 kB file) for the mutation tests, which load hundreds."""
    return random_preset(hidden=16, density=0.5, head="dual", n_features=4, hop=16, cond_hidden=8, seed=3)
