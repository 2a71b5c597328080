"""What the output representation alone costs in the STFT distance (docs/quality.md).

Takes held-out recordings and measures, with the evaluation's own distance
(:func:`vocoder.train.evaluate.stft_distance`, files weighted by frames as
``vocoder evaluate`` does), how far from the recording a *perfect* network would
still be because of what it outputs:

* ``mulaw8`` / ``mulaw9`` / ``mulaw10``: the recording quantised to that many mu-law
  bits and decoded (the network's classes, every one correct);
* ``linear16``: 16-bit linear, the dual (coarse/fine) head's resolution;
* ``preemph8``: 8-bit mu-law of the pre-emphasised signal ``y[n] = x[n] - a x[n-1]``,
  de-emphasised after decoding (LPCNet's noise shaping; ``a`` = ``--alpha``);
* ``jitter8_1`` / ``preemph_jitter8_1``: each correct 8-bit class moved by a rounded
  N(0, 1) number of classes, without / with the pre-emphasis (the same per-sample error,
  noise-shaped or not); ``jitter8``: moved by N(0, sigma^2), an oracle-centred
  distribution as wide as the network's, sampled;
* with ``--checkpoint``: the float model teacher forced on the recording (true past,
  phase-aligned excitation as trained), each sample its argmax (``tf_argmax``) or drawn
  from its distribution at temperature 1 (``tf_sample``): the network's per-sample error
  without the drift of free running. ``sigma`` defaults to the median standard deviation
  (in classes) of those distributions;
* with ``--preset``: the int8 engine's free-running output (what ``vocoder evaluate``
  scores) and WORLD from the same features, for comparison.

Beside the distance it reports each row's mean |log-magnitude difference| in three
bands, the share of the distance from quiet frames of the recording, the distance with
other magnitude floors (the metric's is 1e-5) to show how much quiet bins weigh, and the
spectral convergence (dominated by the loud bins) for comparison.

    python -m vocoder.train.floor DATA_DIR [--checkpoint CK] [--preset default] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..engine.reference import audio_to_dual, dual_to_audio, mulaw_decode, mulaw_encode
from .evaluate import STFT_SIZES, load_heldout, stft_distance

BANDS = ((0.0, 1000.0), (1000.0, 4000.0), (4000.0, 8000.0))
FLOORS = (1e-7, 1e-5, 1e-3)
QUIET_DB = -40.0


def mulaw_roundtrip(a, bits):
    return mulaw_decode(mulaw_encode(a, bits), bits)


def linear16_roundtrip(a):
    return dual_to_audio(*audio_to_dual(a))


def preemph_roundtrip(a, bits, alpha):
    """Quantise ``x[n] - alpha x[n-1]`` to mu-law, decode, then ``x[n] = y[n] + alpha x[n-1]``.

    Returns ``(audio, fraction of pre-emphasised samples that clipped at +-1)``."""
    from scipy.signal import lfilter

    x = np.asarray(a, np.float64)
    y = lfilter([1.0, -alpha], [1.0], x)
    clipped = float(np.mean(np.abs(y) > 1.0))
    yq = mulaw_decode(mulaw_encode(y, bits), bits).astype(np.float64)
    return lfilter([1.0], [1.0, -alpha], yq), clipped


def jitter_roundtrip(a, bits, sigma, rng, alpha=0.0):
    """Each correct class moved by a rounded N(0, sigma^2) number of classes; with ``alpha``,
    in the pre-emphasised domain (then de-emphasised)."""
    from scipy.signal import lfilter

    x = lfilter([1.0, -alpha], [1.0], np.asarray(a, np.float64)) if alpha else a
    k = mulaw_encode(x, bits)
    k = np.clip(k + np.rint(rng.normal(0.0, sigma, k.shape)).astype(np.int64), 0, 2**bits - 1)
    y = mulaw_decode(k, bits)
    return lfilter([1.0], [1.0, -alpha], y.astype(np.float64)) if alpha else y


def logmag(x, n_fft, floor):
    from scipy.signal import stft

    fr, _, Z = stft(np.asarray(x, np.float64), nperseg=n_fft, noverlap=n_fft - n_fft // 4, boundary=None, padded=False)
    return fr, np.log(np.abs(Z) + floor)


def breakdown(x, ref, sample_rate, quiet_db=QUIET_DB):
    """Per-band mean |difference| (the metric's floor), the share of the distance that comes
    from frames of the recording quieter than ``quiet_db`` dBFS (rms), and the distance at
    each of FLOORS."""
    n = min(len(x), len(ref))
    bands = np.zeros(len(BANDS))
    floors = np.zeros(len(FLOORS))
    quiet = sc = 0.0
    r = np.asarray(ref[:n], np.float64)
    for s in STFT_SIZES:
        hs = s // 4
        nfr = (n - s) // hs + 1
        idx = np.arange(nfr)[:, None] * hs + np.arange(s)[None, :]
        rms_db = 10 * np.log10(np.mean(r[idx] ** 2, axis=1) + 1e-24)
        for j, fl in enumerate(FLOORS):
            fr, lx = logmag(x[:n], s, fl)
            _, lr = logmag(ref[:n], s, fl)
            d = np.abs(lx - lr)
            floors[j] += d.mean() / len(STFT_SIZES)
            if fl == 1e-5:
                mx, mr = np.exp(lx) - fl, np.exp(lr) - fl
                sc += np.linalg.norm(mx - mr) / max(1e-12, np.linalg.norm(mr)) / len(STFT_SIZES)
                per_frame = d.mean(axis=0)
                quiet += (
                    per_frame[rms_db[: len(per_frame)] < quiet_db].sum() / max(1e-12, per_frame.sum()) / len(STFT_SIZES)
                )
                hz = fr * sample_rate  # scipy's default fs is 1
                for i, (lo, hi) in enumerate(BANDS):
                    sel = (hz >= lo) & (hz < hi) if hi < sample_rate / 2 else hz >= lo
                    bands[i] += d[sel].mean() / len(STFT_SIZES)
    return bands, floors, quiet, sc


def band_snr(x, ref, sample_rate):
    """``[(signal power, error power)]`` of ``ref`` and ``x - ref`` in each of BANDS (Welch,
    1024 points): where the representation's noise sits under the recording's spectrum."""
    from scipy.signal import welch

    n = min(len(x), len(ref))
    r = np.asarray(ref[:n], np.float64)
    f, P = welch(r, sample_rate, nperseg=1024)
    _, N = welch(np.asarray(x[:n], np.float64) - r, sample_rate, nperseg=1024)
    sel = [(f >= lo) & ((f < hi) if hi < sample_rate / 2 else True) for lo, hi in BANDS]
    return np.array([(P[m].sum(), N[m].sum()) for m in sel])


ROUNDTRIPS = ("mulaw8", "mulaw9", "mulaw10", "linear16", "preemph8")


def teacher_forced_outputs(model, items, sample_rate, hop, rng, window_frames=200):
    """``{name: (argmax audio, sampled audio, median std in classes)}``: the float model teacher
    forced on each recording (phase-aligned excitation, windows of ``window_frames`` run as one
    batch, each starting from a zero state)."""
    import torch

    from .trainer import Dataset

    hp = model.hp
    bits, Q = hp["bits"], model.Q
    out = {}
    for name, a, f in items:
        data = Dataset([(name, a, f, {})], hop, sample_rate, bits, hp["ctx_before"], hp["lookahead"])
        n = data.frames
        W = min(window_frames, n)
        starts = np.unique(np.append(np.arange(0, n - W + 1, W), n - W))
        ka, ks, sd = np.zeros(n * hop, np.int64), np.zeros(n * hop, np.int64), np.zeros(n * hop)
        cls = torch.arange(Q, dtype=torch.float64)
        for s in starts:
            ctx, prev, exc, _ = data.batch(np.array([s]), W)
            with torch.no_grad():
                lg = model(ctx, prev, exc)[0].double()  # [W*hop, Q]
            p = torch.softmax(lg, -1)
            mean = p @ cls
            std = (p @ cls**2 - mean**2).clamp(min=0).sqrt()
            g = torch.from_numpy(rng.gumbel(size=lg.shape))
            sl = slice(s * hop, (s + W) * hop)
            ka[sl], ks[sl], sd[sl] = lg.argmax(-1).numpy(), (lg + g).argmax(-1).numpy(), std.numpy()
        out[name] = (mulaw_decode(ka, bits), mulaw_decode(ks, bits), float(np.median(sd)))
    return out


def measure(
    data_dir,
    checkpoint=None,
    preset=None,
    alpha=0.85,
    sigma=None,
    seed=0,
    max_seconds=60.0,
    sample_rate=16000,
    hop=80,
    n_env=24,
    log=None,
):
    rng = np.random.default_rng(seed)
    p = None
    if preset:
        from .. import load_preset

        p = load_preset(preset)
        sample_rate, hop, n_env = p.sample_rate, p.hop, p.n_features - 2
    items = load_heldout(data_dir, sample_rate, hop, n_env, max_seconds)
    tf, voc = {}, None
    if checkpoint:
        from .trainer import load_checkpoint

        model, _, _ = load_checkpoint(checkpoint)
        model.eval()
        tf = teacher_forced_outputs(model, items, sample_rate, hop, rng)
        if sigma is None:
            sigma = float(np.median([v[2] for v in tf.values()]))
    if p is not None:
        from .. import Vocoder

        voc = Vocoder(p, seed=seed)
    rows, extra = (
        {},
        {
            "alpha": alpha,
            "sigma_classes": None if sigma is None else round(sigma, 3),
            "preemph_clipped": 0.0,
            "quiet_db": QUIET_DB,
        },
    )
    frames = 0
    for name, a, f in items:
        outs = {
            "mulaw8": mulaw_roundtrip(a, 8),
            "mulaw9": mulaw_roundtrip(a, 9),
            "mulaw10": mulaw_roundtrip(a, 10),
            "linear16": linear16_roundtrip(a),
        }
        pe, clipped = preemph_roundtrip(a, 8, alpha)
        outs["preemph8"] = pe
        extra["preemph_clipped"] = max(extra["preemph_clipped"], clipped)
        outs["jitter8_1"] = jitter_roundtrip(a, 8, 1.0, rng)
        outs["preemph_jitter8_1"] = jitter_roundtrip(a, 8, 1.0, rng, alpha)
        if sigma is not None:
            outs["jitter8"] = jitter_roundtrip(a, 8, sigma, rng)
        if name in tf:
            outs["tf_argmax"], outs["tf_sample"] = tf[name][0], tf[name][1]
        if voc is not None:
            from .evaluate import world_from_features

            outs["engine"] = voc.vocode(f)
            outs["world"] = world_from_features(f, sample_rate, hop)
        w = f.shape[0]
        frames += w
        for k, y in outs.items():
            r = rows.setdefault(
                k,
                {"stft": 0.0, "bands": np.zeros(len(BANDS)), "floors": np.zeros(len(FLOORS)), "quiet": 0.0, "sc": 0.0},
            )
            b, fl, q, sc = breakdown(y, a, sample_rate)
            r["sc"] += sc * w
            r["stft"] += stft_distance(y, a) * w
            r["bands"] += b * w
            r["floors"] += fl * w
            r["quiet"] += q * w
            if k in ROUNDTRIPS:
                r["snr"] = r.get("snr", 0.0) + band_snr(y, a, sample_rate)
        if log:
            log(f"{name}: {len(a) / sample_rate:.1f} s")
    res = {
        "data": str(data_dir),
        "files": len(items),
        "seconds": round(frames * hop / sample_rate, 1),
        "bands_hz": [list(b) for b in BANDS],
        "floors": list(FLOORS),
        **extra,
        "rows": {},
    }
    for k, r in rows.items():
        res["rows"][k] = {
            "stft": round(r["stft"] / frames, 4),
            "bands": [round(v, 4) for v in r["bands"] / frames],
            "quiet_share": round(r["quiet"] / frames, 4),
            "spectral_convergence": round(r["sc"] / frames, 4),
            "by_floor": [round(v, 4) for v in r["floors"] / frames],
        }
        if "snr" in r:  # powers summed over the files, then the ratio
            res["rows"][k]["band_snr_db"] = [round(float(10 * np.log10(p / max(nz, 1e-300))), 1) for p, nz in r["snr"]]
    return res


# ---------------------------------------------------------------------- output schemes

#: Candidate ways for the network's classes to become audio (docs/model.md, "Prediction"):
#: (name, pitch predictor gain or None for no predictor at all).
SCHEMES = (("plain", None), ("lpc", 0.0), ("lpc+pitch 0.5", 0.5), ("lpc+pitch 0.8", 0.8), ("lpc+pitch 0.95", 0.95))


def scheme_output(scheme_gain, x_pre, f, hop, sample_rate, alpha, errors, n_classes=256):
    """What a free-running network whose classes are off by ``errors`` (classes, one per
    sample) would deliver under a scheme: no predictor (``scheme_gain`` None: the class of
    the pre-emphasised signal itself), or the engine's predictor with that pitch gain,
    the error entering its past exactly as a sampled class does (vk_pred_run with the
    errors as noise). Returns the delivered audio (de-emphasised, DC-blocked, clamped)."""
    from ..engine.predict import Predictor, mulaw_table, nearest_class
    from ..engine.reference import emphasis_out

    if scheme_gain is None:
        k = np.clip(nearest_class(x_pre, n_classes) + errors, 0, n_classes - 1)
        s = mulaw_table(n_classes)[k]
    else:
        pred = Predictor(sample_rate, f.shape[1] - 2, alpha, scheme_gain)
        s = pred.run(
            np.ascontiguousarray(f, np.float32),
            hop,
            n_classes,
            target=x_pre.astype(np.float32),
            noise=np.asarray(errors, np.int32),
        )["signal"]
    return emphasis_out(s, alpha, sample_rate)


def class_errors(n, sigma, rng):
    """Class errors of a network with spread ``sigma`` (a rounded N(0, sigma^2) per sample)."""
    return np.rint(rng.normal(0.0, sigma, n)).astype(np.int32) if sigma > 0 else np.zeros(n, np.int32)


def simulate_schemes(
    data_dir,
    sigmas=(0.0, 2.0, 4.0, 7.4),
    alpha=0.6,
    seed=0,
    max_seconds=60.0,
    sample_rate=16000,
    hop=80,
    n_env=24,
    schemes=SCHEMES,
    log=None,
):
    """Decide the output scheme before training (issue: "decide by simulation"): push
    simulated class errors of several spreads through each scheme on held-out recordings
    and measure what a listener would: harmonics-to-noise per band on voiced frames
    (:func:`vocoder.train.listen.band_hnr`), whistles on unvoiced frames, the largest
    sub-80 Hz swing, and the STFT distance to the recording. The recording itself is the
    first row. Spreads are in classes of whatever the scheme codes (the signal, or the
    remainder after the prediction): whether a trained network reaches a smaller spread
    on the remainder only training tells."""
    from ..engine.reference import preemphasize
    from . import listen
    from .features import midi_to_hz

    items = load_heldout(data_dir, sample_rate, hop, n_env, max_seconds)
    rows = []

    def score(label, sigma, outs):
        # the recording's own pitch and voicing (its features): the schemes keep its timing
        res = [
            listen.listen(y, sample_rate, hop, midi_to_hz(f[:, 0]) * (f[:, 1] > 0.5), f[:, 1] > 0.5, mos=False)
            for y, f in outs
        ]
        pooled = listen.pooled(res)
        n = sum(f.shape[0] for _, f in outs)
        stft = sum(stft_distance(y, a) * f.shape[0] for (y, f), (_, a, _) in zip(outs, items)) / n
        rows.append(
            {
                "scheme": label,
                "sigma": sigma,
                "hnr_db": pooled["hnr_db"],
                "whistle": pooled["whistle"],
                "thump": pooled["thump"],
                "stft": round(stft, 3),
            }
        )
        if log:
            log(
                f"{label} sigma {sigma}: HNR {rows[-1]['hnr_db']} whistle {pooled['whistle']:.3f} "
                f"thump {pooled['thump']:.3f} STFT {stft:.3f}"
            )

    score("recording", 0.0, [(a, f) for _, a, f in items])
    for sigma in sigmas:
        for label, g in schemes:
            rng = np.random.default_rng(seed)
            outs = []
            for _, a, f in items:
                x = preemphasize(a[: f.shape[0] * hop], alpha)
                outs.append((scheme_output(g, x, f, hop, sample_rate, alpha, class_errors(len(x), sigma, rng)), f))
            score(label, sigma, outs)
    return {"data": str(data_dir), "alpha": alpha, "files": len(items), "rows": rows}


def format_schemes(res) -> str:
    lines = [
        f"{res['data']}: {res['files']} files, pre-emphasis {res['alpha']}",
        "",
        "| scheme | class spread | HNR 0-1 / 1-2 / 2-4 / 4-8 kHz (dB) | whistles | sub-80 Hz peak | STFT |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['scheme']} | {r['sigma']:g} | {' / '.join(f'{v:.1f}' for v in r['hnr_db'])} | "
            f"{100 * r['whistle']:.1f}% | {r['thump']:.3f} | {r['stft']:.3f} |"
        )
    return "\n".join(lines)


LABELS = {
    "mulaw8": "8-bit mu-law (the shipped head)",
    "mulaw9": "9-bit mu-law",
    "mulaw10": "10-bit mu-law",
    "linear16": "16-bit linear (dual head)",
    "preemph8": "8-bit mu-law, pre-emphasis {alpha}",
    "jitter8_1": "8-bit, true class + N(0, 1) classes",
    "preemph_jitter8_1": "8-bit pre-emphasis {alpha}, + N(0, 1) classes",
    "jitter8": "8-bit, true class + N(0, {sigma}^2) classes",
    "tf_argmax": "float model teacher forced, argmax",
    "tf_sample": "float model teacher forced, sampled",
    "engine": "int8 engine, free running (evaluate)",
    "world": "WORLD from the same features",
}


def format_table(res) -> str:
    bands = " ".join(f"{f'{lo / 1000:g}-{hi / 1000:g} kHz':>10s}" for lo, hi in res["bands_hz"])
    floors = " ".join(f"{f'floor {fl:g}':>11s}" for fl in res["floors"])
    lines = [
        f"{res['data']}: {res['files']} files, {res['seconds']} s",
        "",
        f"{'':46s} {'STFT':>7s}  {bands}  {'quiet':>6s}  {floors}  {'SC':>6s}",
    ]
    for k, r in res["rows"].items():
        lab = LABELS.get(k, k).format(alpha=res["alpha"], sigma=res["sigma_classes"])
        lines.append(
            f"{lab:46s} {r['stft']:7.3f}  "
            + " ".join(f"{v:10.3f}" for v in r["bands"])
            + "  "
            + f"{100 * r['quiet_share']:6.1f}%  "
            + " ".join(f"{v:11.3f}" for v in r["by_floor"])
            + f"  {r['spectral_convergence']:6.3f}"
        )
    lines.append("")
    lines.append(
        f"STFT: the metric (vocoder evaluate); kHz columns: mean |log-magnitude difference| in that band; "
        f"quiet: share of the distance from frames of the recording below {res['quiet_db']:g} dBFS; "
        f"floor e: the distance with ln(|Z| + e) instead of the metric's e = 1e-5; SC: spectral convergence "
        f"|| |Z| - |Zref| ||_F / || |Zref| ||_F (Parallel WaveGAN's other STFT term), same resolutions."
    )
    lines.append(
        "signal-to-error ratio of the representation alone, per band (dB): "
        + "; ".join(
            f"{k} " + " / ".join(f"{v:.1f}" for v in r["band_snr_db"])
            for k, r in res["rows"].items()
            if "band_snr_db" in r
        )
    )
    lines.append(f"pre-emphasised samples clipped at +-1: {100 * res['preemph_clipped']:.3f}% (worst file)")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vocoder.train.floor", description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="folder of held-out WAVs (a corpus's heldout/)")
    ap.add_argument("--checkpoint", help="training checkpoint (dir or file): adds the teacher-forced rows")
    ap.add_argument("--preset", help="preset: adds the engine's and WORLD's rows")
    ap.add_argument("--alpha", type=float, default=0.85, help="pre-emphasis coefficient (default 0.85)")
    ap.add_argument(
        "--sigma",
        type=float,
        help="also jitter by this std in classes (default: the model's median predictive std, with --checkpoint)",
    )
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--schemes",
        action="store_true",
        help="instead: simulate class errors through each output scheme (plain, LPC, LPC + pitch)",
    )
    ap.add_argument("--spreads", default="0,2,4,7.4", help="class spreads (sigma) for --schemes")
    args = ap.parse_args(argv)
    if args.schemes:
        res = simulate_schemes(
            args.data,
            sigmas=tuple(float(v) for v in args.spreads.split(",")),
            alpha=args.alpha,
            seed=args.seed,
            max_seconds=args.seconds,
            log=None if args.json else (lambda m: print(m, file=sys.stderr, flush=True)),
        )
        print(json.dumps(res, indent=1) if args.json else format_schemes(res))
        return 0
    res = measure(
        args.data,
        checkpoint=args.checkpoint,
        preset=args.preset,
        alpha=args.alpha,
        sigma=args.sigma,
        seed=args.seed,
        max_seconds=args.seconds,
        log=None if args.json else (lambda m: print(m, file=sys.stderr, flush=True)),
    )
    print(json.dumps(res, indent=1) if args.json else format_table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
