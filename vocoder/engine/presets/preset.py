"""The :class:`Preset` object, and :func:`preset_from_float`, which builds one from float weights."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from .. import blocksparse
from .format import META_KEYS, expected_matrix_shapes, flatten_parts, preset_error
from .validate import check_config, validate_parts


class Preset:
    """A validated voice: config, dense float tensors, block-sparse layers.

    Attributes:
        config: the JSON config (see :mod:`vocoder.engine.presets.format` and docs/model.md).
        tensors: dense float32 tensors by name (``feat_mean`` .. ``sub_bias``).
        layers: :class:`SparseLayer` by matrix name (``R``, ``O1`` ..).
        path: the file it was loaded from or saved to last, or ``None``.

    Constructing one validates everything (raising :class:`PresetError`); the arrays are
    read-only copies, so a Preset stays valid. Edit by building a new one.
    """

    def __init__(self, config: dict, tensors: dict, layers: dict, path=None):
        where = (
            str(path) if path is not None else f"<preset {config.get('name') if isinstance(config, dict) else None!r}>"
        )
        cfg, t, lay = validate_parts(config, flatten_parts(dict(tensors), dict(layers)), where)
        self._set(cfg, t, lay, path)

    @classmethod
    def _trusted(cls, config, tensors, layers, path) -> Preset:
        # For parts _validate just returned: skip validating them a second time.
        self = cls.__new__(cls)
        self._set(config, tensors, layers, path)
        return self

    def _set(self, config, tensors, layers, path):
        self._config = config
        self._tensors = tensors
        self._layers = layers
        self.path = Path(path) if path is not None else None

    # Copies, so no caller can make the config disagree with the validated arrays
    # (the engine sizes its buffers from them). The arrays themselves are read-only.
    @property
    def config(self) -> dict:
        """A copy of the JSON config; edit the copy and build a new Preset to change it."""
        return copy.deepcopy(self._config)

    @property
    def tensors(self) -> dict:
        """Dense float32 tensors by name (read-only arrays)."""
        return dict(self._tensors)

    @property
    def layers(self) -> dict:
        """:class:`SparseLayer` by matrix name."""
        return dict(self._layers)

    def validate(self) -> None:
        """Re-check everything; raises PresetError. (Presets are validated when made.)"""
        validate_parts(self._config, self.tensor_dict(), str(self.path) if self.path else f"<preset {self.name!r}>")

    def tensor_dict(self) -> dict:
        """Every tensor under its file name (``in_w``, ``R.row_ptr``, ...), as stored on disk."""
        return flatten_parts(self._tensors, self._layers)

    # Convenience views of the config.
    name = property(lambda self: self._config["name"])
    sample_rate = property(lambda self: self._config["sample_rate"])
    hop = property(lambda self: self._config["hop"])
    n_features = property(lambda self: self._config["n_features"])
    feature_names = property(lambda self: list(self._config["feature_names"]))
    hidden = property(lambda self: self._config["hidden"])
    head = property(lambda self: self._config["head"])
    subscale = property(lambda self: self._config["subscale"])
    horizon = property(lambda self: self._config["horizon"])
    lookahead = property(lambda self: self._config["lookahead"])
    ctx_before = property(lambda self: self._config["ctx_before"])
    cond_hidden = property(lambda self: self._config["cond_hidden"])
    excitation = property(lambda self: self._config["excitation"])
    preemphasis = property(lambda self: self._config["preemphasis"])
    temperature = property(lambda self: self._config["temperature"])

    @property
    def n_in(self) -> int:
        """GRU input size, ``3 + horizon + excitation``."""
        return 3 + self.horizon + self.excitation

    @property
    def context_frames(self) -> int:
        """Frames the conditioning network sees, ``K = ctx_before + 1 + lookahead``."""
        return self.ctx_before + 1 + self.lookahead

    @property
    def n_classes(self) -> int:
        """Classes per softmax: 256 (each byte of the dual head) or ``2**mulaw_bits``."""
        return 256 if self.head == "dual" else 2 ** self._config["mulaw_bits"]

    @property
    def meta(self) -> dict:
        return copy.deepcopy({k: self._config[k] for k in META_KEYS})

    @property
    def latency_samples(self) -> int:
        """Added latency: ``lookahead * hop + B * (B - 1) * F`` (docs/model.md)."""
        B, F = self.subscale, self.horizon
        return self.lookahead * self.hop + B * (B - 1) * F

    def __repr__(self) -> str:
        c = self._config
        where = f" from {self.path}" if self.path else ""
        return (
            f"<Preset {c['name']!r} v{c['version']}: {c['head']} head, H={c['hidden']}, B={c['subscale']}, "
            f"{c['sample_rate']} Hz, hop {c['hop']}{where}>"
        )


def preset_from_float(config: dict, dense_tensors: dict, float_matrices: dict) -> Preset:
    """Build a preset from float weights: what training export and :func:`vocoder.testing.random_preset` use.

    ``dense_tensors`` maps each dense tensor name to an array (converted to float32);
    ``float_matrices`` maps each matrix name (``R``, ``O1``, ...) to ``(w, bias)`` with
    ``w`` float ``[rows, cols]``. Matrices are quantized per row with
    :func:`vocoder.engine.blocksparse.quantize_rows` (which obeys the kernels' saturation rule)
    and packed, dropping all-zero 16x4 blocks, so prune by zeroing whole blocks.
    """
    where = f"<preset {config.get('name') if isinstance(config, dict) else None!r}>"
    cfg = check_config(config, where)
    mat_shapes = expected_matrix_shapes(cfg)
    missing = sorted(set(mat_shapes) - set(float_matrices))
    extra = sorted(set(float_matrices) - set(mat_shapes))
    if missing or extra:
        raise preset_error(
            where,
            "float_matrices",
            f"expected exactly {', '.join(mat_shapes)} for a {cfg['head']} head; missing {missing}, unexpected {extra}",
        )
    flat = {}
    for k, v in dense_tensors.items():
        try:
            flat[k] = np.asarray(v, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise preset_error(where, k, f"cannot convert to a float32 array: {e}") from None
    for m, (rows, cols) in mat_shapes.items():
        try:
            w, b = float_matrices[m]
        except (TypeError, ValueError):
            raise preset_error(where, m, "expected a pair (weights [rows, cols], bias [rows])") from None
        try:
            w = np.asarray(w, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise preset_error(where, m, f"cannot convert the weights to a float array: {e}") from None
        if w.shape != (rows, cols):
            raise preset_error(where, m, f"expected weights of shape [{rows}, {cols}], got {list(w.shape)}")
        if not np.all(np.isfinite(w)):
            raise preset_error(where, m, "weights hold NaN or infinite values")
        q, scales = blocksparse.quantize_rows(w)
        packed = blocksparse.pack(q, where=m)
        flat[f"{m}.row_ptr"] = packed.row_ptr
        flat[f"{m}.col_idx"] = packed.col_idx
        flat[f"{m}.blocks"] = packed.blocks
        flat[f"{m}.scales"] = scales
        flat[f"{m}.bias"] = np.asarray(b, dtype=np.float32)
    cfg, tensors, layers = validate_parts(cfg, flat, where)
    return Preset._trusted(cfg, tensors, layers, None)
