"""Voice presets: one safetensors file per voice, validated field by field on load.

A preset ``<name>.safetensors`` holds

* the network of ``docs/model.md`` as tensors: dense float32 tensors (``feat_mean``,
  ``feat_std``, ``cond1_w``, ``cond1_b``, ``cond2_w``, ``cond2_b``, ``in_w``,
  ``sub_bias``, ``exc_out_w``) and block-sparse int8 matrices (``R``, ``O1`` .. ``O4``) already in the
  kernels' packed format (:mod:`vocoder.engine.blocksparse`), each as five tensors
  ``<M>.row_ptr``, ``<M>.col_idx``, ``<M>.blocks``, ``<M>.scales``, ``<M>.bias``;
* a JSON config under the safetensors metadata key ``"vocoder"``: the hyperparameters
  (which fix every tensor's shape), the feature names, and name / license / version.

The config keys (all required; :func:`load_preset` rejects missing, unknown, mistyped
and out-of-range ones):

=================  =========================================================
format_version     int, 4 (versions 1 to 3, made before the excitation, the
                   pre-emphasis and the predictor, still load and sound the same)
name               non-empty str; ``license``, ``version``, ``description``: str
sample_rate        int 8000..48000 (Hz)
hop                int 1..4096, samples per feature frame
n_features         int 1..512; ``feature_names``: that many unique str
hidden             H, even int 16..2048 (GRU units)
head               ``"dual"`` (coarse + fine bytes) or ``"mulaw"``
mulaw_bits         int 8..10 (required for both heads; used by ``mulaw``)
subscale           B, int 1..16; ``horizon``: F, 0 if B == 1 else 1..64
ctx_before         int 0..8, ``lookahead`` int 0..8: frames the conditioning sees
cond_hidden        int 1..4096, units of the conditioning network
excitation         E, int 0 or 2: per-sample pulse and sine at the pitch of feature
                   ``f0`` (then features 0, 1 must be named ``f0``, ``voicing``);
                   absent in version 1 files (read as 0)
temperature        float >= 0, default sampling temperature
preemphasis        float 0..0.99: the network models ``x[n] - a x[n-1]`` and the
                   engine de-emphasises its output (0: plain audio; absent in
                   version 1 and 2 files, read as 0)
predictor          ``"none"`` or ``"lpc+pitch"``: the network models the remainder
                   after the prediction of ``ext/engine/predict.h`` (mulaw head,
                   subscale 1, features ``f0``, ``voicing``, then envelope bands)
ltp_gain           float 0..0.99, the pitch predictor's gain at voicing 1
temperature_unvoiced  float >= 0: sampling temperature of unvoiced frames
                   (``temperature`` is that of voiced ones; linear between)
highpass_hz        float 0..200: corner of the DC blocker after the de-emphasis
                   (version 4 keys; older files read none, 0, ``temperature``, 20)
training, singer   JSON objects, free-form (provenance; front-end data)
=================  =========================================================

Safety: a preset may come from anywhere, so :func:`load_preset` trusts nothing in the
file. It never executes code (safetensors holds only raw arrays; no pickle), bounds the
memory it reads, derives every shape from the config instead of from the file, and
checks every index a kernel will follow (:func:`vocoder.engine.blocksparse.validate_packed`).
Any problem becomes a :class:`PresetError` whose message names the file and the field.
A :class:`Preset` you hold is therefore valid, and its arrays are read-only so it stays
valid.

Making presets: training export calls :func:`preset_from_float` with float matrices;
:func:`vocoder.testing.random_preset` builds a random (untrained but numerically sane)
network for tests and benchmarks. :func:`save_preset` writes atomically.

Finding presets: a name is looked up in the directories of ``VOCODER_PRESET_PATH``
(separated by ``os.pathsep``), then the repository's ``presets/``, then
``<sys.prefix>/share/vocoder/presets``; see :func:`preset_search_path`.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import blocksparse
from .blocksparse import PackedBlocks

FORMAT_VERSION = 4
SUPPORTED_FORMAT_VERSIONS = (1, 2, 3, 4)
#: What the network's remainder is predicted by (docs/model.md, "Prediction").
PREDICTORS = ("none", "lpc+pitch")
METADATA_KEY = "vocoder"
SUFFIX = ".safetensors"
#: Largest preset file we read. The largest network the config limits allow is about
#: 300 MB, so this only stops a hostile or wrong file from exhausting memory.
MAX_PRESET_BYTES = 1 << 30
ENV_PATH = "VOCODER_PRESET_PATH"

DENSE_NAMES = ("feat_mean", "feat_std", "cond1_w", "cond1_b", "cond2_w", "cond2_b", "in_w", "sub_bias", "exc_out_w")
PACKED_FIELDS = ("row_ptr", "col_idx", "blocks", "scales", "bias")

# Every config key; check_config holds the rules (summarised in the module docstring).
CONFIG_KEYS = (
    "format_version", "name", "license", "version", "description",
    "sample_rate", "hop", "n_features", "feature_names",
    "hidden", "head", "mulaw_bits", "subscale", "horizon",
    "ctx_before", "lookahead", "cond_hidden", "excitation", "temperature", "preemphasis",
    "predictor", "ltp_gain", "temperature_unvoiced", "highpass_hz",
    "training", "singer",
)
#: Excitation channel counts the network supports (docs/model.md).
EXCITATION_CHANNELS = (0, 2)
META_KEYS = ("name", "license", "version", "description", "training", "format_version")


class PresetError(ValueError):
    """A preset is missing, unreadable or invalid. The message names the file and field."""


def _fail(where: str, field: str | None, msg: str) -> PresetError:
    return PresetError(f"{where}: {field}: {msg}" if field else f"{where}: {msg}")


# --------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class SparseLayer:
    """One block-sparse int8 matrix with per-row float scales and a float bias.

    The matrix computes ``y = (int8 @ x) * scales + bias``; :meth:`dense_float` gives the
    float matrix ``int8 * scales[:, None]`` the float reference uses.
    """

    packed: PackedBlocks
    scales: np.ndarray  # float32 [rows], finite, > 0
    bias: np.ndarray    # float32 [rows], finite

    @property
    def rows(self) -> int:
        return self.packed.rows

    @property
    def cols(self) -> int:
        return self.packed.cols

    @property
    def density(self) -> float:
        """Fraction of the 16x4 blocks that are stored."""
        return self.packed.nnz_blocks / (self.packed.row_blocks * self.packed.col_blocks)

    def dense_float(self) -> np.ndarray:
        """The dequantized matrix, float32 ``[rows, cols]``."""
        return self.packed.to_dense().astype(np.float32) * self.scales[:, None]


# --------------------------------------------------------------------------- shapes


def expected_dense_shapes(config: dict) -> dict:
    """Shape of every dense float32 tensor for a (validated) config."""
    H, nf, B = config["hidden"], config["n_features"], config["subscale"]
    K = config["ctx_before"] + 1 + config["lookahead"]
    ch = config["cond_hidden"]
    return {
        "feat_mean": (nf,),
        "feat_std": (nf,),
        "cond1_w": (ch, K * nf),
        "cond1_b": (ch,),
        "cond2_w": (3 * H, ch),
        "cond2_b": (3 * H,),
        "in_w": (3 * H, 3 + config["horizon"] + config["excitation"]),
        "sub_bias": (B, 3 * H),
        "exc_out_w": (H, config["excitation"]),
    }


def expected_matrix_shapes(config: dict) -> dict:
    """``(rows, cols)`` of every block-sparse matrix for a (validated) config."""
    H = config["hidden"]
    if config["head"] == "dual":
        Hc = H // 2
        return {"R": (3 * H, H), "O1": (Hc, Hc), "O2": (256, Hc), "O3": (Hc, Hc), "O4": (256, Hc)}
    Q = 2 ** config["mulaw_bits"]
    return {"R": (3 * H, H), "O1": (H, H), "O2": (Q, H)}


# --------------------------------------------------------------------------- config


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def check_config(config, where: str) -> dict:
    """Validate a config dict; return a normalised deep copy (plain Python types)."""
    if not isinstance(config, dict):
        raise _fail(where, "config", f"expected a JSON object, got {type(config).__name__}")

    def field(k):
        return f"config.{k}"

    # The version first: a newer file should say "upgrade", not list odd keys.
    if "format_version" not in config:
        raise _fail(where, field("format_version"), "missing; this does not look like a vocoder preset config")
    fv = config["format_version"]
    if not _is_int(fv) or int(fv) not in SUPPORTED_FORMAT_VERSIONS:
        raise _fail(
            where, field("format_version"),
            f"unsupported format version {fv!r}; this vocoder reads version(s) "
            f"{', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))}. Upgrade vocoder or re-export the preset.",
        )
    if int(fv) == 1 and "excitation" not in config:
        config = {**config, "excitation": 0}  # version 1 predates the excitation
    if int(fv) < 3 and "preemphasis" not in config:
        config = {**config, "preemphasis": 0.0}  # versions 1 and 2 predate the pre-emphasis
    if int(fv) < 4:  # versions 1 to 3 predate the predictor: what their engine did
        config = {"predictor": "none", "ltp_gain": 0.0, "temperature_unvoiced": config.get("temperature", 0.0),
                  "highpass_hz": 20.0, **config}
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise _fail(where, "config", f"missing key(s): {', '.join(missing)}")
    unknown = sorted(str(k) for k in config if k not in CONFIG_KEYS)
    if unknown:
        raise _fail(where, "config", f"unknown key(s): {', '.join(unknown)} (known: {', '.join(CONFIG_KEYS)})")

    out: dict = {"format_version": int(fv)}

    def get_int(k, lo, hi, extra=""):
        v = config[k]
        if not _is_int(v) or not lo <= int(v) <= hi:
            raise _fail(where, field(k), f"must be an integer in {lo}..{hi}{extra}, got {v!r}")
        out[k] = int(v)
        return out[k]

    def get_str(k, nonempty=False):
        v = config[k]
        if not isinstance(v, str) or (nonempty and not v):
            raise _fail(where, field(k), f"must be a {'non-empty ' if nonempty else ''}string, got {v!r}")
        out[k] = v

    get_str("name", nonempty=True)
    for k in ("license", "version", "description"):
        get_str(k)
    get_int("sample_rate", 8000, 48000)
    get_int("hop", 1, 4096)
    nf = get_int("n_features", 1, 512)
    names = config["feature_names"]
    if not isinstance(names, list) or len(names) != nf or not all(isinstance(s, str) and s for s in names):
        raise _fail(where, field("feature_names"), f"must be a list of {nf} non-empty strings (one per feature), got {names!r:.200}")
    if len(set(names)) != nf:
        dup = sorted({s for s in names if names.count(s) > 1})
        raise _fail(where, field("feature_names"), f"names must be unique; repeated: {', '.join(dup)}")
    out["feature_names"] = list(names)
    H = get_int("hidden", 16, 2048, " and even")
    if H % 2:
        raise _fail(where, field("hidden"), f"must be even (coarse and fine halves), got {H}")
    head = config["head"]
    if head not in ("dual", "mulaw"):
        raise _fail(where, field("head"), f"must be 'dual' or 'mulaw', got {head!r}")
    out["head"] = head
    get_int("mulaw_bits", 8, 10)
    B = get_int("subscale", 1, 16)
    if B == 1:
        if not _is_int(config["horizon"]) or int(config["horizon"]) != 0:
            raise _fail(where, field("horizon"), f"must be 0 when subscale is 1, got {config['horizon']!r}")
        out["horizon"] = 0
    else:
        get_int("horizon", 1, 64, " when subscale > 1")
    get_int("ctx_before", 0, 8)
    get_int("lookahead", 0, 8)
    get_int("cond_hidden", 1, 4096)
    E = config["excitation"]
    if not _is_int(E) or int(E) not in EXCITATION_CHANNELS:
        raise _fail(where, field("excitation"), f"must be one of {EXCITATION_CHANNELS}, got {E!r}")
    out["excitation"] = int(E)
    if out["excitation"] and names[:2] != ["f0", "voicing"]:
        raise _fail(where, field("feature_names"), f"the excitation reads pitch and voicing from features 0 and 1, "
                                                    f"which must be named 'f0' and 'voicing'; got {names[:2]!r}")
    def get_float(k, lo, hi, what):
        v = config[k]
        try:
            vf = float(v) if isinstance(v, (int, float, np.integer, np.floating)) \
                and not isinstance(v, (bool, np.bool_)) else math.nan
        except OverflowError:  # an int too large for a float
            vf = math.inf
        if not (math.isfinite(vf) and lo <= vf <= hi):
            raise _fail(where, field(k), f"must be {what}, got {v!r:.50}")
        out[k] = vf

    get_float("temperature", 0.0, math.inf, "a finite number >= 0")
    get_float("temperature_unvoiced", 0.0, math.inf, "a finite number >= 0")
    get_float("preemphasis", 0.0, 0.99, "a number in 0..0.99")
    get_float("ltp_gain", 0.0, 0.99, "a number in 0..0.99")
    get_float("highpass_hz", 0.0, 200.0, "a number in 0..200 (Hz)")
    pred = config["predictor"]
    if pred not in PREDICTORS:
        raise _fail(where, field("predictor"), f"must be one of {', '.join(PREDICTORS)}, got {pred!r:.50}")
    out["predictor"] = pred
    if pred != "none":
        # predict.h: the remainder of one sequential stream, mu-law classes, pitch and
        # voicing in features 0 and 1 and at most 64 envelope bands after them
        if head != "mulaw" or B != 1:
            raise _fail(where, field("predictor"), f"{pred!r} needs head 'mulaw' and subscale 1, "
                                                   f"got {head!r} and {B}")
        if names[:2] != ["f0", "voicing"] or not 3 <= nf <= 66:
            raise _fail(where, field("feature_names"), f"the predictor reads f0, voicing and 1..64 envelope bands; "
                                                        f"got {nf} features starting {names[:2]!r}")
    for k in ("training", "singer"):
        v = config[k]
        if not isinstance(v, dict):
            raise _fail(where, field(k), f"must be a JSON object (dict), got {type(v).__name__}")
        try:
            # A deep copy that also proves the dict can be written back as JSON.
            out[k] = json.loads(json.dumps(v, allow_nan=False))
        except (TypeError, ValueError, RecursionError) as e:
            raise _fail(where, field(k), f"must hold only JSON values (str, int, float, bool, None, list, dict; "
                                         f"no NaN, no numpy types): {e}") from None
    return {k: out[k] for k in CONFIG_KEYS}


# --------------------------------------------------------------------------- tensors


def _describe(a) -> str:
    if isinstance(a, np.ndarray):
        order = " big-endian" if a.dtype.byteorder == ">" else ""
        return f"{a.dtype.name}{order} {list(a.shape)}"
    if isinstance(a, _Unsupported):
        return f"safetensors dtype {a.dtype}"
    return type(a).__name__


class _Unsupported:
    """Stands in for a tensor whose safetensors dtype numpy cannot represent."""

    def __init__(self, dtype: str):
        self.dtype = dtype


def _frozen(a: np.ndarray) -> np.ndarray:
    # An owned, aligned, C-contiguous copy the caller cannot change behind our back.
    a = np.array(a, copy=True, order="C")
    a.setflags(write=False)
    return a


def _tensor(flat: dict, name: str, dtype, shape, where: str) -> np.ndarray:
    """Fetch ``flat[name]`` checking dtype and shape (``None`` in shape = any length)."""
    a = flat[name]
    want = np.dtype(dtype).name
    if not isinstance(a, np.ndarray) or a.dtype != dtype:
        raise _fail(where, name, f"expected dtype {want}, got {_describe(a)}")
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        shown = "[" + ", ".join("n" if s is None else str(s) for s in shape) + "]"
        raise _fail(where, name, f"expected shape {shown}, got {list(a.shape)}")
    return a


def _check_finite(a: np.ndarray, name: str, where: str) -> None:
    if not np.all(np.isfinite(a)):
        i = tuple(int(x) for x in np.argwhere(~np.isfinite(a))[0])
        raise _fail(where, name, f"holds a non-finite value ({a[i]}) at index {list(i)}")


def _validate(config, flat: dict, where: str):
    """Check a config and the flat tensor dict of a preset file; return validated parts.

    Returns ``(config, tensors, layers)`` with frozen copies of every array.
    """
    cfg = check_config(config, where)
    if cfg["format_version"] == 1 and "exc_out_w" not in flat:
        flat = {**flat, "exc_out_w": np.zeros((cfg["hidden"], 0), np.float32)}  # predates the excitation
    dense_shapes = expected_dense_shapes(cfg)
    mat_shapes = expected_matrix_shapes(cfg)
    expected = set(dense_shapes) | {f"{m}.{f}" for m in mat_shapes for f in PACKED_FIELDS}
    missing = sorted(expected - set(flat))
    extra = sorted(set(flat) - expected)
    if len(missing) == 1 and not extra:
        name = missing[0]
        kind = (f"float32 {list(dense_shapes[name])}" if name in dense_shapes
                else f"field {name.split('.')[1]} of block-sparse matrix {name.split('.')[0]}")
        raise _fail(where, name, f"missing tensor (expected {kind})")
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing tensor(s) {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected tensor(s) {', '.join(extra)} (a {cfg['head']}-head preset holds exactly: "
                         f"{', '.join(sorted(expected))})")
        raise _fail(where, (missing + extra)[0] if len(missing + extra) == 1 else None, "; ".join(parts))

    tensors = {}
    for name, shape in dense_shapes.items():
        a = _tensor(flat, name, np.float32, shape, where)
        _check_finite(a, name, where)
        tensors[name] = _frozen(a)
    if np.any(tensors["feat_std"] <= 0):
        i = int(np.argmax(tensors["feat_std"] <= 0))
        raise _fail(where, "feat_std", f"must be > 0, got {tensors['feat_std'][i]} for feature {i} ({cfg['feature_names'][i]})")
    H = cfg["hidden"]
    if cfg["head"] == "dual":
        coarse = tensors["in_w"].reshape(3, H, -1)[:, : H // 2, 2]
        if np.any(coarse != 0):
            g, r = (int(x) for x in np.argwhere(coarse != 0)[0])
            raise _fail(
                where, "in_w",
                f"row {g * H + r} (gate {'rzn'[g]}, coarse unit {r}) has weight {coarse[g, r]} on input 2 "
                f"(the current coarse sample), which the coarse half must not see: column 2 of rows "
                f"g*H + [0, H/2) must be 0 for every gate g. Mask it during training.",
            )
    if cfg["subscale"] == 1 and np.any(tensors["sub_bias"] != 0):
        # docs/model.md adds sub_bias only when B > 1; demanding zeros makes both
        # readings of a B == 1 preset compute the same network.
        raise _fail(where, "sub_bias", "must be all zeros when subscale is 1 (it is only used with subscale > 1)")

    layers = {}
    for m, (rows, cols) in mat_shapes.items():
        rp = _tensor(flat, f"{m}.row_ptr", np.int32, (None,), where)
        ci = _tensor(flat, f"{m}.col_idx", np.int32, (None,), where)
        bl = _tensor(flat, f"{m}.blocks", np.int8, (None, blocksparse.BLOCK_ROWS, blocksparse.BLOCK_COLS), where)
        sc = _tensor(flat, f"{m}.scales", np.float32, (rows,), where)
        bi = _tensor(flat, f"{m}.bias", np.float32, (rows,), where)
        try:
            packed = blocksparse.validate_packed(rows, cols, _frozen(rp), _frozen(ci), _frozen(bl), where=m)
        except (ValueError, TypeError) as e:
            raise PresetError(f"{where}: {e}") from None
        _check_finite(sc, f"{m}.scales", where)
        if np.any(sc <= 0):
            i = int(np.argmax(sc <= 0))
            raise _fail(where, f"{m}.scales", f"must be > 0, got {sc[i]} for row {i}")
        _check_finite(bi, f"{m}.bias", where)
        layers[m] = SparseLayer(packed, _frozen(sc), _frozen(bi))
    return cfg, tensors, layers


def _flatten(tensors: dict, layers: dict) -> dict:
    flat = dict(tensors)
    for m, layer in layers.items():
        flat[f"{m}.row_ptr"] = layer.packed.row_ptr
        flat[f"{m}.col_idx"] = layer.packed.col_idx
        flat[f"{m}.blocks"] = layer.packed.blocks
        flat[f"{m}.scales"] = layer.scales
        flat[f"{m}.bias"] = layer.bias
    return flat


# --------------------------------------------------------------------------- Preset


class Preset:
    """A validated voice: config, dense float tensors, block-sparse layers.

    Attributes:
        config: the JSON config (see the module docstring and docs/model.md).
        tensors: dense float32 tensors by name (``feat_mean`` .. ``sub_bias``).
        layers: :class:`SparseLayer` by matrix name (``R``, ``O1`` ..).
        path: the file it was loaded from or saved to last, or ``None``.

    Constructing one validates everything (raising :class:`PresetError`); the arrays are
    read-only copies, so a Preset stays valid. Edit by building a new one.
    """

    def __init__(self, config: dict, tensors: dict, layers: dict, path=None):
        where = str(path) if path is not None else f"<preset {config.get('name') if isinstance(config, dict) else None!r}>"
        cfg, t, lay = _validate(config, _flatten(dict(tensors), dict(layers)), where)
        self._set(cfg, t, lay, path)

    @classmethod
    def _trusted(cls, config, tensors, layers, path) -> "Preset":
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
        _validate(self._config, self.tensor_dict(), str(self.path) if self.path else f"<preset {self.name!r}>")

    def tensor_dict(self) -> dict:
        """Every tensor under its file name (``in_w``, ``R.row_ptr``, ...), as stored on disk."""
        return _flatten(self._tensors, self._layers)

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
        return (f"<Preset {c['name']!r} v{c['version']}: {c['head']} head, H={c['hidden']}, B={c['subscale']}, "
                f"{c['sample_rate']} Hz, hop {c['hop']}{where}>")


# --------------------------------------------------------------------------- reading


_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "U64": np.uint64,
              "I32": np.int32, "U32": np.uint32, "I16": np.int16, "U16": np.uint16, "I8": np.int8,
              "U8": np.uint8, "BOOL": np.bool_}


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"duplicate key {k!r}")
        d[k] = v
    return d


def _reject_constant(c):
    raise ValueError(f"{c} is not valid JSON")


def _strict_json(text):
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)


def _read_file(path: Path) -> Preset:
    where = str(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_PRESET_BYTES:
                raise _fail(where, None, f"file is {size} bytes, more than the {MAX_PRESET_BYTES} a preset may have")
            # Read at most the limit even if the file grows meanwhile.
            data = f.read(MAX_PRESET_BYTES + 1)
    except OSError as e:
        raise _fail(where, None, f"cannot read the preset file: {e.strerror or e}") from None
    if len(data) > MAX_PRESET_BYTES:
        raise _fail(where, None, f"file is larger than the {MAX_PRESET_BYTES} bytes a preset may have")
    if len(data) < 8:
        raise _fail(where, None, f"file is {len(data)} bytes long: too short to be a safetensors preset (truncated?)")

    # The header: 8-byte little-endian length, then that much JSON. safetensors checks it
    # again below (offsets, sizes); we read it only for the metadata it does not return.
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise _fail(where, None, f"safetensors header claims {n} bytes but the file has {len(data) - 8} after the "
                                 f"length field (truncated or not a safetensors file)")
    try:
        header = _strict_json(data[8:8 + n].decode("utf-8"))
    except Exception as e:  # UnicodeDecodeError, JSONDecodeError, RecursionError, ...
        raise _fail(where, "header", f"not valid safetensors JSON: {e}") from None
    try:
        import safetensors

        entries = safetensors.deserialize(data)
    except Exception as e:  # SafetensorError and anything a hostile file provokes
        raise _fail(where, None, f"not a valid safetensors file: {e}") from None
    del data

    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get(METADATA_KEY), str):
        raise _fail(where, f"__metadata__.{METADATA_KEY}",
                    "missing: this safetensors file is not a vocoder preset (it has no vocoder config). "
                    "Make presets with vocoder.engine.presets.save_preset or the training export.")
    try:
        config = _strict_json(meta[METADATA_KEY])
    except Exception as e:
        raise _fail(where, f"__metadata__.{METADATA_KEY}", f"config is not valid JSON: {e}") from None

    flat = {}
    try:
        for name, info in entries:
            dt = _ST_DTYPES.get(info["dtype"])
            if dt is None:
                flat[name] = _Unsupported(str(info["dtype"]))
            else:
                flat[name] = np.frombuffer(info["data"], dtype=np.dtype(dt).newbyteorder("<")).reshape(info["shape"])
    except Exception as e:
        raise _fail(where, None, f"cannot decode tensor data: {e}") from None
    try:
        cfg, tensors, layers = _validate(config, flat, where)
    except PresetError:
        raise
    except Exception as e:  # a bug here must still surface as a clear PresetError
        raise _fail(where, None, f"invalid preset ({type(e).__name__}: {e})") from None
    return Preset._trusted(cfg, tensors, layers, path)


# --------------------------------------------------------------------------- finding


def preset_search_path() -> list:
    """Directories searched for preset names, in order."""
    dirs = [Path(p) for p in os.environ.get(ENV_PATH, "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parents[2] / "presets")
    dirs.append(Path(sys.prefix) / "share" / "vocoder" / "presets")
    return dirs


def _looks_like_path(s: str) -> bool:
    return s.endswith(SUFFIX) or "/" in s or (os.sep in s) or bool(os.altsep and os.altsep in s)


def _found() -> dict:
    """name -> path of the first preset of each name on the search path."""
    found = {}
    for d in preset_search_path():
        try:
            files = sorted(d.glob("*" + SUFFIX)) if d.is_dir() else []
        except OSError:
            continue
        for f in files:
            name = f.name[: -len(SUFFIX)]
            if name and name not in found and f.is_file():
                found[name] = f
    return found


def load_preset(name_or_path) -> Preset:
    """Load a preset by name (searched on :func:`preset_search_path`) or by file path.

    A ``pathlib.Path``, or a string that contains a path separator or ends in
    ``.safetensors``, is a path; any other string is a name. Raises :class:`PresetError`
    for anything missing or invalid.
    """
    if isinstance(name_or_path, Preset):
        return name_or_path
    if isinstance(name_or_path, os.PathLike) or (isinstance(name_or_path, str) and _looks_like_path(name_or_path)):
        path = Path(name_or_path)
        if not path.is_file():
            raise _fail(str(path), None, "no such preset file")
        return _read_file(path)
    if not isinstance(name_or_path, str) or not name_or_path or name_or_path in (".", ".."):
        raise PresetError(f"expected a preset name or path, got {name_or_path!r}")
    name = name_or_path
    for d in preset_search_path():
        f = d / (name + SUFFIX)
        if f.is_file():
            return _read_file(f)
    avail = sorted(_found())
    raise PresetError(
        f"{name}: no preset of that name; available: {', '.join(avail) if avail else '(none)'}. "
        f"Searched {', '.join(str(d) for d in preset_search_path())}. Pass a file path, or add its directory "
        f"to {ENV_PATH}."
    )


def list_presets() -> list:
    """``(name, path, meta)`` for every preset name on the search path, sorted by name.

    Where a name occurs in several directories, the one :func:`load_preset` picks is
    listed. A file that does not load is listed with ``meta = {"error": message}``.
    """
    out = []
    for name, path in sorted(_found().items()):
        try:
            meta = _read_file(path).meta
        except PresetError as e:
            meta = {"error": str(e)}
        out.append((name, path, meta))
    return out


# --------------------------------------------------------------------------- writing


def save_preset(preset: Preset, path) -> Path:
    """Validate ``preset`` and write it to ``path`` atomically; return the path.

    The file appears complete or not at all: it is written to a temporary file in the
    same directory, flushed, then renamed over ``path``.
    """
    from safetensors.numpy import save

    path = Path(path)
    if path.suffix != SUFFIX:
        raise PresetError(f"{path}: a preset file name must end in {SUFFIX}")
    where = str(path)
    flat = preset.tensor_dict()
    cfg, _, _ = _validate(preset._config, flat, where)
    text = json.dumps(cfg, sort_keys=True, ensure_ascii=False, allow_nan=False)
    data = save({k: np.ascontiguousarray(v) for k, v in flat.items()}, metadata={METADATA_KEY: text})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


# --------------------------------------------------------------------------- building


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
        raise _fail(where, "float_matrices", f"expected exactly {', '.join(mat_shapes)} for a {cfg['head']} head; "
                                             f"missing {missing}, unexpected {extra}")
    flat = {}
    for k, v in dense_tensors.items():
        try:
            flat[k] = np.asarray(v, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise _fail(where, k, f"cannot convert to a float32 array: {e}") from None
    for m, (rows, cols) in mat_shapes.items():
        try:
            w, b = float_matrices[m]
        except (TypeError, ValueError):
            raise _fail(where, m, "expected a pair (weights [rows, cols], bias [rows])") from None
        try:
            w = np.asarray(w, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise _fail(where, m, f"cannot convert the weights to a float array: {e}") from None
        if w.shape != (rows, cols):
            raise _fail(where, m, f"expected weights of shape [{rows}, {cols}], got {list(w.shape)}")
        if not np.all(np.isfinite(w)):
            raise _fail(where, m, "weights hold NaN or infinite values")
        q, scales = blocksparse.quantize_rows(w)
        packed = blocksparse.pack(q, where=m)
        flat[f"{m}.row_ptr"] = packed.row_ptr
        flat[f"{m}.col_idx"] = packed.col_idx
        flat[f"{m}.blocks"] = packed.blocks
        flat[f"{m}.scales"] = scales
        flat[f"{m}.bias"] = np.asarray(b, dtype=np.float32)
    cfg, tensors, layers = _validate(cfg, flat, where)
    return Preset._trusted(cfg, tensors, layers, None)


def default_feature_names(n: int) -> list:
    """``f0``, ``voicing``, then ``env0``, ``env1``, ... up to ``n`` names."""
    base = ["f0", "voicing"]
    return base[:n] + [f"env{i}" for i in range(max(0, n - len(base)))]
