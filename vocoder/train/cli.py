"""``vocoder train ...`` and ``vocoder evaluate ...`` (added to the main parser by vocoder/cli.py).

vocoder train corpus OUTDIR [--festival N] [--oohs N] [--wav-dir DIR] [--heldout N]
vocoder train fit CORPUS --out CKPT_DIR [--minutes M] [--hidden H] [--bits 8] [--resume]
vocoder train export CKPT --corpus CORPUS --out presets/default.safetensors
vocoder train convert-checkpoint OLD_DIR_OR_last.pt
vocoder evaluate PRESET [--data HELDOUT_DIR] [--songs N] [--midi FILE ...] [--no-mos] [--json]
"""

from __future__ import annotations

import json
import sys
import time


def _log(msg):
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


def cmd_corpus(args) -> int:
    from .corpus import build_corpus

    fest = args.festival if args.festival is not None else (0 if args.wav_dir else 110)
    oohs = args.oohs if args.oohs is not None else (0 if args.wav_dir else 14)
    man = build_corpus(
        args.outdir,
        festival_songs=fest,
        oohs_clips=oohs,
        wav_dir=args.wav_dir,
        heldout_songs=args.heldout if fest else 0,
        heldout_oohs=1 if oohs and args.heldout else 0,
        sample_rate=args.sample_rate,
        hop=args.hop,
        n_env=args.n_env,
        jobs=args.jobs,
        seed=args.seed,
        notes_per_song=args.notes_per_song,
        log=_log,
    )
    for split, s in man["splits"].items():
        print(f"{split}: {len(s['items'])} items, {s['seconds'] / 60:.1f} min")
    if man["errors"]:
        print(f"{len(man['errors'])} item(s) skipped (see {args.outdir}/corpus.json)")
    return 0


def _source_weights(specs):
    """["fluidr3-oohs=3", ...] -> {"fluidr3-oohs": 3.0}; a clear error for a bad spec."""
    out = {}
    for spec in specs or []:
        name, sep, value = spec.partition("=")
        try:
            w = float(value)
        except ValueError:
            w = -1.0
        if not sep or not name or not (w > 0 and w < 1e6):
            raise SystemExit(
                f"--source-weight {spec!r}: expected SOURCE=WEIGHT with a positive weight, "
                f"e.g. fluidr3-oohs=3 (sources are listed in the corpus's corpus.json)"
            )
        out[name] = w
    return out


def cmd_fit(args) -> int:
    from .trainer import fit

    fit(
        args.corpus,
        args.out,
        minutes=args.minutes,
        hidden=args.hidden,
        bits=args.bits,
        batch=args.batch,
        win_frames=args.window_frames,
        lr=args.lr,
        sparsity=args.sparsity,
        resume=args.resume,
        seed=args.seed,
        threads=args.threads,
        bf16=args.bf16,
        ckpt_every_s=args.checkpoint_minutes * 60,
        log=_log,
        max_steps=args.max_steps,
        excitation=0 if args.no_excitation else 2,
        cond_hidden=args.cond_hidden,
        preemphasis=args.preemphasis,
        init_from=args.init_from,
        prune_start=args.prune_start,
        prune_end=args.prune_end,
        qat_start=args.qat_start,
        source_weights=_source_weights(args.source_weight),
        predictor=args.predictor,
        ltp_gain=args.ltp_gain,
        noise_classes=args.noise_classes,
    )
    return 0


def cmd_export(args) -> int:
    from .export import export_checkpoint

    p = export_checkpoint(
        args.checkpoint,
        args.out,
        corpus_dir=args.corpus,
        name=args.name,
        version=args.version,
        temperature=args.temperature,
        temperature_unvoiced=args.temperature_unvoiced,
        highpass_hz=args.highpass,
    )
    print(f"wrote {p}")
    return 0


def cmd_slim(args) -> int:
    from .trainer import load_checkpoint, save_checkpoint

    model, _, state = load_checkpoint(args.checkpoint)
    save_checkpoint(args.out, model, None, state)
    print(f"wrote {args.out}: weights, masks and schedule state, no optimiser state")
    return 0


def cmd_convert(args) -> int:
    from .trainer import convert_legacy_checkpoint

    print(f"wrote {convert_legacy_checkpoint(args.checkpoint, args.out)}")
    return 0


def cmd_evaluate(args) -> int:
    from ..engine.presets import load_preset
    from .evaluate import evaluate, evaluate_songs, format_songs, format_table

    log = None if args.json else _log
    if args.data:
        res = evaluate(
            args.preset,
            args.data,
            checkpoint=args.checkpoint,
            seed=args.seed,
            max_seconds=args.seconds,
            log=log,
            keep_audio=bool(args.plot or args.save_audio),
            temperature=args.temperature,
            mos=not args.no_mos,
        )
    elif not (args.songs or args.midi):
        print("vocoder evaluate: nothing to do: give --data HELDOUT_DIR, --songs N or --midi FILE", file=sys.stderr)
        return 2
    else:
        res = {"preset": args.preset}
    if args.songs or args.midi:
        import os
        import tempfile

        preset = load_preset(args.preset)
        if args.temperature is not None:
            print(
                "vocoder evaluate: --temperature does not apply to the songs (rendered as vocoder render does)",
                file=sys.stderr,
            )
        with tempfile.TemporaryDirectory() as tmp:
            folder = tmp
            if args.save_audio:
                folder = os.path.join(args.save_audio, "songs")
                os.makedirs(folder, exist_ok=True)
            res["songs"] = evaluate_songs(
                preset,
                folder,
                count=args.songs,
                seed=args.seed,
                mos=not args.no_mos,
                log=log,
                save_audio=bool(args.save_audio),
                midi=args.midi,
            )
    if not args.data:
        print(json.dumps(res, indent=1) if args.json else f"preset {args.preset}\n\n" + format_songs(res["songs"]))
        return 0
    extra = res.pop("_audio", [])
    if args.plot and extra:
        from .evaluate import plot_comparison

        name, a, f, outs = extra[0]
        cfg = load_cfg(args.preset)
        plot_comparison(name, a, f, outs, args.plot, cfg["sample_rate"], cfg["hop"])
    if args.save_audio and extra:
        import os

        import soundfile

        cfg = load_cfg(args.preset)
        os.makedirs(args.save_audio, exist_ok=True)
        for name, _, _, outs in extra:
            for k, y in outs.items():
                soundfile.write(
                    os.path.join(args.save_audio, f"{os.path.splitext(name)[0]}.{k}.wav"),
                    y.astype("float32"),
                    cfg["sample_rate"],
                )
    print(json.dumps(res, indent=1) if args.json else format_table(res))
    return 0


def load_cfg(preset):
    from ..engine.presets import load_preset

    return load_preset(preset).config


def add_parsers(sub) -> None:
    t = sub.add_parser("train", help="build a corpus, train a voice, export a preset (needs .[train])")
    ts = t.add_subparsers(dest="train_command", required=True)

    c = ts.add_parser("corpus", help="render / import a training corpus")
    c.add_argument("outdir")
    c.add_argument("--wav-dir", help="folder of your own recordings (any rate; resampled)")
    c.add_argument(
        "--festival", type=int, metavar="N", help="Festival kal singing songs to render (default 110, 0 with --wav-dir)"
    )
    c.add_argument("--oohs", type=int, metavar="N", help="FluidR3 'Voice Oohs' clips (default 14, 0 with --wav-dir)")
    c.add_argument("--heldout", type=int, default=3, metavar="N", help="held-out Festival songs (default 3)")
    c.add_argument("--notes-per-song", type=int, default=12)
    c.add_argument("--sample-rate", type=int, default=16000)
    c.add_argument("--hop", type=int, default=80)
    c.add_argument("--n-env", type=int, default=24)
    c.add_argument("--jobs", type=int, default=2, help="parallel render processes")
    c.add_argument("--seed", type=int, default=1)
    c.set_defaults(func=cmd_corpus)

    f = ts.add_parser("fit", help="train (teacher forcing, block pruning, quantisation-aware fine-tuning)")
    f.add_argument("corpus")
    f.add_argument("--out", required=True, help="checkpoint directory (last.safetensors)")
    f.add_argument("--resume", action="store_true", help="continue from OUT/last.safetensors")
    f.add_argument("--minutes", type=float, default=60.0, help="training time budget in total (default 60)")
    f.add_argument("--hidden", type=int, default=256)
    f.add_argument("--cond-hidden", type=int, default=128)
    f.add_argument("--head", choices=["mulaw"], default="mulaw", help="output head (only mulaw trains here)")
    f.add_argument("--bits", type=int, default=8, choices=[8, 9, 10])
    f.add_argument("--batch", type=int, default=128)
    f.add_argument("--window-frames", type=int, default=6, help="frames per training window (x hop samples)")
    f.add_argument("--lr", type=float, default=2e-3)
    f.add_argument("--sparsity", type=float, default=0.9)
    f.add_argument("--threads", type=int, default=2)
    f.add_argument("--bf16", action="store_true", help="bf16 autocast (only fast on CPUs with AMX)")
    f.add_argument("--checkpoint-minutes", type=float, default=5.0)
    f.add_argument("--max-steps", type=int, help="stop after this many steps (tests)")
    f.add_argument("--no-excitation", action="store_true", help="train without the excitation input (E = 0)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument(
        "--preemphasis",
        type=float,
        default=0.0,
        metavar="ALPHA",
        help="model x[n] - ALPHA x[n-1] (0.85 puts the mu-law noise under the voice; docs/model.md)",
    )
    f.add_argument(
        "--init-from",
        metavar="CKPT",
        help="start from this checkpoint's (or preset file's) weights "
        "and masks (fresh optimiser and schedule), e.g. to fine-tune to a new --preemphasis",
    )
    f.add_argument(
        "--predictor",
        choices=["none", "lpc+pitch"],
        default="none",
        help="model the remainder after LPC and pitch prediction from the features (docs/model.md)",
    )
    f.add_argument("--ltp-gain", type=float, default=0.8, help="pitch predictor gain at voicing 1 (default 0.8)")
    f.add_argument(
        "--noise-classes",
        type=float,
        default=2.0,
        help="noise injection into the predictor's past: Laplace scale up to this many classes",
    )
    f.add_argument("--prune-start", type=float, default=0.3, help="pruning starts at this fraction of the budget")
    f.add_argument("--prune-end", type=float, default=0.75, help="final sparsity from this fraction on")
    f.add_argument(
        "--source-weight",
        action="append",
        metavar="SOURCE=W",
        help="draw windows of this corpus source W times as often as its share of the audio "
        "(repeatable; e.g. fluidr3-oohs=3)",
    )
    f.add_argument("--qat-start", type=float, default=0.8, help="quantisation-aware from this fraction on")
    f.set_defaults(func=cmd_fit)

    e = ts.add_parser("export", help="write a preset from a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--out", required=True, help="preset file (.safetensors)")
    e.add_argument("--corpus", help="corpus directory: singer data and licences come from it")
    e.add_argument("--name", default="default")
    e.add_argument("--version", default="1")
    e.add_argument("--temperature", type=float, default=1.0, help="the preset's sampling temperature (voiced)")
    e.add_argument("--temperature-unvoiced", type=float, help="temperature of unvoiced frames (default: --temperature)")
    e.add_argument("--highpass", type=float, default=20.0, help="DC blocker corner in Hz (default 20)")
    e.set_defaults(func=cmd_export)

    s = ts.add_parser(
        "slim",
        help="a checkpoint without the optimiser state (a third the size), to keep in "
        "the repository and resume from in a later session",
    )
    s.add_argument("checkpoint", help="checkpoint file or directory")
    s.add_argument("--out", required=True, help="file to write (resume: copy it to OUT/last.safetensors)")
    s.set_defaults(func=cmd_slim)

    k = ts.add_parser("convert-checkpoint", help="rewrite an old last.pt checkpoint as last.safetensors (once)")
    k.add_argument("checkpoint", help="last.pt or the directory holding it")
    k.add_argument("--out", help="new checkpoint file (default: last.safetensors beside it)")
    k.set_defaults(func=cmd_convert)

    v = sub.add_parser("evaluate", help="f0 / voicing / STFT distance of a preset on held-out recordings")
    v.add_argument("preset", help="preset name or file")
    v.add_argument(
        "--data",
        help="folder of held-out WAVs (a corpus's heldout/ works); without it, only the "
        "songs (--songs, --midi) are measured",
    )
    v.add_argument("--checkpoint", help="also compare the float model of this training checkpoint")
    v.add_argument("--seconds", type=float, default=60.0, help="evaluate at most this much audio")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--temperature", type=float, help="sampling temperature (default: the preset's)")
    v.add_argument("--json", action="store_true")
    v.add_argument("--plot", metavar="PNG", help="spectrograms with f0 of the first file (needs matplotlib)")
    v.add_argument(
        "--save-audio",
        metavar="DIR",
        help="write the renderings (engine, WORLD) as WAVs; the songs' MIDI and renders go to DIR/songs",
    )
    v.add_argument(
        "--songs",
        type=int,
        default=3,
        metavar="N",
        help="also write N songs as MIDI with lyrics, render them and measure what a listener hears "
        "(default 3; 0: none)",
    )
    v.add_argument(
        "--midi",
        nargs="+",
        metavar="FILE",
        help="measure renders of these songs (MIDI with lyrics, or any score vocoder render reads) "
        "instead of generated ones",
    )
    v.add_argument("--no-mos", action="store_true", help="skip DNSMOS (slow; needs speechmos)")
    v.set_defaults(func=cmd_evaluate)
