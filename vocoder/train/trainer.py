"""Teacher-forced training of :class:`vocoder.train.model.WaveRNN` on a corpus.

Phases, by share of the time budget (``--minutes``): dense training, then gradual block
pruning of R, O1 and O2 to ``--sparsity`` with z = Z (1 - (1 - (t - t0)/S)^3), then
quantisation-aware fine-tuning (per-row int8 weights obeying the saturation rule, the
engine's activation quantisation) at the final sparsity. Time is measured in training
seconds, stored in the checkpoint, so ``--resume`` continues the schedule.

Checkpoints are safetensors with their scalar state as JSON (see ``save_checkpoint``): no
pickle is written or read.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from ..engine.reference import audio_to_classes, class_to_input, preemphasize
from ..engine.reference import excitation as free_excitation
from . import corpus as corpus_mod
from .excitation import aligned_excitation
from .model import WaveRNN, block_mask, block_norms, sparsity_at

CKPT_NAME = "last.safetensors"
LEGACY_CKPT_NAME = "last.pt"


# ---------------------------------------------------------------------- data


class Dataset:
    """A corpus split in memory, ready for drawing random windows.

    All files are concatenated; windows never cross a file boundary. Per sample it holds
    the target class, the previous-sample input and the excitation (phase-aligned for
    training, or the free-running one of docs/model.md); per frame the raw features and
    the index table of each frame's conditioning window (clamped at file edges).
    """

    def __init__(
        self,
        items,
        hop,
        sample_rate,
        bits,
        ctx_before,
        lookahead,
        exc_mode="aligned",
        preemphasis=0.0,
        predictor="none",
        ltp_gain=0.0,
        noise_classes=0.0,
        noise_seed=0,
    ):
        self.hop, self.bits, self.Q = hop, bits, 2**bits
        pred = None
        if predictor != "none":
            from .._engine import Predictor

            pred = Predictor(sample_rate, items[0][2].shape[1] - 2, preemphasis, ltp_gain)
        noise_rng = np.random.default_rng(noise_seed)
        feats, targets, prevs, excs, ctx_idx, starts = [], [], [], [], [], []
        frame_base = 0
        self.names, self.sources = [], []
        for name, audio, f, meta in items:
            n = f.shape[0]
            if n < 8:
                continue
            a = np.zeros(n * hop, np.float64)
            a[: min(len(audio), n * hop)] = audio[: n * hop]
            if pred is None:
                k = audio_to_classes(a, bits, preemphasis)
                prev = np.concatenate([[self.Q // 2], k[:-1]])
                prevs.append(class_to_input(prev, self.Q).astype(np.float32))
            else:
                k, inputs = predicted_classes(pred, a, f, hop, self.Q, preemphasis, noise_classes, noise_rng)
                prevs.append(inputs)
            feats.append(f.astype(np.float32))
            targets.append(k.astype(np.int16))
            if exc_mode == "aligned":
                excs.append(aligned_excitation(a, f, hop, sample_rate))
            elif exc_mode == "free":
                excs.append(free_excitation(f, hop, sample_rate))
            else:
                excs.append(np.zeros((n * hop, 2), np.float32))
            offs = np.arange(-ctx_before, lookahead + 1)
            ctx_idx.append(frame_base + np.clip(np.arange(n)[:, None] + offs[None, :], 0, n - 1))
            starts.append((frame_base, n))
            frame_base += n
            self.names.append(name)
            self.sources.append((meta or {}).get("source", ""))
        if not feats:
            raise ValueError("no usable items (each needs at least 8 frames)")
        self.feats = np.concatenate(feats)
        self.targets = np.concatenate(targets)
        self.prev = np.concatenate(prevs)
        self.exc = np.concatenate(excs)
        self.ctx_idx = np.concatenate(ctx_idx).astype(np.int64)
        self.files = starts
        self.frames = frame_base

    @property
    def seconds(self):
        return self.frames * self.hop / 1.0

    def window_starts(self, win_frames):
        """Every frame index a window of ``win_frames`` can start at."""
        s = [np.arange(b, b + n - win_frames + 1) for b, n in self.files if n >= win_frames]
        return np.concatenate(s)

    def window_probabilities(self, win_frames, source_weights):
        """Drawing probability of each of ``window_starts``: every window of a source weighs
        ``source_weights[source]`` (default 1), so a weight of 3 draws that source's audio as
        if it were three times as long. None when every weight is 1 (uniform draw)."""
        if not source_weights or all(w == 1.0 for w in source_weights.values()):
            return None
        unknown = set(source_weights) - set(self.sources)
        if unknown:
            raise ValueError(
                f"source weight for {sorted(unknown)}: no such source in the corpus "
                f"(sources: {sorted(set(self.sources))})"
            )
        w = [
            np.full(n - win_frames + 1, float(source_weights.get(src, 1.0)))
            for (b, n), src in zip(self.files, self.sources)
            if n >= win_frames
        ]
        w = np.concatenate(w)
        return w / w.sum()

    def batch(self, starts, win_frames):
        """Tensors (ctx [B, fr, K*nf], prev [B, T] or [B, T, 3], exc [B, T, 2], target [B, T]) for
        window starts."""
        hop = self.hop
        fr = starts[:, None] + np.arange(win_frames)[None, :]
        ctx = self.feats[self.ctx_idx[fr]]  # [B, fr, K, nf]
        ctx = ctx.reshape(len(starts), win_frames, -1)
        si = (starts * hop)[:, None] + np.arange(win_frames * hop)[None, :]
        return (
            torch.from_numpy(ctx),
            torch.from_numpy(self.prev[si]),
            torch.from_numpy(self.exc[si]),
            torch.from_numpy(self.targets[si].astype(np.int64)),
        )


def predicted_classes(pred, audio, features, hop, n_classes, preemphasis, noise_classes, rng):
    """Targets and inputs of a predictor model for one file: the remainder classes after
    the prediction (ext/engine/predict.c, the engine's own code) and the network's three
    inputs per sample, ``[T, 3]`` in [-1, 1].

    LPCNet's noise injection: the past the predictor and the network see is built from
    the target classes moved by a random number of classes (Laplace, scale drawn per file
    uniformly in 0..``noise_classes``), so the network learns to pull a past as imperfect
    as its own free-running one back towards the recording instead of drifting."""
    target = preemphasize(audio, preemphasis).astype(np.float32)
    noise = None
    if noise_classes > 0:
        scale = rng.uniform(0.0, noise_classes)
        noise = np.rint(rng.laplace(0.0, scale, len(target))).astype(np.int32)
    run = pred.run(np.ascontiguousarray(features, np.float32), hop, n_classes, target=target, noise=noise)
    inputs = np.stack([class_to_input(run[k], n_classes) for k in ("in_s", "in_p", "in_e")], axis=1)
    return run["target"], inputs.astype(np.float32)


def feature_stats(items):
    f = np.concatenate([it[2] for it in items]).astype(np.float64)
    mean = f.mean(axis=0)
    std = np.maximum(f.std(axis=0), 1e-2)
    return mean.astype(np.float32), std.astype(np.float32)


# ---------------------------------------------------------------------- checkpoints
#
# A checkpoint is one safetensors file (no pickle: loading it runs no code). Tensors:
# ``model.<name>`` (the model's state_dict, masks and normalisation included),
# ``opt.<param index>.<name>`` (Adam's per-parameter state) and ``rng.torch``. Everything
# else is JSON in the file's metadata under ``vocoder.checkpoint``: the format version,
# the model's hyperparameters, Adam's param_groups, the training state (step, training
# seconds, schedule position, history, QAT flag) and the numpy generator's state, so a
# resumed run draws the same batches an uninterrupted one would. The file is written to a
# temporary name, synced and renamed over the old one; ``last.json`` beside it is a
# readable copy of the JSON (the loader does not use it).

CKPT_FORMAT = "vocoder.train checkpoint"
CKPT_VERSION = 1
META_KEY = "vocoder.checkpoint"


class CheckpointError(ValueError):
    pass


def checkpoint_path(path) -> Path:
    """``DIR/last.safetensors`` for a directory, else the path itself."""
    p = Path(path)
    return p / CKPT_NAME if p.is_dir() else p


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def save_checkpoint(path, model, opt, state, rng=None):
    """Write ``model``, ``opt`` (may be None), the JSON-able ``state`` and ``rng`` (a numpy
    Generator) to ``path`` atomically, plus ``path.with_suffix('.json')`` for reading."""
    from safetensors.torch import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    groups, scalars = [], {}
    if opt is not None:
        sd = opt.state_dict()
        groups = sd["param_groups"]
        for pid, st in sd["state"].items():
            for k, v in st.items():
                if torch.is_tensor(v):
                    tensors[f"opt.{pid}.{k}"] = v.detach().cpu().contiguous()
                else:
                    scalars[f"{pid}.{k}"] = v
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "format": CKPT_FORMAT,
        "version": CKPT_VERSION,
        "hp": dict(model.hp),
        "state": state,
        "optimizer": {"param_groups": groups, "scalars": scalars},
        "rng": {"numpy": rng.bit_generator.state if rng is not None else None},
    }
    text = json.dumps(meta, default=float)
    _atomic_write(path, save(tensors, metadata={META_KEY: text}))
    _atomic_write(path.with_suffix(".json"), json.dumps(json.loads(text), indent=1).encode())


def _legacy_message(path) -> str:
    return (
        f"{path} is a PyTorch pickle checkpoint (last.pt, written before checkpoints became "
        f"safetensors + JSON); it is not read, because loading a pickle can run code. Convert it once "
        f"with `vocoder train convert-checkpoint {path}` (reads it with torch.load(weights_only=True) "
        f"and writes {Path(path).with_name(CKPT_NAME)}), or train again."
    )


def read_checkpoint(path):
    """``(model, opt_state, state, rng_state)`` of a checkpoint: ``opt_state`` for
    ``Adam.load_state_dict`` (None if it had no optimizer), ``rng_state`` a dict with the
    numpy generator's state (``numpy``, may be None) and torch's (``torch``)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = checkpoint_path(path)
    if not path.exists():
        legacy = path.with_name(LEGACY_CKPT_NAME)
        if path.name == CKPT_NAME and legacy.exists():
            raise CheckpointError(_legacy_message(legacy))
        raise FileNotFoundError(f"{path}: no such checkpoint")
    with open(path, "rb") as fh:
        head = fh.read(9)
    # safetensors: an 8-byte header length, then the JSON header; torch.save: a zip ("PK")
    # or, before PyTorch 1.6, a bare pickle (protocol byte 0x80)
    if path.suffix == ".pt" or (head[8:9] != b"{" and (head[:2] == b"PK" or head[:1] == b"\x80")):
        raise CheckpointError(_legacy_message(path))
    try:
        with safe_open(str(path), "pt") as fh:
            text = (fh.metadata() or {}).get(META_KEY)
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({e})") from e
    if text is None:
        raise CheckpointError(
            f"{path}: a safetensors file without vocoder checkpoint metadata "
            f"(a preset? export writes presets, fit writes checkpoints)"
        )
    meta = json.loads(text)
    if meta.get("format") != CKPT_FORMAT or meta.get("version") != CKPT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {meta.get('format')!r} version {meta.get('version')!r}, "
            f"this vocoder reads {CKPT_FORMAT!r} version {CKPT_VERSION}"
        )
    model = WaveRNN(**meta["hp"])
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state = meta["state"]
    model.qat = bool(state.get("qat", False))
    opt_state = None
    groups = meta["optimizer"]["param_groups"]
    if groups:
        per = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                pid, name = k[4:].split(".", 1)
                per.setdefault(int(pid), {})[name] = v
        for k, v in meta["optimizer"]["scalars"].items():
            pid, name = k.split(".", 1)
            per.setdefault(int(pid), {})[name] = v
        for g in groups:
            if isinstance(g.get("betas"), list):
                g["betas"] = tuple(g["betas"])
        opt_state = {"state": per, "param_groups": groups}
    return model, opt_state, state, {"numpy": meta["rng"].get("numpy"), "torch": tensors.get("rng.torch")}


def load_checkpoint(path):
    """``(model, opt_state, state)`` from a checkpoint file or directory (no code runs)."""
    model, opt_state, state, _ = read_checkpoint(path)
    return model, opt_state, state


def convert_legacy_checkpoint(path, out=None) -> Path:
    """Rewrite an old ``last.pt`` (torch.save of plain tensors and values) as a safetensors
    checkpoint. The one place that reads a pickle, with ``weights_only=True`` (a restricted
    unpickler that builds only tensors and plain containers). Returns the new file."""
    path = Path(path)
    if path.is_dir():
        path = path / LEGACY_CKPT_NAME
    ck = torch.load(path, map_location="cpu", weights_only=True)
    model = WaveRNN(**ck["hp"])
    model.load_state_dict(ck["model"])
    state = json.loads(ck["state"])
    model.qat = bool(state.get("qat", False))
    opt = None
    if ck.get("opt"):
        opt = torch.optim.Adam(model.parameters())
        opt.load_state_dict(ck["opt"])
    out = Path(out) if out else path.with_name(CKPT_NAME)
    save_checkpoint(out, model, opt, state)
    return out


# ---------------------------------------------------------------------- training


def model_from_preset(preset, predictor="none", ltp_gain=0.0):
    """A :class:`WaveRNN` holding a preset's weights (int8 matrices dequantised) and its
    pruning pattern as masks: a start for training a new kind of voice from a shipped one."""
    from ..engine.reference import ReferenceModel

    c = preset.config
    if c["head"] != "mulaw" or c["subscale"] != 1:
        raise ValueError(f"{preset.name}: only mu-law presets of subscale 1 can start a training run")
    model = WaveRNN(
        n_features=c["n_features"],
        hidden=c["hidden"],
        cond_hidden=c["cond_hidden"],
        ctx_before=c["ctx_before"],
        lookahead=c["lookahead"],
        bits=c["mulaw_bits"],
        excitation=c["excitation"],
        hop=c["hop"],
        sample_rate=c["sample_rate"],
        preemphasis=c["preemphasis"],
        predictor=predictor,
        ltp_gain=ltp_gain,
    )
    ref = ReferenceModel(preset)
    t = {
        k: torch.tensor(np.asarray(v, np.float32)) for k, v in preset.tensors.items()
    }  # a copy: the preset is read-only

    def w(name):
        return torch.as_tensor(ref.W[name].astype(np.float32))

    with torch.no_grad():
        model.feat_mean.copy_(t["feat_mean"])
        model.feat_std.copy_(t["feat_std"])
        model.cond1.weight.copy_(t["cond1_w"])
        model.cond1.bias.copy_(t["cond1_b"])
        model.gru.weight_ih_l0.copy_(torch.cat([t["in_w"], t["cond2_w"]], dim=1))
        model.gru.bias_ih_l0.copy_(t["cond2_b"])
        model.gru.weight_hh_l0.copy_(w("R"))
        model.gru.bias_hh_l0.copy_(torch.as_tensor(np.asarray(ref.b["R"], np.float32)))
        for name, layer in (("O1", model.O1), ("O2", model.O2)):
            layer.weight.copy_(w(name))
            layer.bias.copy_(torch.as_tensor(np.asarray(ref.b[name], np.float32)))
        if model.E:
            model.exc_out.copy_(t["exc_out_w"])
        for name, p in model.sparse_params().items():
            getattr(model, f"mask_{name}").copy_(
                (block_norms(p) > 0)
                .float()
                .repeat_interleave(16, 0)
                .repeat_interleave(4, 1)[: p.shape[0], : p.shape[1]]
            )
    return model


def evaluate_loss(model, data, starts, win_frames, zero_exc=False, batch=64, exc_override=None, spread=None):
    """Mean cross-entropy (nats) over fixed windows. With ``spread`` (a dict) it also
    stores there the class spread: the mean |k - true class| of the model's distribution
    under teacher forcing (``"mean_abs"``), the number issue 12's simulation ties to the
    voice's noise (about 2 classes comes within ~1.5 dB of the source's HNR). Comparable
    only within one output scheme: on the held-out set 1.2 (plain, pre-emphasis 0.6) reads
    11.3 and the predictor voice after 55 minutes 18.8, though the latter is 7-13 dB more
    harmonic below 2 kHz (a remainder's class is a smaller step in amplitude). Free running
    can only be worse; ``vocoder evaluate`` measures that output."""
    model.eval()
    tot, n = 0.0, 0
    dev = 0.0
    with torch.no_grad():
        for i in range(0, len(starts), batch):
            ctx, prev, exc, tgt = data.batch(starts[i : i + batch], win_frames)
            if zero_exc:
                exc = torch.zeros_like(exc)
            elif exc_override is not None:
                exc = exc_override(starts[i : i + batch], exc)
            logits = model(ctx, prev, exc)
            tot += torch.nn.functional.cross_entropy(
                logits.reshape(-1, model.Q), tgt.reshape(-1), reduction="sum"
            ).item()
            n += tgt.numel()
            if spread is not None:
                prob = torch.softmax(logits.reshape(-1, model.Q).double(), -1)
                k = torch.arange(model.Q, dtype=torch.float64)
                dev += (prob * (k[None, :] - tgt.reshape(-1, 1).double()).abs()).sum().item()
    model.train()
    if spread is not None:
        spread["mean_abs"] = dev / max(1, n)
    return tot / max(1, n)


def fit(
    corpus_dir,
    out_dir,
    minutes=60.0,
    hidden=384,
    bits=8,
    cond_hidden=128,
    ctx_before=2,
    lookahead=2,
    batch=128,
    win_frames=6,
    lr=2e-3,
    lr_final=2e-4,
    sparsity=0.9,
    prune_start=0.3,
    prune_end=0.75,
    qat_start=0.8,
    resume=False,
    seed=0,
    threads=2,
    bf16=False,
    ckpt_every_s=300.0,
    excitation=2,
    sources=None,
    log=print,
    max_steps=None,
    val_windows=256,
    items=None,
    val_items=None,
    stop_at_step=None,
    preemphasis=0.0,
    init_from=None,
    source_weights=None,
    predictor="none",
    ltp_gain=0.8,
    noise_classes=2.0,
):
    """Train (or resume) for ``minutes`` of training time in total; returns the final state dict.

    ``max_steps`` bounds the run by steps instead of time (the schedule then runs on steps);
    ``stop_at_step`` stops this call early, checkpointed, without changing the schedule (an
    interruption, for tests): a later ``resume=True`` call continues exactly where it stopped.
    ``init_from`` starts a new run (fresh optimiser and schedule) from another checkpoint's
    weights and masks, e.g. to fine-tune a voice to a new ``preemphasis``.
    ``source_weights`` ({source: weight}) draws training windows of a source more (or less)
    often than its share of the audio, e.g. ``{"fluidr3-oohs": 3}``.
    ``predictor="lpc+pitch"`` trains the remainder after the prediction from the features
    (docs/model.md), with the pitch predictor's gain ``ltp_gain`` and noise injection of
    up to ``noise_classes`` (see :func:`predicted_classes`). ``init_from`` may also be a
    preset file: its int8 weights, dequantised, and its pruning pattern start the run.
    """
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / CKPT_NAME
    hop, sr = 80, 16000
    if items is None:
        man_path = Path(corpus_dir) / "corpus.json"
        if man_path.exists():
            with open(man_path) as fh:
                man = json.load(fh)
            hop, sr = man.get("hop", 80), man.get("sample_rate", 16000)
        items = corpus_mod.load_split(corpus_dir, "train", sources=sources, hop=hop)
        val_items = corpus_mod.load_split(corpus_dir, "heldout", sources=sources, hop=hop)
    if not items:
        raise ValueError(f"{corpus_dir}: no training items")
    if resume and not ckpt.exists() and (out / LEGACY_CKPT_NAME).exists():
        raise CheckpointError(_legacy_message(out / LEGACY_CKPT_NAME))
    if resume and ckpt.exists():
        model, opt_state, state, rng_state = read_checkpoint(ckpt)
        if rng_state["numpy"] is not None:
            rng.bit_generator.state = rng_state["numpy"]
        if rng_state["torch"] is not None:
            torch.set_rng_state(rng_state["torch"])
        log(f"resumed {ckpt}: step {state['step']}, {state['train_s'] / 60:.1f} min trained")
    elif init_from is not None:
        if str(init_from).endswith(".safetensors") and not Path(init_from).name.startswith("last"):
            from ..engine.presets import load_preset

            model = model_from_preset(load_preset(init_from), predictor=predictor, ltp_gain=ltp_gain)
        else:
            model = read_checkpoint(init_from)[0]
        model.hp["preemphasis"] = float(preemphasis)
        if predictor != model.hp.get("predictor", "none"):
            model.hp.update(predictor=predictor, ltp_gain=float(ltp_gain))
            model.predictor = predictor != "none"
        log(f"fine-tuning from {init_from} (H={model.hp['hidden']}), preemphasis {preemphasis}")
        opt_state, state = (
            None,
            {"step": 0, "train_s": 0.0, "samples": 0, "history": [], "qat": False, "init_from": str(init_from)},
        )
    else:
        model = WaveRNN(
            n_features=items[0][2].shape[1],
            hidden=hidden,
            cond_hidden=cond_hidden,
            ctx_before=ctx_before,
            lookahead=lookahead,
            bits=bits,
            excitation=excitation,
            hop=hop,
            sample_rate=sr,
            preemphasis=preemphasis,
            predictor=predictor,
            ltp_gain=ltp_gain,
        )
        model.set_normalisation(*feature_stats(items))
        opt_state, state = None, {"step": 0, "train_s": 0.0, "samples": 0, "history": [], "qat": False}
    state["minutes"] = minutes
    hp = model.hp
    t_setup = time.time()
    pe = hp.get("preemphasis", 0.0)
    pred_kw = dict(predictor=hp.get("predictor", "none"), ltp_gain=hp.get("ltp_gain", 0.0))
    data = Dataset(
        items,
        hop,
        sr,
        hp["bits"],
        hp["ctx_before"],
        hp["lookahead"],
        preemphasis=pe,
        **pred_kw,
        noise_classes=noise_classes,
        noise_seed=seed,
    )
    vdata = Dataset(
        val_items or items[:2], hop, sr, hp["bits"], hp["ctx_before"], hp["lookahead"], preemphasis=pe, **pred_kw
    )
    vstarts_all = vdata.window_starts(win_frames)
    vstarts = np.sort(
        np.random.default_rng(1234).choice(vstarts_all, size=min(val_windows, len(vstarts_all)), replace=False)
    )
    starts_all = data.window_starts(win_frames)
    starts_p = data.window_probabilities(win_frames, source_weights)
    if starts_p is not None:
        state["source_weights"] = dict(source_weights)
    log(
        f"data: {data.frames * hop / sr / 60:.1f} min train, {vdata.frames * hop / sr:.0f} s validation, "
        f"setup {time.time() - t_setup:.0f} s; model H={hp['hidden']} Q={model.Q} E={hp['excitation']}"
    )
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    if opt_state:
        opt.load_state_dict(opt_state)
    budget = minutes * 60.0
    last_ck = time.time()
    last_log = time.time()
    win_samples = win_frames * hop
    t_prev_mask = state.get("mask_frac", -1.0)
    loss_ema = state.get("loss_ema")
    model.train()
    frac0 = state["train_s"] / budget if max_steps is None else state["step"] / max_steps
    z = sparsity_at(frac0, prune_start, prune_end - prune_start, sparsity) if sparsity > 0 else 0.0
    while state["train_s"] < budget and (max_steps is None or state["step"] < max_steps):
        if stop_at_step is not None and state["step"] >= stop_at_step:
            break
        t0 = time.time()
        frac = state["train_s"] / budget if max_steps is None else state["step"] / max_steps
        # learning rate: cosine from lr to lr_final over the budget
        cur_lr = lr_final + 0.5 * (lr - lr_final) * (1 + math.cos(math.pi * min(1.0, frac)))
        for g in opt.param_groups:
            g["lr"] = cur_lr
        z = sparsity_at(frac, prune_start, prune_end - prune_start, sparsity) if sparsity > 0 else 0.0
        if z > 0 and (frac - t_prev_mask >= 0.005 or frac >= prune_end and t_prev_mask < prune_end):
            for name, p in model.sparse_params().items():
                getattr(model, f"mask_{name}").copy_(block_mask(p, z))
            model.apply_masks()
            t_prev_mask = frac
            state["mask_frac"] = frac
        if frac >= qat_start and not model.qat:
            model.qat = True
            state["qat"] = True
            log(f"step {state['step']}: quantisation-aware fine-tuning from here")
        starts = rng.choice(starts_all, size=batch, p=starts_p)
        ctx, prev, exc, tgt = data.batch(starts, win_frames)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(ctx, prev, exc)
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, model.Q), tgt.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        model.apply_masks()
        dt = time.time() - t0
        state["train_s"] += dt
        state["step"] += 1
        state["samples"] += batch * win_samples
        lv = loss.item()
        loss_ema = lv if loss_ema is None else 0.98 * loss_ema + 0.02 * lv
        state["loss_ema"] = loss_ema
        now = time.time()
        if now - last_log >= 30 or state["step"] <= 3:
            sps = batch * win_samples / dt
            log(
                f"step {state['step']:6d}  {state['train_s'] / 60:6.1f}/{minutes:.0f} min  loss {lv:.3f} "
                f"(avg {loss_ema:.3f})  lr {cur_lr:.2e}  sparsity {z:.2f}{'  qat' if model.qat else ''}  "
                f"{sps / 1000:.1f}k samples/s"
            )
            last_log = now
        if now - last_ck >= ckpt_every_s:
            sp = {}
            vl = evaluate_loss(model, vdata, vstarts, win_frames, spread=sp)
            state["history"].append(
                {
                    "step": state["step"],
                    "train_s": state["train_s"],
                    "loss": loss_ema,
                    "val": vl,
                    "sparsity": z,
                    "class_spread": round(sp["mean_abs"], 3),
                }
            )
            log(
                f"step {state['step']}: validation loss {vl:.4f} nats, class spread {sp['mean_abs']:.2f}; "
                f"checkpoint {ckpt}"
            )
            save_checkpoint(ckpt, model, opt, state, rng)
            last_ck = time.time()
    sp = {}
    vl = evaluate_loss(model, vdata, vstarts, win_frames, spread=sp)
    vz = evaluate_loss(model, vdata, vstarts, win_frames, zero_exc=True)
    state["final"] = {
        "val": vl,
        "val_zero_excitation": vz,
        "class_spread": sp["mean_abs"],
        "step": state["step"],
        "train_s": state["train_s"],
        "samples_per_s": state["samples"] / max(1e-9, state["train_s"]),
        "sparsity": z,
        "train_minutes_audio": data.frames * hop / sr / 60,
    }
    state["history"].append(
        {"step": state["step"], "train_s": state["train_s"], "loss": loss_ema, "val": vl, "sparsity": z}
    )
    log(f"done: step {state['step']}, validation loss {vl:.4f} nats, with the excitation zeroed {vz:.4f}")
    save_checkpoint(ckpt, model, opt, state, rng)
    return state
