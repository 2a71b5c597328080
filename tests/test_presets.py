"""Preset files: round trips, name resolution, and a loader that refuses bad files clearly."""

import json
import os
import struct

import numpy as np
import pytest
from safetensors.numpy import save, save_file

from vocoder.engine import blocksparse, presets
from vocoder.engine.presets import Preset, PresetError, list_presets, load_preset, preset_from_float, save_preset
from vocoder.testing import random_preset

# --------------------------------------------------------------------------- helpers


def raw_parts(preset):
    """A mutable copy of what a preset file holds: (config, flat tensors)."""
    return json.loads(json.dumps(preset.config)), {k: np.array(v) for k, v in preset.tensor_dict().items()}


def write_raw(path, flat, config):
    """Write tensors + config as a preset file, bypassing save_preset's validation."""
    meta = {"vocoder": config if isinstance(config, str) else json.dumps(config)}
    save_file(flat, str(path), metadata=meta)
    return path


def assert_rejected(path, *fragments):
    """Loading ``path`` raises PresetError naming the file and every fragment."""
    with pytest.raises(PresetError) as info:
        load_preset(path)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    return msg


def assert_same(a, b):
    assert a.config == b.config
    assert a.tensors.keys() == b.tensors.keys()
    for k in a.tensors:
        assert a.tensors[k].dtype == b.tensors[k].dtype
        np.testing.assert_array_equal(a.tensors[k], b.tensors[k])
    assert a.layers.keys() == b.layers.keys()
    for m in a.layers:
        la, lb = a.layers[m], b.layers[m]
        assert (la.rows, la.cols) == (lb.rows, lb.cols)
        for f in ("row_ptr", "col_idx", "blocks"):
            np.testing.assert_array_equal(getattr(la.packed, f), getattr(lb.packed, f))
        np.testing.assert_array_equal(la.scales, lb.scales)
        np.testing.assert_array_equal(la.bias, lb.bias)


# --------------------------------------------------------------------------- round trip, shapes


@pytest.mark.parametrize(
    "kw",
    [
        dict(head="dual"),
        dict(head="mulaw", mulaw_bits=10),
        dict(head="dual", subscale=4, horizon=3),
        dict(head="mulaw", subscale=16, mulaw_bits=8),
    ],
)
def test_round_trip_and_shapes(tmp_path, kw):
    p = random_preset(hidden=48, density=0.3, n_features=5, hop=32, seed=7, **kw)
    path = save_preset(p, tmp_path / "v.safetensors")
    q = load_preset(path)
    assert_same(p, q)
    assert q.path == path
    assert os.listdir(tmp_path) == ["v.safetensors"]  # no temp file left behind

    H, B, F = 48, p.subscale, p.horizon
    assert B == kw.get("subscale", 1) and F == kw.get("horizon", 1 if B > 1 else 0)
    K = p.ctx_before + 1 + p.lookahead
    t = q.tensors
    assert t["in_w"].shape == (3 * H, 3 + F + p.excitation) and t["sub_bias"].shape == (B, 3 * H)
    assert t["exc_out_w"].shape == (H, p.excitation)
    assert t["cond1_w"].shape == (p.cond_hidden, K * 5) and t["cond2_w"].shape == (3 * H, p.cond_hidden)
    Q = 256 if p.head == "dual" else 2 ** kw["mulaw_bits"]
    assert q.n_classes == Q
    want = (
        {"R": (144, 48), "O1": (24, 24), "O2": (256, 24), "O3": (24, 24), "O4": (256, 24)}
        if p.head == "dual"
        else {"R": (144, 48), "O1": (48, 48), "O2": (Q, 48)}
    )
    assert {m: (layer.rows, layer.cols) for m, layer in q.layers.items()} == want
    for m, layer in q.layers.items():
        assert layer.dense_float().shape == want[m] and layer.dense_float().dtype == np.float32
    assert q.latency_samples == p.lookahead * 32 + B * (B - 1) * F
    assert q.meta["name"] == p.config["name"] and q.meta["format_version"] == 4
    if p.head == "dual":
        assert np.all(t["in_w"].reshape(3, H, -1)[:, : H // 2, 2] == 0)


def test_random_preset_deterministic_and_density():
    a = random_preset(hidden=128, density=0.2, seed=5)
    b = random_preset(hidden=128, density=0.2, seed=5)
    c = random_preset(hidden=128, density=0.2, seed=6)
    assert_same(a, b)
    assert not np.array_equal(a.tensors["in_w"], c.tensors["in_w"])
    for layer in a.layers.values():
        assert 0.15 < layer.density < 0.25
    assert a.hop == 80 and a.feature_names[:3] == ["f0", "voicing", "env0"] and len(a.feature_names) == 22


def test_arrays_are_read_only(dual_preset):
    with pytest.raises(ValueError):
        dual_preset.tensors["in_w"][0, 0] = 1.0
    with pytest.raises(ValueError):
        dual_preset.layers["R"].packed.col_idx[0] = 10**6


def test_dense_float_is_int8_times_scale(dual_preset):
    layer = dual_preset.layers["O2"]
    np.testing.assert_array_equal(
        layer.dense_float(), layer.packed.to_dense().astype(np.float32) * layer.scales[:, None]
    )


def test_preset_from_float_quantizes_close(dual_preset):
    rng = np.random.default_rng(0)
    cfg = dict(dual_preset.config)
    mats = {
        m: (rng.standard_normal((layer.rows, layer.cols)), np.zeros(layer.rows))
        for m, layer in dual_preset.layers.items()
    }
    p = preset_from_float(cfg, dual_preset.tensors, mats)
    for m, (w, _) in mats.items():
        err = np.abs(p.layers[m].dense_float() - w).max(axis=1)
        assert np.all(err <= p.layers[m].scales * 0.51 + 1e-6)  # within half a step per row
    with pytest.raises(PresetError, match="O1: expected weights of shape"):
        preset_from_float(cfg, dual_preset.tensors, {**mats, "O1": (np.zeros((3, 3)), np.zeros(3))})
    with pytest.raises(PresetError, match="missing"):
        preset_from_float(cfg, dual_preset.tensors, {k: v for k, v in mats.items() if k != "R"})


def test_constructor_validates(dual_preset):
    cfg = dict(dual_preset.config, hidden=17)
    with pytest.raises(PresetError, match="config.hidden"):
        Preset(cfg, dual_preset.tensors, dual_preset.layers)


# --------------------------------------------------------------------------- finding presets


def test_name_resolution_and_listing(tmp_path, monkeypatch):
    d1, d2 = tmp_path / "a", tmp_path / "b"
    d1.mkdir()
    d2.mkdir()
    first = random_preset(hidden=16, n_features=4, cond_hidden=8, seed=1, name="first")
    second = random_preset(hidden=16, n_features=4, cond_hidden=8, seed=2, name="second")
    save_preset(first, d1 / "voice.safetensors")
    save_preset(second, d2 / "voice.safetensors")
    save_preset(second, d2 / "other.safetensors")
    (d2 / "broken.safetensors").write_bytes(b"not a preset")
    monkeypatch.setenv("VOCODER_PRESET_PATH", os.pathsep.join([str(d1), str(tmp_path / "missing"), str(d2)]))

    assert load_preset("voice").config["name"] == "first"  # earlier directory wins
    assert load_preset("other").path == d2 / "other.safetensors"
    assert load_preset(str(d2 / "voice.safetensors")).config["name"] == "second"
    assert load_preset(d2 / "voice.safetensors").config["name"] == "second"

    with pytest.raises(PresetError) as info:
        load_preset("nope")
    msg = str(info.value)
    assert "nope" in msg and "voice" in msg and "other" in msg and "VOCODER_PRESET_PATH" in msg
    with pytest.raises(PresetError, match="no such preset file"):
        load_preset(str(tmp_path / "absent.safetensors"))

    listed = {name: (path, meta) for name, path, meta in list_presets()}
    assert listed["voice"][0] == d1 / "voice.safetensors" and listed["voice"][1]["name"] == "first"
    assert listed["other"][1]["name"] == "second"
    assert "error" in listed["broken"][1] and "broken.safetensors" in listed["broken"][1]["error"]
    with pytest.raises(PresetError):
        load_preset("broken")


def test_save_is_atomic_and_validates(tmp_path, dual_preset):
    path = save_preset(dual_preset, tmp_path / "v.safetensors")
    before = path.read_bytes()
    p = load_preset(path)
    p.config["hidden"] = 17  # edits a copy: a Preset cannot drift from its validated arrays
    assert p.hidden == dual_preset.hidden
    bad = Preset._trusted(dict(p.config, hidden=17), p.tensors, p.layers, None)  # bypasses validation
    with pytest.raises(PresetError, match="config.hidden"):
        save_preset(bad, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["v.safetensors"]
    with pytest.raises(PresetError, match="must end in .safetensors"):
        save_preset(dual_preset, tmp_path / "v.bin")


# --------------------------------------------------------------------------- rejected files


def _mutate_col_idx(cfg, flat):
    flat["R.col_idx"][0] = blocksparse.padded(cfg["hidden"], 4) // 4  # one past the last block column


def _mutate_row_ptr_decreasing(cfg, flat):
    rp = flat["R.row_ptr"]
    rp[1] = rp[-1]  # start 0 and end nnz stay right; rp[1] > rp[2]
    assert rp[1] > rp[2]


def _mutate_row_ptr_end(cfg, flat):
    flat["R.row_ptr"][-1] += 1


def _mutate_saturation(cfg, flat):
    flat["O1.blocks"][0, 3, 0:2] = 100  # columns 4k and 4k+1 form a pair: 200 > 128


def _mutate_mask(cfg, flat):
    flat["in_w"][cfg["hidden"] + 1, 2] = 0.25  # gate z, coarse unit 1 sees c_cur


def _mutate_scale_inf(cfg, flat):
    flat["R.scales"][5] = np.inf


def _mutate_scale_zero(cfg, flat):
    flat["O2.scales"][0] = 0.0


def _mutate_nan_weight(cfg, flat):
    flat["cond1_w"][1, 2] = np.nan


def _mutate_std(cfg, flat):
    flat["feat_std"][0] = -1.0


def _mutate_sub_bias(cfg, flat):
    flat["sub_bias"][0, 0] = 1.0


def _mutate_missing(cfg, flat):
    del flat["in_w"]


def _mutate_extra(cfg, flat):
    flat["secret_payload"] = np.zeros(3, np.float32)


def _mutate_dtype(cfg, flat):
    flat["in_w"] = flat["in_w"].astype(np.float64)


def _mutate_index_dtype(cfg, flat):
    flat["R.col_idx"] = flat["R.col_idx"].astype(np.int64)


def _mutate_shape(cfg, flat):
    flat["cond1_b"] = np.zeros(cfg["cond_hidden"] + 1, np.float32)


def _mutate_blocks_count(cfg, flat):
    flat["O3.blocks"] = flat["O3.blocks"][:-1].copy()


def _mutate_excitation(cfg, flat):
    cfg["excitation"] = 3


def _mutate_excitation_names(cfg, flat):
    cfg["feature_names"] = ["pitch"] + cfg["feature_names"][1:]


def _mutate_version(cfg, flat):
    cfg["format_version"] = 5


def _mutate_predictor(cfg, flat):
    cfg["predictor"] = "lpc"


def _mutate_predictor_head(cfg, flat):
    cfg["predictor"] = "lpc+pitch"  # the tiny preset has the dual head


def _mutate_ltp_gain(cfg, flat):
    cfg["ltp_gain"] = 1.5


def _mutate_temperature_unvoiced(cfg, flat):
    cfg["temperature_unvoiced"] = -1


def _mutate_highpass(cfg, flat):
    cfg["highpass_hz"] = 500.0


def _mutate_version4_missing(cfg, flat):
    del cfg["ltp_gain"]


def _mutate_preemphasis(cfg, flat):
    cfg["preemphasis"] = 1.0


def _mutate_preemphasis_type(cfg, flat):
    cfg["preemphasis"] = "0.85"


def _mutate_config_missing(cfg, flat):
    del cfg["hop"]


def _mutate_config_unknown(cfg, flat):
    cfg["hidden_size"] = 64


def _mutate_config_type(cfg, flat):
    cfg["sample_rate"] = "16000"


def _mutate_config_range(cfg, flat):
    cfg["lookahead"] = 9


def _mutate_config_bool(cfg, flat):
    cfg["subscale"] = True


def _mutate_config_names(cfg, flat):
    cfg["feature_names"] = cfg["feature_names"][:-1]


def _mutate_config_head(cfg, flat):
    cfg["head"] = "triple"


def _mutate_config_horizon(cfg, flat):
    cfg["horizon"] = 2  # subscale is 1


def _mutate_config_temperature(cfg, flat):
    cfg["temperature"] = -0.5


REJECTIONS = [
    (_mutate_col_idx, ["R.col_idx", "must lie in 0..3"]),
    (_mutate_row_ptr_decreasing, ["R.row_ptr", "must not decrease"]),
    (_mutate_row_ptr_end, ["R.row_ptr", "end at the block count"]),
    (_mutate_saturation, ["O1", "saturation rule"]),
    (_mutate_mask, ["in_w", "row 17", "coarse"]),
    (_mutate_scale_inf, ["R.scales", "non-finite", "[5]"]),
    (_mutate_scale_zero, ["O2.scales", "must be > 0"]),
    (_mutate_nan_weight, ["cond1_w", "non-finite"]),
    (_mutate_std, ["feat_std", "must be > 0"]),
    (_mutate_sub_bias, ["sub_bias", "zeros"]),
    (_mutate_missing, ["in_w", "missing"]),
    (_mutate_extra, ["secret_payload", "unexpected"]),
    (_mutate_dtype, ["in_w", "expected dtype float32, got float64"]),
    (_mutate_index_dtype, ["R.col_idx", "int32", "int64"]),
    (_mutate_shape, ["cond1_b", "expected shape [8]", "[9]"]),
    (_mutate_blocks_count, ["O3.blocks"]),
    (_mutate_version, ["config.format_version", "5", "reads version(s) 1, 2, 3, 4"]),
    (_mutate_predictor, ["config.predictor", "lpc+pitch", "'lpc'"]),
    (_mutate_predictor_head, ["config.predictor", "mulaw", "subscale 1"]),
    (_mutate_ltp_gain, ["config.ltp_gain", "0..0.99", "1.5"]),
    (_mutate_temperature_unvoiced, ["config.temperature_unvoiced", ">= 0"]),
    (_mutate_highpass, ["config.highpass_hz", "0..200"]),
    (_mutate_version4_missing, ["config", "missing key(s): ltp_gain"]),
    (_mutate_preemphasis, ["config.preemphasis", "0..0.99", "1.0"]),
    (_mutate_preemphasis_type, ["config.preemphasis", "0..0.99", "'0.85'"]),
    (_mutate_excitation, ["config.excitation", "(0, 2)"]),
    (_mutate_excitation_names, ["config.feature_names", "'f0' and 'voicing'"]),
    (_mutate_config_missing, ["config", "missing key(s): hop"]),
    (_mutate_config_unknown, ["config", "hidden_size"]),
    (_mutate_config_type, ["config.sample_rate", "'16000'"]),
    (_mutate_config_range, ["config.lookahead", "0..8"]),
    (_mutate_config_bool, ["config.subscale"]),
    (_mutate_config_names, ["config.feature_names"]),
    (_mutate_config_head, ["config.head", "triple"]),
    (_mutate_config_horizon, ["config.horizon"]),
    (_mutate_config_temperature, ["config.temperature"]),
]


@pytest.mark.parametrize("mutate,fragments", REJECTIONS, ids=[m.__name__[8:] for m, _ in REJECTIONS])
def test_rejects_naming_file_and_field(tmp_path, tiny_preset, mutate, fragments):
    cfg, flat = raw_parts(tiny_preset)
    assert flat["R.col_idx"].size and cfg["cond_hidden"] == 8 and cfg["hidden"] == 16
    mutate(cfg, flat)
    path = write_raw(tmp_path / "x.safetensors", flat, cfg)
    assert_rejected(path, *fragments)


def test_rejects_non_preset_safetensors(tmp_path, tiny_preset):
    _, flat = raw_parts(tiny_preset)
    path = tmp_path / "plain.safetensors"
    save_file(flat, str(path))
    assert_rejected(path, "__metadata__.vocoder", "not a vocoder preset")
    write_raw(path, flat, "{not json")
    assert_rejected(path, "__metadata__.vocoder", "not valid JSON")
    write_raw(path, flat, '{"format_version": 1, "format_version": 1}')
    assert_rejected(path, "duplicate key")
    write_raw(path, flat, "[1, 2]")
    assert_rejected(path, "config", "JSON object")


def test_rejects_unsupported_dtype(tmp_path, tiny_preset):
    cfg, flat = raw_parts(tiny_preset)
    path = write_raw(tmp_path / "x.safetensors", flat, cfg)
    data = bytearray(path.read_bytes())
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    # in_w as BF16 with twice the elements covers the same bytes: valid safetensors.
    header["in_w"]["dtype"] = "BF16"
    header["in_w"]["shape"] = [header["in_w"]["shape"][0], header["in_w"]["shape"][1] * 2]
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(data[8 + n :]))
    assert_rejected(path, "in_w", "BF16")


def test_rejects_truncated_files(tmp_path, tiny_preset):
    good = save_preset(tiny_preset, tmp_path / "good.safetensors").read_bytes()
    n = struct.unpack("<Q", good[:8])[0]
    rng = np.random.default_rng(1234)
    lengths = {0, 1, 7, 8, 9, 8 + n - 1, 8 + n, 8 + n + 1, len(good) - 1}
    lengths |= set(int(x) for x in rng.integers(0, len(good), 60))
    bad = tmp_path / "cut.safetensors"
    for length in sorted(lengths):
        bad.write_bytes(good[:length])
        assert_rejected(bad)


def test_random_byte_flips_load_or_raise_preset_error(tmp_path, tiny_preset):
    good = save_preset(tiny_preset, tmp_path / "good.safetensors").read_bytes()
    n = struct.unpack("<Q", good[:8])[0]
    rng = np.random.default_rng(20240601)
    path = tmp_path / "flip.safetensors"
    loaded = rejected = 0
    for trial in range(300):
        data = bytearray(good)
        mode = trial % 3  # 0: header only (parsers), 1: data only (validation), 2: anywhere
        for _ in range(int(rng.integers(1, 5))):
            lo, hi = ((0, 8 + n), (8 + n, len(data)), (0, len(data)))[mode]
            pos = int(rng.integers(lo, hi))
            data[pos] = int(rng.integers(0, 256)) if rng.random() < 0.5 else data[pos] ^ (1 << int(rng.integers(0, 8)))
        path.write_bytes(bytes(data))
        try:
            p = load_preset(path)
        except PresetError as e:
            assert str(e).startswith(str(path))
            rejected += 1
        else:
            p.validate()  # whatever loads is a valid preset
            loaded += 1
    assert rejected > 50 and loaded > 10, (loaded, rejected)


def _crafted(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def test_rejects_crafted_huge_declarations(tmp_path, tiny_preset):
    cfg, _ = raw_parts(tiny_preset)
    meta = {"vocoder": json.dumps(cfg)}
    path = tmp_path / "huge.safetensors"
    # A tensor of 2**46 bytes declared over 64 bytes of data.
    path.write_bytes(
        _crafted(
            {"__metadata__": meta, "R.blocks": {"dtype": "I8", "shape": [2**40, 16, 4], "data_offsets": [0, 2**46]}},
            bytes(64),
        )
    )
    assert_rejected(path)
    # Offsets that fit but a shape that does not match them.
    path.write_bytes(
        _crafted(
            {"__metadata__": meta, "R.blocks": {"dtype": "I8", "shape": [2**40, 16, 4], "data_offsets": [0, 64]}},
            bytes(64),
        )
    )
    assert_rejected(path)
    # Overflowing element count.
    path.write_bytes(
        _crafted({"__metadata__": meta, "x": {"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 0]}}, b"")
    )
    assert_rejected(path)
    # A header length field far beyond the file.
    path.write_bytes(struct.pack("<Q", 2**63) + b"{}")
    assert_rejected(path, "header claims")
    # Deeply nested JSON in the header and in the config.
    path.write_bytes(_crafted({"__metadata__": {"vocoder": "[" * 100000}}, b""))
    assert_rejected(path)
    deep = "[" * 100000 + "]" * 100000
    path.write_bytes(struct.pack("<Q", len(deep)) + deep.encode())
    assert_rejected(path)


def test_rejects_files_over_the_size_limit(tmp_path, tiny_preset, monkeypatch):
    path = save_preset(tiny_preset, tmp_path / "big.safetensors")
    monkeypatch.setattr(presets.reader, "MAX_PRESET_BYTES", path.stat().st_size - 1)
    assert_rejected(path, "more than the")


def test_load_error_is_a_value_error(tmp_path):
    path = tmp_path / "e.safetensors"
    path.write_bytes(save({"a": np.zeros(2, np.float32)}))
    with pytest.raises(ValueError):
        load_preset(path)


def test_version_1_files_load_without_excitation(tmp_path):
    """Files written before the excitation existed (format 1: no key, no tensor) still load."""
    p = random_preset(hidden=16, density=0.5, n_features=4, hop=16, cond_hidden=8, seed=3, excitation=0)
    cfg, flat = raw_parts(p)
    cfg["format_version"] = 1
    del cfg["excitation"], cfg["preemphasis"]
    del flat["exc_out_w"]
    q = load_preset(write_raw(tmp_path / "old.safetensors", flat, cfg))
    assert q.excitation == 0 and q.n_in == 3 and q.tensors["exc_out_w"].shape == (16, 0)
    v1 = __import__("vocoder").Vocoder(q, seed=0).vocode(np.zeros((3, 4), np.float32))
    v2 = __import__("vocoder").Vocoder(p, seed=0).vocode(np.zeros((3, 4), np.float32))
    assert v1.tobytes() == v2.tobytes()
