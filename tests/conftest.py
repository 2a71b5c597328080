"""Shared fixtures: small random presets (fast to build, quantize and run).

Plain helper functions (driving a voice with a script of events, the environment of a
``python -m vocoder`` subprocess) are in ``helpers.py``.
"""

import pytest

from vocoder import Preset, load_preset, save_preset
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


@pytest.fixture(params=["plain", "pred"], scope="session")
def voice_preset(request):
    """A small voice that can sing (26 features: f0, voicing, 24 envelope bands), in the
    two kinds a Voice runs: plain mu-law, and the remainder after the LPC and pitch
    predictor (whose state lives in each voice)."""
    extra = dict(predictor="lpc+pitch", preemphasis=0.6, temperature_unvoiced=0.5) if request.param == "pred" else {}
    return random_preset(hidden=64, density=0.25, n_features=26, hop=80, seed=5, head="mulaw", mulaw_bits=8, **extra)


@pytest.fixture(scope="session")
def small_preset_path(tmp_path_factory):
    """A small singing preset saved to a file, for the command line and render_file."""
    p = random_preset(hidden=64, density=0.25, n_features=26, hop=80, seed=11)
    return str(save_preset(p, tmp_path_factory.mktemp("presets") / "small.safetensors"))


@pytest.fixture(scope="session")
def ranged_preset_path(small_preset_path, tmp_path_factory):
    """The small preset with a trained range of C3..F#4 (48..66), as singer data carries it."""
    p = load_preset(small_preset_path)
    cfg = p.config
    cfg["singer"] = {
        "phonemes": ["AA"],
        "envelopes": [[-8.0] * 24],
        "voicing": [1.0],
        "durations": [0.2],
        "pitch_range": [48, 66],
    }
    return str(save_preset(Preset(cfg, p.tensors, p.layers), tmp_path_factory.mktemp("ranged") / "ranged.safetensors"))


@pytest.fixture(scope="session")
def live_preset():
    """The live host's test voice (dual head, 26 features)."""
    return random_preset(hidden=64, n_features=26, hop=80, seed=5)


@pytest.fixture(scope="session")
def live_preset_path(live_preset, tmp_path_factory):
    return save_preset(live_preset, tmp_path_factory.mktemp("preset") / "live.safetensors")
