"""The streaming WaveRNN engine: features in, audio out, sample by sample in C.

Offline::

    import vocoder
    p = vocoder.load_preset("default")
    v = vocoder.Vocoder(p, seed=0)
    audio = v.vocode(features)          # float32 [frames, n_features] -> float32 [frames * hop]

Streaming (what an audio callback does; ``render`` releases the GIL and allocates
nothing)::

    v.feed(frames_block)                # queue frames as they arrive
    v.render(out)                       # fill a float32 buffer of any size, in place

The stream ``render`` produces starts with ``latency_samples`` of silence (the
conditioning lookahead plus the subscale lag) and then the generated audio; when the
queued frames run out it gives silence and counts it in ``underrun_samples``. State
persists across calls, so rendering in blocks of any size gives the samples of one call.
The same preset, features and seed give the same samples on every kernel level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import _engine
from . import kernels
from .kernels import BlockSparseMatrix

if TYPE_CHECKING:
    from .presets import Preset

#: Frames the engine's queue holds; ``vocode`` streams longer inputs through it.
DEFAULT_FRAME_CAPACITY = 4096


class Vocoder:
    """A WaveRNN voice, ready to run.

    Args:
        preset: a :class:`vocoder.Preset` (see :func:`vocoder.load_preset`).
        seed: seed of the engine's sampling RNG; the same seed gives the same audio.
        level: kernel level to use (default: :func:`vocoder.kernels.active_level`).
        temperature: sampling temperature of every frame (default: the preset's, which
            may differ between voiced and unvoiced frames); 0 is argmax.
        frame_capacity: frames :meth:`feed` can queue ahead of :meth:`render` (the
            queue holds a few more, for the conditioning window).
    """

    def __init__(
        self,
        preset: Preset,
        seed: int = 0,
        level: str | None = None,
        temperature: float | None = None,
        frame_capacity: int = DEFAULT_FRAME_CAPACITY,
    ) -> None:
        self.preset = preset
        self.seed = _check_seed(seed)
        self.level = kernels.active_level() if level is None else level
        level_index = kernels._level_index(self.level)
        if not isinstance(frame_capacity, int) or frame_capacity < 1:
            raise ValueError(f"frame_capacity must be a positive int, got {frame_capacity!r}")
        cfg, dense, layers = compiled_model(preset)
        if temperature is not None:
            # one temperature in every frame, voiced or not (as set_temperature does)
            cfg["temperature"] = cfg["temperature_unvoiced"] = _check_temperature(temperature)
        self._engine = _engine.Engine(dense, layers, cfg, level_index, self.seed, frame_capacity)
        self._n_features = preset.n_features

    # ---- properties -------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.preset.sample_rate

    @property
    def hop(self) -> int:
        return self.preset.hop

    @property
    def latency_samples(self) -> int:
        """Samples between a frame's audio entering and leaving the stream."""
        return int(self._engine.latency)

    @property
    def underrun_samples(self) -> int:
        """Samples of silence rendered because the queued frames ran out."""
        return int(self._engine.underrun_samples)

    @property
    def ready_samples(self) -> int:
        """Samples :meth:`render` can deliver now without running out of frames."""
        return int(self._engine.ready)

    # ---- streaming --------------------------------------------------------------
    def feed(self, features: np.ndarray) -> int:
        """Queue frames (float32 ``[n, n_features]``); returns how many were taken.

        Fewer than given are taken only when the queue is full: render first.
        """
        f = self._check_features(features)
        return int(self._engine.feed(f))

    def finish(self) -> None:
        """Mark the end of the input: the last frame covers the lookahead."""
        self._engine.finish()

    def render(self, out: np.ndarray) -> None:
        """Fill ``out`` (float32, 1-D, C-contiguous) in place with the next samples."""
        if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.ndim != 1:
            raise TypeError("out: expected a 1-D float32 numpy array")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out: array must be C-contiguous and writeable")
        self._engine.render(out)

    def reset(self, seed=None) -> None:
        """Forget all state and queued frames; restart the RNG (same seed by default)."""
        if seed is not None:
            self.seed = _check_seed(seed)
        self._engine.reset(self.seed)

    # ---- offline ----------------------------------------------------------------
    def vocode(self, features: np.ndarray) -> np.ndarray:
        """Audio for a whole feature sequence: float32 ``[frames * hop]``, aligned
        (the latency is removed). Resets the engine first, so it is deterministic."""
        f = self._check_features(features)
        self.reset()
        n_out = f.shape[0] * self.hop
        out = np.empty(n_out + self.latency_samples, np.float32)
        pos = fed = 0
        while fed < f.shape[0]:
            fed += self._engine.feed(f[fed:])
            if fed == f.shape[0]:
                break
            take = min(self._engine.ready, out.shape[0] - pos)
            self._engine.render(out[pos : pos + take])
            pos += take
        self._engine.finish()
        self._engine.render(out[pos:])
        return out[self.latency_samples :]

    def teacher_forced(self, features, audio) -> dict:
        """Logits the int8 network predicts for each sample of ``audio`` given the true
        previous samples (B = 1 presets). Same keys as
        :meth:`vocoder.engine.reference.ReferenceModel.teacher_forced`. Resets the engine."""
        from .reference import audio_to_dual, mulaw_encode, preemphasize

        if self.preset.subscale != 1:
            raise ValueError("teacher forcing needs a preset with subscale 1")
        f = self._check_features(features)
        audio = np.asarray(audio, np.float64)
        n = f.shape[0] * self.hop
        if audio.shape != (n,):
            raise ValueError(f"audio: expected {n} samples (frames * hop), got {audio.shape}")
        audio = preemphasize(audio, self.preset.preemphasis)  # what the network models
        q = self.preset.n_classes
        if self.preset.head == "dual":
            a, b = (np.ascontiguousarray(v, np.int32) for v in audio_to_dual(audio))
        elif self.preset.config["predictor"] != "none":
            # the remainder classes after the prediction from the true past; the engine
            # runs its own predictor over them (docs/model.md, "Prediction")
            from .predict import for_preset

            a = for_preset(self.preset).run(f, self.hop, q, target=audio.astype(np.float32))["target"]
            b = np.zeros(n, np.int32)
        else:
            a = np.ascontiguousarray(mulaw_encode(audio, self.preset.config["mulaw_bits"]), np.int32)
            b = np.zeros(n, np.int32)
        la = np.empty((n, q), np.float32)
        lb = np.empty((n, 256) if self.preset.head == "dual" else (1, 1), np.float32)
        self._engine.teacher_force(f, a, b, la, lb)
        self.reset()
        return {"logits_c": la, "logits_f": lb} if self.preset.head == "dual" else {"logits": la}

    # ---- helpers ----------------------------------------------------------------
    def _check_features(self, features) -> np.ndarray:
        f = np.asarray(features)
        if f.ndim != 2 or f.shape[1] != self._n_features:
            raise ValueError(f"features: expected shape (frames, {self._n_features}), got {f.shape}")
        if not np.issubdtype(f.dtype, np.number):
            raise TypeError(f"features: expected numbers, got dtype {f.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):
            return np.ascontiguousarray(f, np.float32)

    def __repr__(self) -> str:
        return (
            f"Vocoder({self.preset.meta.get('name', '?')!r}, level={self.level!r}, "
            f"latency={self.latency_samples} samples)"
        )


def compiled_model(preset):
    """``(config, dense, layers)``: what the compiled engine (and ``vocoder.Voice``) is
    built from. The matrices are packed already and validated by the preset loader; the
    kernels' wrapper adds row sums and aligned copies.

    The arrays are built once per preset object and shared by every engine made from
    it (voices of a choir hold one copy of the weights); ``config`` is a fresh dict
    each call, so callers may change it."""
    cached = getattr(preset, "_compiled_arrays", None)
    if cached is None:
        dense = {k: np.ascontiguousarray(v, np.float32).reshape(-1) for k, v in preset.tensors.items()}
        layers = {
            name: BlockSparseMatrix(layer.packed, layer.scales, layer.bias) for name, layer in preset.layers.items()
        }
        cached = (dense, layers)
        try:
            preset._compiled_arrays = cached
        except AttributeError:  # an object that takes no attributes: build every time
            pass
    cfg = preset.config
    cfg["n_classes"] = preset.n_classes
    return (cfg,) + cached


def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an int in 0..2**64-1, got {seed!r}")
    return int(seed)


def _check_temperature(t) -> float:
    t = float(t)
    if not t >= 0 or t == float("inf"):
        raise ValueError(f"temperature must be a finite number >= 0, got {t!r}")
    return t
