"""Training pipeline on audio the test makes itself: a tiny model trains, prunes, exports,
loads and renders; the int8 engine agrees with the float model; bad inputs give clear errors."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pyworld")

from vocoder import Vocoder, load_preset  # noqa: E402
from vocoder.engine.reference import audio_to_classes, mulaw_encode  # noqa: E402
from vocoder.engine.reference import excitation as ref_excitation  # noqa: E402
from vocoder.train import corpus, export, trainer  # noqa: E402
from vocoder.train import features as F  # noqa: E402
from vocoder.train.excitation import aligned_excitation, aligned_phase  # noqa: E402
from vocoder.train.model import WaveRNN, block_mask, fake_quant_rows, sparsity_at  # noqa: E402
from vocoder.train.singer_data import build_singer_data  # noqa: E402

from test_features import vowel  # noqa: E402

SR, HOP = 16000, 80


def make_items(n=3, seconds=1.5):
    items = []
    for i in range(n):
        t = np.arange(int(seconds * SR)) / SR
        f0 = (150.0 + 40 * i) * 2 ** (0.3 * np.sin(2 * np.pi * 0.7 * t) / 12)
        a = vowel(f0, seconds, formants=((500 + 150 * i, 80), (1500, 100), (2500, 120)), seed=i)
        f = F.extract(a, SR, source=f"item{i}")
        items.append((f"item{i}", a[: len(f) * HOP].astype(np.float32), f, {"source": "test"}))
    return items


# The tiny model's schedule (a few hundred ms a step); tests change what they need.
TINY = dict(
    hidden=32,
    cond_hidden=16,
    batch=16,
    win_frames=4,
    lr=5e-3,
    lr_final=1e-3,
    sparsity=0.5,
    prune_start=0.3,
    prune_end=0.7,
    qat_start=0.8,
    max_steps=100,
    minutes=1e9,
    val_windows=16,
    ckpt_every_s=1e9,
    threads=1,
)


def fit_tiny(out, items, **overrides):
    """``trainer.fit`` on ``items`` with the TINY schedule, ``overrides`` on top."""
    kw = {**TINY, "log": lambda m: None, **overrides}
    return trainer.fit(None, out, items=items, val_items=items[:1], **kw)


def train_tiny(out, **extra):
    """A tiny model trained 100 steps on make_items(): (out, items, state, logs)."""
    torch.manual_seed(0)
    items = make_items()
    logs: list = []
    state = fit_tiny(out, items, log=logs.append, **extra)
    return out, items, state, logs


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("ckpt"))


def test_loss_goes_down(trained):
    _, _, state, logs = trained
    first = float(logs[1].split("loss ")[1].split()[0])
    assert state["step"] == 100
    assert state["final"]["val"] < first - 0.5, (first, state["final"])
    assert any("quantisation-aware" in m for m in logs)
    assert state["final"]["samples_per_s"] > 0


def test_checkpoint_resume(trained, tmp_path):
    out, items, state, _ = trained
    model, opt_state, st = trainer.load_checkpoint(out)
    assert st["step"] == 100 and model.qat
    import shutil

    shutil.copy(out / trainer.CKPT_NAME, tmp_path / trainer.CKPT_NAME)
    logs = []
    st2 = trainer.fit(
        None,
        tmp_path,
        resume=True,
        max_steps=105,
        minutes=1e9,
        batch=16,
        win_frames=4,
        items=items,
        val_items=items[:1],
        val_windows=16,
        ckpt_every_s=1e9,
        log=logs.append,
        threads=1,
    )
    assert st2["step"] == 105
    assert "resumed" in logs[0]


def _tiny_fit(out, items, **kw):
    return fit_tiny(
        out, items, batch=8, prune_start=0.2, prune_end=0.6, qat_start=0.7, max_steps=20, val_windows=8, **kw
    )


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    """Stop at step 12 (mid-pruning), resume from the safetensors checkpoint: the weights,
    Adam's state, masks and the batches drawn continue exactly as in one run of 20 steps."""
    items = make_items(2, 1.0)
    torch.manual_seed(0)
    _tiny_fit(tmp_path / "a", items)
    torch.manual_seed(0)
    st = _tiny_fit(tmp_path / "b", items, stop_at_step=12)
    assert st["step"] == 12
    st = _tiny_fit(tmp_path / "b", items, resume=True)
    assert st["step"] == 20
    ma, oa, sa = trainer.load_checkpoint(tmp_path / "a")
    mb, ob, sb = trainer.load_checkpoint(tmp_path / "b")
    assert sa["final"]["val"] == sb["final"]["val"] and sa["qat"] and sb["qat"]
    for k, v in ma.state_dict().items():
        assert torch.equal(v, mb.state_dict()[k]), k
    for pid, s in oa["state"].items():
        for k, v in s.items():
            assert torch.equal(v, ob["state"][pid][k]), (pid, k)


def test_checkpoint_is_safetensors_and_json_not_pickle(trained):
    out, _, _, _ = trained
    from safetensors import safe_open

    path = out / trainer.CKPT_NAME
    assert path.suffix == ".safetensors" and not (out / "last.pt").exists()
    assert not [p for p in out.iterdir() if ".tmp" in p.name]  # temporary files renamed away
    with safe_open(str(path), "pt") as fh:
        meta = json.loads(fh.metadata()[trainer.META_KEY])
        keys = set(fh.keys())
    assert meta["format"] == trainer.CKPT_FORMAT and meta["state"]["step"] == 100
    assert meta["hp"]["hidden"] == 32 and meta["rng"]["numpy"]["bit_generator"] == "PCG64"
    assert meta["optimizer"]["param_groups"][0]["params"]
    assert "model.gru.weight_hh_l0" in keys and "model.mask_R" in keys and "opt.0.exp_avg" in keys
    assert json.loads((out / "last.json").read_text())["state"]["step"] == 100
    raw = path.read_bytes()  # safetensors: u64 header length, JSON header, raw tensor bytes; no pickle
    n = int.from_bytes(raw[:8], "little")
    assert raw[8:9] == b"{" and json.loads(raw[8 : 8 + n])["__metadata__"][trainer.META_KEY]


def test_old_pickle_checkpoint_gives_clear_error_and_converts(trained, tmp_path):
    out, items, _, _ = trained
    model, opt_state, state = trainer.load_checkpoint(out)
    old = tmp_path / "old"
    old.mkdir()
    # what the trainer wrote before (torch.save of tensors and plain values)
    torch.save(
        {"model": model.state_dict(), "opt": opt_state, "hp": dict(model.hp), "state": json.dumps(state)},
        old / "last.pt",
    )
    for target in (old, old / "last.pt"):
        with pytest.raises(trainer.CheckpointError, match="convert-checkpoint"):
            trainer.load_checkpoint(target)
    with pytest.raises(trainer.CheckpointError, match="convert-checkpoint"):
        trainer.fit(
            None,
            old,
            resume=True,
            max_steps=101,
            minutes=1e9,
            items=items,
            val_items=items[:1],
            log=lambda m: None,
            threads=1,
        )
    assert trainer.convert_legacy_checkpoint(old) == old / trainer.CKPT_NAME
    m2, o2, s2 = trainer.load_checkpoint(old)
    assert s2 == state and o2["state"].keys() == opt_state["state"].keys()
    for k, v in model.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])
    # a preset is not a checkpoint
    export.export_checkpoint(out, tmp_path / "p.safetensors", name="tiny")
    with pytest.raises(trainer.CheckpointError, match="metadata"):
        trainer.load_checkpoint(tmp_path / "p.safetensors")


def test_export_load_render(trained, tmp_path):
    out, items, state, _ = trained
    path = export.export_checkpoint(out, tmp_path / "tiny.safetensors", name="tiny")
    p = load_preset(path)
    c = p.config
    assert c["excitation"] == 2 and c["head"] == "mulaw" and c["hidden"] == 32
    assert c["feature_names"] == F.feature_names(24)
    assert c["training"]["steps"] == 100
    # pruned to 16x4 blocks: about half of R's blocks are gone
    assert 0.4 < p.layers["R"].density < 0.6
    f = items[0][2]
    y = Vocoder(p, seed=1).vocode(f)
    assert y.shape == (f.shape[0] * HOP,) and np.all(np.isfinite(y)) and np.abs(y).max() > 0


def test_int8_engine_agrees_with_float_model(trained, tmp_path):
    out, items, _, _ = trained
    model, _, _ = trainer.load_checkpoint(out)
    model.eval()
    model.qat = False
    p = export.build_preset(model, name="tiny")
    _, a, f, _ = items[1]
    f, a = f[:40], a[: 40 * HOP]
    lt = Vocoder(p).teacher_forced(f, a)["logits"]
    hp = model.hp
    offs = np.arange(-hp["ctx_before"], hp["lookahead"] + 1)
    idx = np.clip(np.arange(len(f))[:, None] + offs[None, :], 0, len(f) - 1)
    k = mulaw_encode(a, 8)
    prev = np.concatenate([[128], k[:-1]]) * 2.0 / 255 - 1
    with torch.no_grad():
        lf = model(
            torch.from_numpy(f[idx].reshape(1, len(f), -1)),
            torch.tensor(prev[None], dtype=torch.float32),
            torch.from_numpy(ref_excitation(f, HOP, SR)[None]),
        )[0].numpy()
    scale = lf.std()
    err = np.abs(lt - lf)
    assert np.mean(err) < 0.05 * scale, (np.mean(err), scale)
    assert np.mean(np.argmax(lt, 1) == np.argmax(lf, 1)) > 0.9


def test_aligned_excitation_tracks_the_audio():
    """Training's excitation: the engine's formula (same shape) with the phase of the
    audio's own fundamental."""
    _, a, f, _ = make_items(1)[0]
    e = ref_excitation(f, HOP, SR)
    ea = aligned_excitation(a, f, HOP, SR)
    assert ea.shape == e.shape and np.all(np.isfinite(ea))
    # The aligned phase follows the audio's own fundamental: cos(2 pi phi) correlates with it.
    from scipy.signal import butter, sosfiltfilt

    lp = sosfiltfilt(butter(4, 300, fs=SR, output="sos"), a.astype(np.float64))
    c = np.cos(2 * np.pi * aligned_phase(a, f, HOP, SR))
    v = np.repeat(f[:, 1] > 0.5, HOP)
    seg = [np.corrcoef(c[v][i : i + 400], lp[v][i : i + 400])[0, 1] for i in range(0, v.sum() - 400, 400)]
    assert np.median(seg) > 0.6


def test_pruning_helpers():
    assert sparsity_at(0.1, 0.2, 0.5, 0.9) == 0.0
    assert sparsity_at(0.7, 0.2, 0.5, 0.9) == 0.9
    assert 0.0 < sparsity_at(0.3, 0.2, 0.5, 0.9) < sparsity_at(0.5, 0.2, 0.5, 0.9) < 0.9
    w = torch.randn(64, 32)
    m = block_mask(w, 0.75)
    blocks = m.view(4, 16, 8, 4)
    assert torch.all(blocks.amin(dim=(1, 3)) == blocks.amax(dim=(1, 3)))  # whole 16x4 blocks
    assert abs(m.mean().item() - 0.25) < 1e-6
    # fake quantisation lands on the grid quantize_rows uses (saturation rule included)
    from vocoder.engine.blocksparse import quantize_rows

    q, s = quantize_rows(w.double().numpy())
    assert np.allclose(fake_quant_rows(w).numpy(), q * s[:, None], atol=1e-5)


def test_singer_data_shape():
    items = [(it[2], [["sil", 0.0, 0.1], ["AA", 0.1, 0.9], ["M", 0.9, 1.0], ["IY", 1.0, 1.4]]) for it in make_items(2)]
    s = build_singer_data(items)
    assert s["version"] == 1 and s["n_env"] == 24
    assert s["phonemes"] == sorted(s["phonemes"]) and "AA" in s["phonemes"]
    assert len(s["envelopes"]) == len(s["phonemes"]) and all(len(e) == 24 for e in s["envelopes"])
    assert len(s["voicing"]) == len(s["durations"]) == len(s["phonemes"])
    i = s["phonemes"].index("AA")
    assert s["voicing"][i] > 0.9 and abs(s["durations"][i] - 0.8) < 1e-6
    assert s["pitch_range"][0] < s["pitch_range"][1]
    json.dumps(s, allow_nan=False)


def test_corpus_from_user_wavs_names_bad_files(tmp_path):
    import soundfile

    src = tmp_path / "in"
    src.mkdir()
    soundfile.write(str(src / "good.wav"), vowel(200.0, 0.5, sr=22050).astype(np.float32), 22050)
    soundfile.write(str(src / "quiet.wav"), np.zeros(4000, np.float32), 22050)
    (src / "broken.wav").write_bytes(b"not a wav file at all")
    logs = []
    man = corpus.build_corpus(tmp_path / "c", wav_dir=src, jobs=1, log=logs.append)
    assert len(man["splits"]["train"]["items"]) == 1
    errs = "\n".join(man["errors"])
    assert "broken.wav" in errs and "quiet.wav" in errs and "silent" in errs
    items = corpus.load_split(tmp_path / "c", "train")
    ((_, a, f, meta),) = items
    assert meta["source"] == "user" and len(a) == len(f) * HOP
    assert abs(len(a) - 8000) <= HOP


def test_radio_phones_to_arpabet():
    assert corpus.to_arpabet("pau") == "sil"
    assert corpus.to_arpabet("aa") == "AA"
    assert corpus.to_arpabet("ax") == "AH"
    assert corpus.to_arpabet("hh") == "HH"
    assert corpus.festival_note(60) == "C5" and corpus.festival_note(66) == "F#5"


def test_model_forward_shapes():
    m = WaveRNN(hidden=32, cond_hidden=8)
    lg = m(torch.zeros(2, 3, 5 * 26), torch.zeros(2, 240), torch.zeros(2, 240, 2))
    assert lg.shape == (2, 240, 256)


def test_floor_of_the_output_representation(trained, tmp_path):
    import soundfile

    from vocoder.train import floor

    out, items, _, _ = trained
    for name, a, _, _ in items[:2]:
        soundfile.write(str(tmp_path / f"{name}.wav"), a, SR)
    res = floor.measure(tmp_path, checkpoint=out)
    r = {k: v["stft"] for k, v in res["rows"].items()}
    assert r["linear16"] < r["mulaw10"] < r["mulaw9"] < r["mulaw8"]
    assert r["preemph8"] < r["mulaw8"] and r["preemph_jitter8_1"] < r["jitter8_1"]
    assert r["mulaw8"] < r["jitter8_1"] and {"tf_argmax", "tf_sample", "jitter8"} <= set(r)
    assert res["sigma_classes"] > 0 and res["preemph_clipped"] == 0.0
    assert all(len(v["bands"]) == 3 and 0 <= v["quiet_share"] <= 1 for v in res["rows"].values())
    # the metric's own floor (1e-5) is the middle one of by_floor
    assert all(abs(v["by_floor"][1] - v["stft"]) < 1e-3 for v in res["rows"].values())
    snr = {k: v["band_snr_db"] for k, v in res["rows"].items() if "band_snr_db" in v}
    assert set(snr) == set(floor.ROUNDTRIPS) and snr["linear16"][0] > snr["mulaw8"][0] > 30
    assert "8-bit mu-law" in floor.format_table(res)


def test_fine_tune_to_preemphasis_from_a_checkpoint(trained, tmp_path):
    """--init-from + --preemphasis: the weights and masks carry over, the targets are the
    pre-emphasised classes, and the exported preset tells the engine to de-emphasise."""
    out, items, _, _ = trained
    base, _, _ = trainer.load_checkpoint(out)
    st = trainer.fit(
        None,
        tmp_path,
        init_from=out,
        preemphasis=0.85,
        max_steps=5,
        minutes=1e9,
        batch=8,
        win_frames=4,
        lr=1e-3,
        sparsity=0.5,
        prune_start=0.0,
        prune_end=0.0,
        items=items,
        val_items=items[:1],
        val_windows=8,
        ckpt_every_s=1e9,
        log=lambda m: None,
        threads=1,
    )
    assert st["step"] == 5 and st["init_from"] == str(out)
    model, _, _ = trainer.load_checkpoint(tmp_path)
    assert model.hp["preemphasis"] == 0.85 and model.hp["hidden"] == base.hp["hidden"]
    for name in base.sparse_params():  # the base's pruned blocks stay pruned
        assert torch.equal(getattr(model, f"mask_{name}"), getattr(base, f"mask_{name}"))
    data = trainer.Dataset(items[:1], HOP, SR, 8, 2, 2, preemphasis=0.85)
    a = items[0][1]
    n = items[0][2].shape[0] * HOP
    assert np.array_equal(data.targets[:n], audio_to_classes(a[:n], 8, 0.85))
    p = load_preset(export.export_checkpoint(tmp_path, tmp_path / "pe.safetensors", name="pe"))
    assert p.preemphasis == 0.85
    y = Vocoder(p, seed=1).vocode(items[0][2])
    assert np.all(np.isfinite(y)) and np.abs(y).max() <= 1.0


def test_source_weights_draw_a_source_more_often():
    items = make_items(n=2, seconds=1.0)
    items[1] = items[1][:3] + ({"source": "oohs"},)
    data = trainer.Dataset(items, HOP, SR, 8, 2, 2)
    starts = data.window_starts(4)
    assert data.window_probabilities(4, None) is None
    assert data.window_probabilities(4, {"oohs": 1.0}) is None
    p = data.window_probabilities(4, {"oohs": 3.0})
    second = starts >= data.files[1][0]
    n1, n2 = (~second).sum(), second.sum()
    # each oohs window weighs 3: the source's share is 3 n2 / (n1 + 3 n2)
    assert np.isclose(p[second].sum(), 3 * n2 / (n1 + 3 * n2))
    assert np.isclose(p.sum(), 1.0) and np.allclose(p[second], p[second][0])
    with pytest.raises(ValueError, match="festival.*no such source"):
        data.window_probabilities(4, {"festival": 2.0})


def test_source_weight_flag_is_checked():
    from vocoder.train.cli import _source_weights

    assert _source_weights(["fluidr3-oohs=3", "user=0.5"]) == {"fluidr3-oohs": 3.0, "user": 0.5}
    for bad in ("fluidr3-oohs", "=3", "oohs=-1", "oohs=x", "oohs=nan"):
        with pytest.raises(SystemExit, match="SOURCE=WEIGHT"):
            _source_weights([bad])


@pytest.fixture(scope="module")
def trained_predictor(tmp_path_factory):
    """A tiny predictor model (docs/model.md, "Prediction") trained 100 steps."""
    return train_tiny(
        tmp_path_factory.mktemp("ckpt_pred"), predictor="lpc+pitch", ltp_gain=0.8, preemphasis=0.6, noise_classes=2.0
    )


def test_predictor_model_trains_and_runs_free(trained_predictor, tmp_path):
    """About 100 steps of the new kind: the loss falls, the inputs carry the prediction,
    and the exported int8 voice free-runs finite and bounded."""
    out, items, state, logs = trained_predictor
    first = float(logs[1].split("loss ")[1].split()[0])
    assert state["step"] == 100 and state["final"]["val"] < first - 0.5, (first, state["final"])
    model, _, _ = trainer.load_checkpoint(out)
    assert model.hp["predictor"] == "lpc+pitch" and model.predictor
    assert torch.count_nonzero(model.gru.weight_ih_l0[:, 1:3]) > 0  # p and the last class are fed
    p = load_preset(
        export.export_checkpoint(
            out, tmp_path / "pred.safetensors", name="pred", temperature=0.3, temperature_unvoiced=1.0, highpass_hz=60.0
        )
    )
    c = p.config
    assert (c["predictor"], c["ltp_gain"], c["temperature_unvoiced"], c["highpass_hz"]) == ("lpc+pitch", 0.8, 1.0, 60.0)
    for _, _, f, _ in items:
        y = Vocoder(p, seed=1).vocode(f)
        assert y.shape == (f.shape[0] * HOP,) and np.all(np.isfinite(y)) and 0 < np.abs(y).max() <= 1.0
        assert np.std(y) > 0.01


def test_predictor_targets_are_the_remainder(trained_predictor):
    """The dataset's targets are the engine's predictor's remainder classes: decoded onto
    the prediction they give back the pre-emphasised recording (no noise), and noise
    injection changes the inputs but not what the targets aim at."""
    from vocoder.engine.predict import Predictor
    from vocoder.engine.reference import preemphasize

    _, items, _, _ = trained_predictor
    name, a, f, meta = items[0]
    clean = trainer.Dataset([items[0]], HOP, SR, 8, 2, 2, preemphasis=0.6, predictor="lpc+pitch", ltp_gain=0.8)
    noisy = trainer.Dataset(
        [items[0]],
        HOP,
        SR,
        8,
        2,
        2,
        preemphasis=0.6,
        predictor="lpc+pitch",
        ltp_gain=0.8,
        noise_classes=3.0,
        noise_seed=1,
    )
    x = preemphasize(a[: f.shape[0] * HOP], 0.6).astype(np.float32)
    run = Predictor(SR, 24, 0.6, 0.8).run(f, HOP, 256, classes=clean.targets.astype(np.int32))
    assert np.abs(run["signal"] - x).max() < 0.02
    assert clean.prev.shape == (len(x), 3) and not np.array_equal(clean.prev, noisy.prev)
    # aimed from a different past: the targets correct its errors (test_predict checks that
    # the noisy past stays near the recording)
    assert np.mean(clean.targets == noisy.targets) < 0.9
