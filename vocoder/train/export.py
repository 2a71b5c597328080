"""Checkpoint -> preset (``vocoder train export``): split the fused GRU weights back into the
tensors of docs/model.md and write them with :func:`vocoder.engine.presets.preset_from_float`,
which quantises every block-sparse matrix per row (obeying the saturation rule) and
drops the pruned (all-zero) 16x4 blocks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import __version__ as vocoder_version
from ..engine.presets import preset_from_float, save_preset
from .features import feature_names


def float_tensors(model) -> tuple:
    """``(dense, matrices)`` of a :class:`WaveRNN`, as preset_from_float takes them."""
    H, n_in = model.H, model.n_in

    def a(t):
        return t.detach().cpu().double().numpy()

    w_ih = a(model.gru.weight_ih_l0)
    in_w = w_ih[:, :n_in].copy()
    if not getattr(model, "predictor", False):
        in_w[:, 1:3] = 0.0  # the plain mu-law head feeds zeros there
    dense = {
        "feat_mean": a(model.feat_mean),
        "feat_std": a(model.feat_std),
        "cond1_w": a(model.cond1.weight),
        "cond1_b": a(model.cond1.bias),
        "cond2_w": w_ih[:, n_in:],
        "cond2_b": a(model.gru.bias_ih_l0),
        "in_w": in_w,
        "sub_bias": np.zeros((1, 3 * H)),
        "exc_out_w": a(model.exc_out)[:, : model.E] if model.E else np.zeros((H, 0)),
    }
    masks = {k: a(getattr(model, f"mask_{k}")) for k in ("R", "O1", "O2")}
    mats = {
        "R": (a(model.gru.weight_hh_l0) * masks["R"], a(model.gru.bias_hh_l0)),
        "O1": (a(model.O1.weight) * masks["O1"], a(model.O1.bias)),
        "O2": (a(model.O2.weight) * masks["O2"], a(model.O2.bias)),
    }
    return dense, mats


def build_preset(
    model,
    state=None,
    singer=None,
    licence="",
    name="default",
    version="1",
    description=None,
    temperature=1.0,
    corpus_info=None,
    temperature_unvoiced=None,
    highpass_hz=20.0,
):
    hp = model.hp
    n_env = hp["n_features"] - 2
    state = state or {}
    final = state.get("final", {})
    training = {
        "trainer": f"vocoder {vocoder_version} vocoder.train (teacher forcing, phase-aligned excitation, "
        f"gradual 16x4 block pruning, quantisation-aware fine-tuning)",
        "steps": state.get("step", 0),
        "train_minutes": round(state.get("train_s", 0.0) / 60.0, 2),
        "samples_per_s": round(final.get("samples_per_s", 0.0)),
        "validation_loss_nats": final.get("val"),
        "validation_loss_zero_excitation_nats": final.get("val_zero_excitation"),
        "corpus": corpus_info or {},
    }
    config = {
        "format_version": 4,
        "name": name,
        "license": licence,
        "version": version,
        "description": description
        or (
            f"Male singing voice trained on Festival kal diphone singing and FluidR3 "
            f"'Voice Oohs' (H={hp['hidden']}, mu-law {hp['bits']} bit, int8 block-sparse)"
        ),
        "sample_rate": hp["sample_rate"],
        "hop": hp["hop"],
        "n_features": hp["n_features"],
        "feature_names": feature_names(n_env),
        "hidden": hp["hidden"],
        "head": "mulaw",
        "mulaw_bits": hp["bits"],
        "subscale": 1,
        "horizon": 0,
        "ctx_before": hp["ctx_before"],
        "lookahead": hp["lookahead"],
        "cond_hidden": hp["cond_hidden"],
        "excitation": hp["excitation"],
        "temperature": float(temperature),
        "preemphasis": float(hp.get("preemphasis", 0.0)),
        "predictor": hp.get("predictor", "none"),
        "ltp_gain": float(hp.get("ltp_gain", 0.0)),
        "temperature_unvoiced": float(temperature if temperature_unvoiced is None else temperature_unvoiced),
        "highpass_hz": float(highpass_hz),
        "training": json.loads(json.dumps(training, default=float)),
        "singer": singer or {},
    }
    dense, mats = float_tensors(model)
    return preset_from_float(config, dense, mats)


def corpus_licence(corpus_dir) -> tuple:
    """``(licence string, corpus info)`` from a corpus manifest."""
    from .corpus import LICENCES, scan

    man = scan(corpus_dir)
    srcs = {k: v for k, v in man["sources"].items() if v["seconds"] > 0}
    lic = " | ".join(f"{k}: {LICENCES.get(k, '')}" for k in sorted(srcs))
    info = {
        "train_minutes_audio": round(man["splits"]["train"]["seconds"] / 60, 2),
        "heldout_seconds": round(man["splits"].get("heldout", {}).get("seconds", 0.0), 1),
        "sources": {k: round(v["seconds"] / 60, 2) for k, v in srcs.items()},
    }
    return lic, info


def export_checkpoint(
    checkpoint,
    out,
    corpus_dir=None,
    name="default",
    version="1",
    temperature=1.0,
    temperature_unvoiced=None,
    highpass_hz=20.0,
):
    from .singer_data import singer_data_from_corpus
    from .trainer import load_checkpoint

    model, _, state = load_checkpoint(Path(checkpoint))
    singer, licence, info = {}, "see training metadata", {}
    if corpus_dir:
        singer = singer_data_from_corpus(corpus_dir)
        licence, info = corpus_licence(corpus_dir)
    p = build_preset(
        model,
        state,
        singer=singer,
        licence=licence,
        name=name,
        version=version,
        temperature=temperature,
        corpus_info=info,
        temperature_unvoiced=temperature_unvoiced,
        highpass_hz=highpass_hz,
    )
    return save_preset(p, out)
