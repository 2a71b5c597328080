"""Validation: a preset's config and tensors are checked field by field, trusting nothing.

:func:`check_config` checks the JSON config; :func:`validate_parts` checks the config and
every tensor against the shapes the config fixes, and every index a kernel will follow
(:func:`vocoder.engine.blocksparse.validate_packed`). Every failure is a
:class:`~vocoder.engine.presets.PresetError` that names the file and the field.
"""

from __future__ import annotations

import json
import math

import numpy as np

from .. import blocksparse
from .format import (
    CONFIG_KEYS,
    EXCITATION_CHANNELS,
    PACKED_FIELDS,
    PREDICTORS,
    SUPPORTED_FORMAT_VERSIONS,
    PresetError,
    SparseLayer,
    expected_dense_shapes,
    expected_matrix_shapes,
    preset_error,
)


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def check_config(config, where: str) -> dict:
    """Validate a config dict; return a normalised deep copy (plain Python types)."""
    if not isinstance(config, dict):
        raise preset_error(where, "config", f"expected a JSON object, got {type(config).__name__}")

    def field(k):
        return f"config.{k}"

    # The version first: a newer file should say "upgrade", not list odd keys.
    if "format_version" not in config:
        raise preset_error(where, field("format_version"), "missing; this does not look like a vocoder preset config")
    fv = config["format_version"]
    if not _is_int(fv) or int(fv) not in SUPPORTED_FORMAT_VERSIONS:
        raise preset_error(
            where,
            field("format_version"),
            f"unsupported format version {fv!r}; this vocoder reads version(s) "
            f"{', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))}. Upgrade vocoder or re-export the preset.",
        )
    if int(fv) == 1 and "excitation" not in config:
        config = {**config, "excitation": 0}  # version 1 predates the excitation
    if int(fv) < 3 and "preemphasis" not in config:
        config = {**config, "preemphasis": 0.0}  # versions 1 and 2 predate the pre-emphasis
    if int(fv) < 4:  # versions 1 to 3 predate the predictor: what their engine did
        config = {
            "predictor": "none",
            "ltp_gain": 0.0,
            "temperature_unvoiced": config.get("temperature", 0.0),
            "highpass_hz": 20.0,
            **config,
        }
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise preset_error(where, "config", f"missing key(s): {', '.join(missing)}")
    unknown = sorted(str(k) for k in config if k not in CONFIG_KEYS)
    if unknown:
        raise preset_error(where, "config", f"unknown key(s): {', '.join(unknown)} (known: {', '.join(CONFIG_KEYS)})")

    out: dict = {"format_version": int(fv)}

    def get_int(k, lo, hi, extra=""):
        v = config[k]
        if not _is_int(v) or not lo <= int(v) <= hi:
            raise preset_error(where, field(k), f"must be an integer in {lo}..{hi}{extra}, got {v!r}")
        out[k] = int(v)
        return out[k]

    def get_str(k, nonempty=False):
        v = config[k]
        if not isinstance(v, str) or (nonempty and not v):
            raise preset_error(where, field(k), f"must be a {'non-empty ' if nonempty else ''}string, got {v!r}")
        out[k] = v

    get_str("name", nonempty=True)
    for k in ("license", "version", "description"):
        get_str(k)
    get_int("sample_rate", 8000, 48000)
    get_int("hop", 1, 4096)
    nf = get_int("n_features", 1, 512)
    names = config["feature_names"]
    if not isinstance(names, list) or len(names) != nf or not all(isinstance(s, str) and s for s in names):
        raise preset_error(
            where,
            field("feature_names"),
            f"must be a list of {nf} non-empty strings (one per feature), got {names!r:.200}",
        )
    if len(set(names)) != nf:
        dup = sorted({s for s in names if names.count(s) > 1})
        raise preset_error(where, field("feature_names"), f"names must be unique; repeated: {', '.join(dup)}")
    out["feature_names"] = list(names)
    H = get_int("hidden", 16, 2048, " and even")
    if H % 2:
        raise preset_error(where, field("hidden"), f"must be even (coarse and fine halves), got {H}")
    head = config["head"]
    if head not in ("dual", "mulaw"):
        raise preset_error(where, field("head"), f"must be 'dual' or 'mulaw', got {head!r}")
    out["head"] = head
    get_int("mulaw_bits", 8, 10)
    B = get_int("subscale", 1, 16)
    if B == 1:
        if not _is_int(config["horizon"]) or int(config["horizon"]) != 0:
            raise preset_error(where, field("horizon"), f"must be 0 when subscale is 1, got {config['horizon']!r}")
        out["horizon"] = 0
    else:
        get_int("horizon", 1, 64, " when subscale > 1")
    get_int("ctx_before", 0, 8)
    get_int("lookahead", 0, 8)
    get_int("cond_hidden", 1, 4096)
    E = config["excitation"]
    if not _is_int(E) or int(E) not in EXCITATION_CHANNELS:
        raise preset_error(where, field("excitation"), f"must be one of {EXCITATION_CHANNELS}, got {E!r}")
    out["excitation"] = int(E)
    if out["excitation"] and names[:2] != ["f0", "voicing"]:
        raise preset_error(
            where,
            field("feature_names"),
            f"the excitation reads pitch and voicing from features 0 and 1, "
            f"which must be named 'f0' and 'voicing'; got {names[:2]!r}",
        )

    def get_float(k, lo, hi, what):
        v = config[k]
        try:
            vf = (
                float(v)
                if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
                else math.nan
            )
        except OverflowError:  # an int too large for a float
            vf = math.inf
        if not (math.isfinite(vf) and lo <= vf <= hi):
            raise preset_error(where, field(k), f"must be {what}, got {v!r:.50}")
        out[k] = vf

    get_float("temperature", 0.0, math.inf, "a finite number >= 0")
    get_float("temperature_unvoiced", 0.0, math.inf, "a finite number >= 0")
    get_float("preemphasis", 0.0, 0.99, "a number in 0..0.99")
    get_float("ltp_gain", 0.0, 0.99, "a number in 0..0.99")
    get_float("highpass_hz", 0.0, 200.0, "a number in 0..200 (Hz)")
    pred = config["predictor"]
    if pred not in PREDICTORS:
        raise preset_error(where, field("predictor"), f"must be one of {', '.join(PREDICTORS)}, got {pred!r:.50}")
    out["predictor"] = pred
    if pred != "none":
        # predict.h: the remainder of one sequential stream, mu-law classes, pitch and
        # voicing in features 0 and 1 and at most 64 envelope bands after them
        if head != "mulaw" or B != 1:
            raise preset_error(
                where, field("predictor"), f"{pred!r} needs head 'mulaw' and subscale 1, got {head!r} and {B}"
            )
        if names[:2] != ["f0", "voicing"] or not 3 <= nf <= 66:
            raise preset_error(
                where,
                field("feature_names"),
                f"the predictor reads f0, voicing and 1..64 envelope bands; got {nf} features starting {names[:2]!r}",
            )
    for k in ("training", "singer"):
        v = config[k]
        if not isinstance(v, dict):
            raise preset_error(where, field(k), f"must be a JSON object (dict), got {type(v).__name__}")
        try:
            # A deep copy that also proves the dict can be written back as JSON.
            out[k] = json.loads(json.dumps(v, allow_nan=False))
        except (TypeError, ValueError, RecursionError) as e:
            raise preset_error(
                where,
                field(k),
                f"must hold only JSON values (str, int, float, bool, None, list, dict; no NaN, no numpy types): {e}",
            ) from None
    return {k: out[k] for k in CONFIG_KEYS}


def _describe(a) -> str:
    if isinstance(a, np.ndarray):
        order = " big-endian" if a.dtype.byteorder == ">" else ""
        return f"{a.dtype.name}{order} {list(a.shape)}"
    if isinstance(a, UnsupportedDtype):
        return f"safetensors dtype {a.dtype}"
    return type(a).__name__


class UnsupportedDtype:
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
        raise preset_error(where, name, f"expected dtype {want}, got {_describe(a)}")
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        shown = "[" + ", ".join("n" if s is None else str(s) for s in shape) + "]"
        raise preset_error(where, name, f"expected shape {shown}, got {list(a.shape)}")
    return a


def _check_finite(a: np.ndarray, name: str, where: str) -> None:
    if not np.all(np.isfinite(a)):
        i = tuple(int(x) for x in np.argwhere(~np.isfinite(a))[0])
        raise preset_error(where, name, f"holds a non-finite value ({a[i]}) at index {list(i)}")


def validate_parts(config, flat: dict, where: str):
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
        kind = (
            f"float32 {list(dense_shapes[name])}"
            if name in dense_shapes
            else f"field {name.split('.')[1]} of block-sparse matrix {name.split('.')[0]}"
        )
        raise preset_error(where, name, f"missing tensor (expected {kind})")
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing tensor(s) {', '.join(missing)}")
        if extra:
            parts.append(
                f"unexpected tensor(s) {', '.join(extra)} (a {cfg['head']}-head preset holds exactly: "
                f"{', '.join(sorted(expected))})"
            )
        raise preset_error(where, (missing + extra)[0] if len(missing + extra) == 1 else None, "; ".join(parts))

    tensors = {}
    for name, shape in dense_shapes.items():
        a = _tensor(flat, name, np.float32, shape, where)
        _check_finite(a, name, where)
        tensors[name] = _frozen(a)
    if np.any(tensors["feat_std"] <= 0):
        i = int(np.argmax(tensors["feat_std"] <= 0))
        raise preset_error(
            where, "feat_std", f"must be > 0, got {tensors['feat_std'][i]} for feature {i} ({cfg['feature_names'][i]})"
        )
    H = cfg["hidden"]
    if cfg["head"] == "dual":
        coarse = tensors["in_w"].reshape(3, H, -1)[:, : H // 2, 2]
        if np.any(coarse != 0):
            g, r = (int(x) for x in np.argwhere(coarse != 0)[0])
            raise preset_error(
                where,
                "in_w",
                f"row {g * H + r} (gate {'rzn'[g]}, coarse unit {r}) has weight {coarse[g, r]} on input 2 "
                f"(the current coarse sample), which the coarse half must not see: column 2 of rows "
                f"g*H + [0, H/2) must be 0 for every gate g. Mask it during training.",
            )
    if cfg["subscale"] == 1 and np.any(tensors["sub_bias"] != 0):
        # docs/model.md adds sub_bias only when B > 1; demanding zeros makes both
        # readings of a B == 1 preset compute the same network.
        raise preset_error(
            where, "sub_bias", "must be all zeros when subscale is 1 (it is only used with subscale > 1)"
        )

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
            raise preset_error(where, f"{m}.scales", f"must be > 0, got {sc[i]} for row {i}")
        _check_finite(bi, f"{m}.bias", where)
        layers[m] = SparseLayer(packed, _frozen(sc), _frozen(bi))
    return cfg, tensors, layers
