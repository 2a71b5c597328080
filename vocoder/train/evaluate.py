"""``vocoder evaluate``: how well a preset resynthesises held-out recordings.

For every held-out WAV: extract features (vocoder.train.features, the same code training used),
render them with the int8 engine (:class:`vocoder.Vocoder`), and compare with the
recording:

* ``f0_cents``: median |f0 error| in cents over frames voiced in both the input features
  and the rendered audio (f0 of the rendering tracked with pyworld, same analysis);
* ``voicing_error``: fraction of frames whose voiced/unvoiced decision differs;
* ``stft``: multi-resolution STFT log-magnitude distance to the recording (mean absolute
  difference of ``ln(|X| + 1e-5)`` over FFT sizes 256, 512, 1024, hop 1/4);
* ``periodicity``: mean normalised autocorrelation at the target pitch period over
  voiced frames (real recordings of these voices: ~0.9);
* the same for WORLD (pyworld.synthesize) from the same 26 features (envelope bands
  interpolated back to a spectrum, aperiodicity from the voicing): the classical
  baseline; and for WORLD from its full analysis (its own spectrum and aperiodicity,
  far more information than the features) as a reference point;
* ``int8 vs float``: teacher-forced cross-entropy of the int8 engine and, with
  ``--checkpoint``, of the float PyTorch model on the same audio and excitation;
* listening proxies (:mod:`vocoder.train.listen`) of the engine, WORLD and the recording:
  harmonics-to-noise per band on voiced note middles, whistles on unvoiced frames, the
  largest sub-80 Hz swing, DNSMOS (when speechmos is installed);
* with ``songs``: the same proxies on songs the command writes as MIDI with lyrics and
  renders as ``vocoder render`` does (what a user hears), beside WORLD from the singer's
  very frames (:func:`evaluate_songs`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import features as feat
from . import listen

STFT_SIZES = (256, 512, 1024)


def stft_logmag(x, n_fft):
    from scipy.signal import stft

    _, _, Z = stft(np.asarray(x, np.float64), nperseg=n_fft, noverlap=n_fft - n_fft // 4, boundary=None, padded=False)
    return np.log(np.abs(Z) + 1e-5)


def stft_distance(x, y):
    n = min(len(x), len(y))
    return float(np.mean([np.mean(np.abs(stft_logmag(x[:n], s) - stft_logmag(y[:n], s))) for s in STFT_SIZES]))


def periodicity(audio, f0_midi, voiced, hop, sample_rate):
    """Mean normalised autocorrelation at the pitch period over voiced frames."""
    a = np.asarray(audio, np.float64)
    vals = []
    for t in np.nonzero(voiced)[0]:
        period = int(round(sample_rate / feat.midi_to_hz(f0_midi[t])))
        c = t * hop + hop // 2
        L = 2 * period
        s = c - L // 2 - period // 2
        if s < 0 or s + L + period > len(a):
            continue
        u, w = a[s : s + L], a[s + period : s + period + L]
        den = np.sqrt(np.dot(u, u) * np.dot(w, w))
        if den > 1e-12:
            vals.append(np.dot(u, w) / den)
    return float(np.mean(vals)) if vals else float("nan")


def world_from_features(f, sample_rate, hop):
    """WORLD synthesis from the 26 features only (the classical baseline)."""
    import pyworld

    n_env = f.shape[1] - 2
    fft_size = pyworld.get_cheaptrick_fft_size(sample_rate, feat.F0_FLOOR)
    freqs = np.arange(fft_size // 2 + 1) * sample_rate / fft_size
    edges = feat._mel_inv(np.linspace(0.0, feat._mel(sample_rate / 2.0), n_env + 2))
    centres = edges[1:-1]
    logsp = np.array([np.interp(freqs, centres, row) for row in np.asarray(f[:, 2:], np.float64)])
    sp = np.ascontiguousarray(np.exp(logsp))
    voiced = f[:, 1] > 0.5
    f0 = np.where(voiced, feat.midi_to_hz(f[:, 0]), 0.0)
    ap_voiced = np.clip(0.001 + 0.5 * np.maximum(0.0, (freqs - 3000.0) / (sample_rate / 2 - 3000.0)) ** 2, 0, 1)
    ap = np.where(voiced[:, None], ap_voiced[None, :], 1.0)
    y = pyworld.synthesize(
        np.ascontiguousarray(f0), sp, np.ascontiguousarray(ap), sample_rate, frame_period=1000.0 * hop / sample_rate
    )
    out = np.zeros(f.shape[0] * hop)
    # pyworld places frame k at k * period; our frame t is centred at (t + 0.5) * hop.
    sh = hop // 2
    m = min(len(out) - sh, len(y))
    out[sh : sh + m] = y[:m]
    return out


def world_full(audio, sample_rate, hop):
    import pyworld

    x = np.ascontiguousarray(np.asarray(audio, np.float64))
    fp = 1000.0 * hop / sample_rate
    f0, t = pyworld.dio(x, sample_rate, f0_floor=feat.F0_FLOOR, f0_ceil=feat.F0_CEIL, frame_period=fp)
    f0 = pyworld.stonemask(x, f0, t, sample_rate)
    sp = pyworld.cheaptrick(x, f0, t, sample_rate, f0_floor=feat.F0_FLOOR)
    ap = pyworld.d4c(x, f0, t, sample_rate)
    return pyworld.synthesize(f0, sp, ap, sample_rate, frame_period=fp)[: len(x)]


def pitch_metrics(rendered, f_in, sample_rate, hop, name="rendered"):
    try:
        f_out = feat.extract(rendered, sample_rate, hop=hop, n_env=f_in.shape[1] - 2, source=name)
    except feat.FeatureError:  # silent output: everything unvoiced
        f_out = np.zeros((len(rendered) // hop, f_in.shape[1]), np.float32)
    n = min(len(f_out), len(f_in))
    vi, vo = f_in[:n, 1] > 0.5, f_out[:n, 1] > 0.5
    both = vi & vo
    cents = np.abs(100.0 * (f_out[:n, 0] - f_in[:n, 0]))[both]
    return {
        "f0_cents": float(np.median(cents)) if cents.size else float("nan"),
        "voicing_error": float(np.mean(vi != vo)),
        "cents": cents,
        "n_voiced": int(both.sum()),
    }


def load_heldout(data_dir, sample_rate, hop, n_env, max_seconds):
    paths = sorted(p for p in Path(data_dir).glob("*") if p.suffix.lower() in (".wav", ".flac"))
    if not paths:
        raise FileNotFoundError(f"{data_dir}: no .wav or .flac files")
    items, total = [], 0.0
    for p in paths:
        a, sr = feat.load_wav(p, sample_rate)
        f = feat.extract(a, sr, hop=hop, n_env=n_env, source=str(p))
        a = a[: f.shape[0] * hop]
        items.append((p.name, a, f))
        total += len(a) / sample_rate
        if total >= max_seconds:
            break
    return items


def evaluate(
    preset, data_dir, checkpoint=None, seed=0, max_seconds=60.0, log=None, keep_audio=False, temperature=None, mos=True
):
    from .. import Vocoder, load_preset
    from ..engine.presets import Preset

    p = preset if isinstance(preset, Preset) else load_preset(preset)
    sr, hop = p.sample_rate, p.hop
    n_env = p.n_features - 2
    items = load_heldout(data_dir, sr, hop, n_env, max_seconds)
    voc = Vocoder(p, seed=seed, temperature=temperature)
    model = None
    if checkpoint:
        from .trainer import load_checkpoint

        ck = Path(checkpoint)
        model, _, _ = load_checkpoint(ck)
        model.eval()
    rows = {"engine": [], "world": [], "world_full": [], "real": []}
    heard = {k: [] for k in rows}
    agg = {k: {"cents": [], "verr": [], "stft": [], "per": [], "frames": 0} for k in rows}
    tf = {"engine_nll": [], "float_nll": [], "n": 0}
    audio_out = []
    per_file = []
    t_render = 0.0
    for name, a, f in items:
        t0 = time.time()
        y = voc.vocode(f)
        t_render += time.time() - t0
        outs = {"engine": y, "world": world_from_features(f, sr, hop), "world_full": world_full(a, sr, hop), "real": a}
        if keep_audio:
            audio_out.append((name, a, f, outs))
        vi = f[:, 1] > 0.5
        for k, out in outs.items():
            m = pitch_metrics(out, f, sr, hop, name=f"{name} ({k})")
            if k == "engine":
                per_file.append(
                    {
                        "file": name,
                        "f0_cents": round(m["f0_cents"], 2),
                        "voicing_error": round(m["voicing_error"], 4),
                        "input_voiced": round(float(vi.mean()), 3),
                        "stft": round(stft_distance(out, a), 4),
                    }
                )
            g = agg[k]
            g["cents"].append(m["cents"])
            g["verr"].append(m["voicing_error"] * f.shape[0])
            g["frames"] += f.shape[0]
            g["stft"].append(stft_distance(out, a) * f.shape[0])
            g["per"].append(periodicity(out, f[:, 0], vi, hop, sr) * max(1, vi.sum()))
            # every signal on the same (the recording's) frames, each on its own refined pitch
            heard[k].append(listen.listen(out, sr, hop, feat.midi_to_hz(f[:, 0]) * vi, vi, mos=mos))
        # teacher-forced agreement, on the first 2 s of each file
        nfr = min(f.shape[0], 2 * sr // hop)
        ff, aa = f[:nfr], a[: nfr * hop]
        lt = voc.teacher_forced(ff, aa)["logits"]
        from ..engine.reference import audio_to_classes

        if p.config["predictor"] != "none":  # the remainder's classes after the prediction
            from ..engine.predict import for_preset
            from ..engine.reference import preemphasize

            k = for_preset(p).run(
                np.ascontiguousarray(ff, np.float32),
                hop,
                p.n_classes,
                target=preemphasize(aa, p.preemphasis).astype(np.float32),
            )["target"]
        else:
            k = audio_to_classes(aa, p.config["mulaw_bits"], p.preemphasis)
        tf["engine_nll"].append(_nll(lt, k) * len(k))
        if model is not None and not getattr(model, "predictor", False):
            tf["float_nll"].append(_float_nll(model, ff, aa, k, sr, hop) * len(k))
        tf["n"] += len(k)
        if log:
            log(f"{name}: {len(a) / sr:.1f} s")
    res = {
        "preset": str(p.path or p.name),
        "data": str(data_dir),
        "files": len(items),
        "temperature": p.temperature if temperature is None else float(temperature),
        "seconds": round(sum(len(a) for _, a, _ in items) / sr, 1),
        "engine_realtime_factor": round(sum(len(a) for _, a, _ in items) / sr / max(1e-9, t_render), 2),
    }
    for k, g in agg.items():
        cents = np.concatenate(g["cents"]) if g["cents"] else np.zeros(0)
        nv = sum(int(np.sum(f[:, 1] > 0.5)) for _, _, f in items)
        res[k] = {
            "f0_cents": round(float(np.median(cents)), 2) if cents.size else None,
            "voicing_error": round(sum(g["verr"]) / g["frames"], 4),
            "stft": round(sum(g["stft"]) / g["frames"], 4),
            "periodicity": round(sum(g["per"]) / max(1, nv), 4),
            "listen": listen.pooled(heard[k]),
        }
    res["real"]["stft"] = 0.0
    res["engine_per_file"] = per_file
    res["teacher_forced_nll"] = {"engine_int8": round(sum(tf["engine_nll"]) / tf["n"], 4)}
    if tf["float_nll"]:
        res["teacher_forced_nll"]["float_model"] = round(sum(tf["float_nll"]) / tf["n"], 4)
    w = res["world"]["stft"]
    res["targets"] = {
        "f0_cents<=25": res["engine"]["f0_cents"] is not None and res["engine"]["f0_cents"] <= 25,
        "voicing_error<=0.10": res["engine"]["voicing_error"] <= 0.10,
        "stft<=1.5xWORLD": res["engine"]["stft"] <= 1.5 * w,
        **listening_targets(res["engine"]["listen"], res["real"]["listen"]),
    }
    if keep_audio:
        res["_audio"] = audio_out
    return res


def _nll(logits, k):
    lg = np.asarray(logits, np.float64)
    m = lg.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(lg - m).sum(axis=1))
    return float(np.mean(lse - lg[np.arange(len(k)), k]))


def _float_nll(model, f, a, k, sr, hop):
    """Teacher-forced NLL of the float model with the engine's (free-running) excitation."""
    import torch

    from ..engine.reference import class_to_input, excitation

    hp = model.hp
    offs = np.arange(-hp["ctx_before"], hp["lookahead"] + 1)
    idx = np.clip(np.arange(f.shape[0])[:, None] + offs[None, :], 0, f.shape[0] - 1)
    ctx = torch.from_numpy(np.asarray(f, np.float32)[idx].reshape(1, f.shape[0], -1))
    prev = np.concatenate([[model.Q // 2], k[:-1]])
    prev = torch.from_numpy(class_to_input(prev, model.Q).astype(np.float32)[None])
    exc = torch.from_numpy(excitation(f, hop, sr)[None])
    with torch.no_grad():
        lg = model(ctx, prev, exc)[0].numpy()
    return _nll(lg, k)


def format_table(res) -> str:
    lines = [
        f"preset {res['preset']} (temperature {res['temperature']})  data {res['data']}  "
        f"({res['files']} files, {res['seconds']} s; "
        f"engine {res['engine_realtime_factor']}x real time)",
        "",
        f"{'':24s} {'f0 err (cents)':>15s} {'voicing err':>12s} {'STFT dist':>10s} {'periodicity':>12s}",
    ]
    names = {
        "engine": "int8 engine",
        "world": "WORLD (same features)",
        "world_full": "WORLD (full analysis)",
        "real": "recording",
    }
    for k in ("engine", "world", "world_full", "real"):
        r = res[k]
        c = "n/a" if r["f0_cents"] is None else f"{r['f0_cents']:.1f}"
        lines.append(
            f"{names[k]:24s} {c:>15s} {100 * r['voicing_error']:>11.1f}% {r['stft']:>10.3f} {r['periodicity']:>12.3f}"
        )
    lines.append("")
    tfn = res["teacher_forced_nll"]
    lines.append("teacher-forced NLL (nats/sample): " + ", ".join(f"{k} {v:.4f}" for k, v in tfn.items()))
    lines.append("targets: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in res["targets"].items()))
    lines += ["", format_listening({names[k]: res[k]["listen"] for k in ("engine", "world", "world_full", "real")})]
    if "songs" in res:
        lines += ["", format_songs(res["songs"])]
    return "\n".join(lines)


def format_songs(s) -> str:
    """The table of :func:`evaluate_songs`."""
    return "\n".join(
        [
            f"{s['count']} song(s) rendered from MIDI with lyrics ({s['seconds']} s, seed {s['seed']}):",
            format_listening({"int8 engine (render)": s["engine"], "WORLD (the singer's frames)": s["world"]}),
            "targets: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in s["targets"].items()),
        ]
    )


def listening_targets(engine: dict, source: dict | None = None) -> dict:
    """Issue 12's listening targets for :func:`vocoder.train.listen.pooled` results:
    whistles in at most 5% of unvoiced frames, no sub-80 Hz swing above 0.1, and (with
    the training source's numbers) band HNR at least the source's in every band up to
    4 kHz."""
    t = {"whistles<=5%": engine["whistle"] <= 0.05, "sub80Hz_peak<=0.1": engine["thump"] <= listen.THUMP_LIMIT}
    if source is not None:
        t["hnr>=recording_to_4kHz"] = all(e >= r for e, r in list(zip(engine["hnr_db"], source["hnr_db"]))[:3])
    return t


def format_listening(rows: dict) -> str:
    """A table of listening proxies (vocoder.train.listen.pooled results) by row name:
    band HNR on voiced note middles (energy sum over frames, then the median frame),
    whistling unvoiced frames, the largest sub-80 Hz swing and the unvoiced frames over
    0.1, DNSMOS."""

    def db(vals):
        return " / ".join("n/a" if v != v else f"{v:.1f}" for v in vals)

    lines = [
        f"{'':30s} {'HNR 0-1/1-2/2-4/4-8 kHz (dB)':>29s} {'median frame':>25s} {'whistles':>14s} "
        f"{'<80 Hz peak':>11s} {'uv >0.1':>9s} {'DNSMOS S/B/O':>15s}"
    ]
    for name, r in rows.items():
        d = r.get("dnsmos")
        mos = "n/a" if not d else f"{d['sig']:.2f}/{d['bak']:.2f}/{d['ovrl']:.2f}"
        w, n = r.get("whistle_frames", (0, 0))
        whistles = f"{100 * r['whistle']:.1f}% ({w}/{n})"
        lc = r.get("whistle_limit_cycles")
        tf = r.get("thump_frames")
        thumps = "n/a" if not tf else f"{tf[0]}/{tf[1]}"
        lines.append(
            f"{name:30s} {db(r['hnr_db']):>29s} {db(r.get('hnr_median_db', [])):>25s} {whistles:>14s} "
            f"{r['thump']:>11.3f} {thumps:>9s} {mos:>15s}" + (f"  ({lc} at sr/4, sr/3)" if lc else "")
        )
    if not any(r.get("dnsmos") for r in rows.values()):
        lines.append("DNSMOS: n/a (skipped with --no-mos, or speechmos is not installed: pip install speechmos)")
    return "\n".join(lines)


#: Words for the evaluation songs: the consonants that whistle ("s", "z", "sh") and
#: thump ("h", stops) on every vowel the singer has.
# fmt: off
SONG_WORDS = ("sea", "she", "sells", "shells", "by", "the", "shore", "high", "hill", "happy", "horse", "home",
              "zoo", "so", "sing", "to", "me", "cat", "dog", "kiss", "hush", "pass", "stay", "bright", "day")
# fmt: on


def write_songs(folder, count=3, seed=0, pitch_range=(48, 66), notes=16):
    """``count`` MIDI files of ``notes`` notes with one lyric syllable each (random
    melodies by steps and small leaps inside ``pitch_range``, 90..140 BPM), written to
    ``folder``; returns their paths. Deterministic in ``seed``."""
    import mido

    rng = np.random.default_rng(seed)
    lo, hi = int(pitch_range[0]), int(pitch_range[1])
    paths = []
    for k in range(count):
        tpb, bpm = 480, int(rng.integers(90, 141))
        tr = mido.MidiTrack()
        tr.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
        note = int(rng.integers(lo, hi + 1))
        gap = 0
        for _ in range(notes):
            note = int(np.clip(note + rng.choice([-4, -2, -1, 0, 1, 2, 3, 5]), lo, hi))
            beats = float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0]))
            tr.append(mido.MetaMessage("lyrics", text=str(rng.choice(SONG_WORDS)), time=gap))
            tr.append(mido.Message("note_on", note=note, velocity=int(rng.integers(70, 111)), time=0))
            tr.append(mido.Message("note_off", note=note, velocity=0, time=int(beats * tpb)))
            gap = int(tpb * float(rng.choice([0.0, 0.0, 0.25, 0.5])))
        m = mido.MidiFile(ticks_per_beat=tpb)
        m.tracks.append(tr)
        path = Path(folder) / f"song{k:02d}.mid"
        m.save(str(path))
        paths.append(path)
    return paths


def evaluate_songs(preset, folder, count=3, seed=0, mos=True, log=None, save_audio=False, midi=None) -> dict:
    """What a user hears: songs written as MIDI with lyrics (:func:`write_songs`, inside
    the preset's pitch range; or the given ``midi`` files), rendered as ``vocoder render``
    renders them, and WORLD from the singer's very frames; listening proxies of both on
    the singer's frames (each on its own refined pitch), pooled over the songs, and per
    song. ``save_audio``: the renders go beside the MIDI files in ``folder``
    (``NAME.engine.wav``, ``NAME.world.wav``)."""
    from ..hosts.render import synthesize
    from ..score.events import read_song

    sr, hop = preset.sample_rate, preset.hop
    rng_range = (preset.config.get("singer") or {}).get("pitch_range") or [48, 66]
    heard: dict[str, list] = {"engine": [], "world": []}
    per_song = []
    seconds = 0.0
    paths = [Path(m) for m in midi] if midi else write_songs(folder, count, seed, rng_range)
    for path in paths:
        audio, feats, _, _ = synthesize(read_song(path), preset, seed=seed, jobs=1)
        seconds += len(audio) / sr
        v = feats[:, 1] > 0.5
        f0 = feat.midi_to_hz(feats[:, 0]) * v
        outs = {"engine": np.asarray(audio, np.float64), "world": world_from_features(feats, sr, hop)}
        song = {"song": path.name, "seconds": round(len(audio) / sr, 1)}
        for k, y in outs.items():
            r = listen.listen(y, sr, hop, f0, v, mos=mos)
            heard[k].append(r)
            song[k] = {kk: vv for kk, vv in listen.pooled([r]).items() if kk in ("hnr_db", "whistle", "thump")}
            if save_audio:
                import soundfile

                soundfile.write(str(Path(folder) / f"{path.stem}.{k}.wav"), y.astype(np.float32), sr)
        per_song.append(song)
        if log:
            log(
                f"{path.name}: {len(audio) / sr:.1f} s; engine HNR {song['engine']['hnr_db']}, "
                f"whistles {100 * song['engine']['whistle']:.0f}%, <80 Hz peak {song['engine']['thump']:.3f}"
            )
    pooled = {k: listen.pooled(v) for k, v in heard.items()}
    return {
        "count": len(paths),
        "seed": seed,
        "seconds": round(seconds, 1),
        **pooled,
        "per_song": per_song,
        "targets": listening_targets(pooled["engine"]),
    }


def plot_comparison(name, a, f, outs, path, sample_rate, hop, seconds=4.0):
    """Spectrograms (recording, int8 engine, WORLD) with the input f0 overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.signal import spectrogram

    n = int(seconds * sample_rate)
    keys = [("recording", a), ("int8 engine", outs["engine"]), ("WORLD (same features)", outs["world"])]
    fig, axes = plt.subplots(len(keys), 1, figsize=(10, 8), sharex=True)
    nfr = min(f.shape[0], n // hop)
    t = (np.arange(nfr) + 0.5) * hop / sample_rate
    f0 = np.where(f[:nfr, 1] > 0.5, feat.midi_to_hz(f[:nfr, 0]), np.nan)
    for ax, (title, x) in zip(axes, keys):
        fr, tt, S = spectrogram(np.asarray(x[:n], np.float64), fs=sample_rate, nperseg=512, noverlap=448)
        ax.pcolormesh(tt, fr, 10 * np.log10(S + 1e-12), shading="auto", cmap="magma", vmin=-110, vmax=-20)
        for h in (1, 2, 3):
            ax.plot(t, f0 * h, color="cyan", lw=0.7, alpha=0.8 if h == 1 else 0.4)
        ax.set_ylim(0, 4000)
        ax.set_ylabel("Hz")
        ax.set_title(f"{title}: {name}")
    axes[-1].set_xlabel("s (cyan: input f0 and its 2nd, 3rd harmonics)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
