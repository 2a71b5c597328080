"""Linear prediction from the features: what a predictor preset's network does not model.

A preset with ``predictor = "lpc+pitch"`` (docs/model.md, "Prediction") generates the
pre-emphasised signal ``s`` as a prediction plus a remainder the network samples:

* short-term: 16 LPC coefficients from the frame's envelope bands (mel bands -> power
  spectrum with the pre-emphasis tilt -> autocorrelation -> -40 dB white-noise
  correction -> 50 Hz lag window -> Levinson-Durbin, reflections clamped to 0.999);
* long-term: the short-term residual one pitch period ago (lag ``sample_rate / f0``,
  4-tap Lagrange interpolation), times ``ltp_gain * voicing``.

Everything is computed by the compiled routine the engine runs (``ext/engine/predict.c``),
so training data, the float reference and the engine share its bits::

    p = vocoder.engine.predict.for_preset(preset)
    lpc, taps, lag = p.frames(features)                   # per frame
    run = p.run(features, preset.hop, preset.n_classes, target=signal, noise=offsets)
    run["target"], run["in_s"], run["in_p"], run["in_e"]  # classes per sample
"""

from __future__ import annotations

import numpy as np

from .._engine import Predictor, mulaw_table

__all__ = ["Predictor", "for_preset", "mulaw_table", "class_thresholds", "nearest_class", "ORDER"]

#: LPC order of the short-term predictor.
ORDER = 16


def for_preset(preset) -> Predictor:
    """The predictor a preset's engine runs (its rate, envelope bands, pre-emphasis and
    pitch gain). Raises ValueError for a preset without one."""
    cfg = preset.config
    if cfg.get("predictor", "none") == "none":
        raise ValueError(f"preset {preset.name!r} has no predictor")
    return Predictor(cfg["sample_rate"], cfg["n_features"] - 2, cfg["preemphasis"], cfg["ltp_gain"])


def class_thresholds(n_classes: int) -> np.ndarray:
    """The ``n_classes - 1`` float32 values halfway between neighbouring mu-law classes."""
    t = mulaw_table(n_classes)
    return (np.float32(0.5) * (t[:-1] + t[1:])).astype(np.float32)


def nearest_class(values, n_classes: int) -> np.ndarray:
    """The class whose value is nearest each value (the engine's rule; NaN -> n/2)."""
    v = np.asarray(values, np.float32)
    k = np.searchsorted(class_thresholds(n_classes), v, side="right").astype(np.int64)
    return np.where(np.isnan(v), n_classes // 2, k)
