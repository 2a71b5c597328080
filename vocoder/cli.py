"""The ``vocoder`` command line.

vocoder info                      version, CPU flags, kernel levels
vocoder bench kernels [--json]    kernel speed per level against numpy and scipy
vocoder bench engine [--json]     real-time factor of the WaveRNN engine
vocoder presets                   the voice presets found, with their metadata
vocoder devices                   MIDI ports (jack, alsa) and audio devices
vocoder live [--api jack|alsa] [--midi-in PORT | --virtual] ...   sing from MIDI input (docs/live.md)
vocoder bench live [--json]       callback time of live singing against the period
vocoder bench serve [--json]      serve's callback time with and without render jobs running
vocoder bench batch [--json]      songs per minute of a batch render on 1 and 2 local workers
vocoder render SONG -o OUT.wav    sing a MIDI / MusicXML song with its lyrics (docs/render.md)
vocoder render SONGS... --out DIR [--scheduler tcp://HOST:8786]   many songs on Dask (docs/render.md)
vocoder serve [--api none|jack|alsa|portaudio] [--port N] ...   the plugin host service (docs/serve.md)
vocoder plugins [--json]          voice plugins installed, with their ABI checks (docs/serve.md)
"""

from __future__ import annotations

import argparse
import json
import sys


def cmd_info(args) -> int:
    import vocoder
    from vocoder.engine import kernels

    print(f"vocoder {vocoder.__version__}")
    print(f"cpu flags:        {' '.join(kernels.cpu_flags()) or '(none detected)'}")
    print(f"available levels: {' '.join(kernels.available_levels())}")
    print(f"active level:     {kernels.active_level()}" + ("  (forced by VOCODER_ISA)" if _forced() else ""))
    return 0


def _forced() -> bool:
    import os

    return bool(os.environ.get("VOCODER_ISA", "").strip())


def cmd_bench(args) -> int:
    from vocoder.engine import kernels

    if args.what == "kernels":
        levels = None
        if args.level:
            if args.level not in kernels.available_levels():
                print(
                    f"vocoder bench: level {args.level!r} is not available here; "
                    f"available: {', '.join(kernels.available_levels())}",
                    file=sys.stderr,
                )
                return 2
            levels = [args.level]
        from vocoder.bench import kernels as bench_kernels

        records = bench_kernels.bench_kernels(
            levels=levels, quick=args.quick, progress=bench_kernels.StepProgress("bench kernels")
        )
        if args.json:
            print(json.dumps(records, indent=1))
        else:
            print(bench_kernels.format_table(records))
        if args.plot:
            bench_kernels.plot_kernels(records, args.plot)
        return 0
    if args.what == "live":
        from vocoder.bench import live as bench_live

        return bench_live.main(args)
    if args.what == "serve":
        from vocoder.hosts.serve import bench as bench_serve

        return bench_serve.main(args)
    if args.what == "engine":
        from vocoder.bench import engine as bench_engine

        records = bench_engine.bench_engine(quick=args.quick)
        print(json.dumps(records, indent=1) if args.json else bench_engine.format_engine_table(records))
        return 0
    if args.what == "batch":
        from vocoder.hosts import batch

        records = batch.bench_batch(
            songs=4 if args.quick else 8, seconds=args.seconds or 30.0, preset=args.preset or "default"
        )
        print(json.dumps(records, indent=1) if args.json else batch.format_bench_table(records))
        return 0
    print(f"vocoder bench: unknown benchmark {args.what!r}", file=sys.stderr)
    return 2


def cmd_presets(args) -> int:
    from vocoder.engine import presets

    found = presets.list_presets()
    if not found:
        print("no presets found (search path: " + ", ".join(str(p) for p in presets.preset_search_path()) + ")")
        return 0
    for name, path, meta in found:
        if "error" in meta:
            print(f"{name:16s} {path}  UNREADABLE: {meta['error']}")
        else:
            print(f"{name:16s} {meta.get('version', '?'):8s} {meta.get('license', '?'):12s} {path}")
            if meta.get("description"):
                print(f"{'':16s} {meta['description']}")
    return 0


def cmd_render(args) -> int:
    from vocoder.engine.presets import PresetError
    from vocoder.hosts import render
    from vocoder.score.events import SongError

    def say(m):
        print(f"vocoder render: {m}", file=sys.stderr)

    def warn(m):
        print(f"vocoder render: warning: {m}", file=sys.stderr)

    from pathlib import Path

    inputs = args.input
    if (
        args.out is not None
        or args.scheduler
        or len(inputs) > 1
        or inputs[0].startswith("@")
        or Path(inputs[0]).is_dir()
    ):
        return _render_batch(args)
    if args.output is None:
        print(
            f"vocoder render: {inputs[0]}: give the output file (-o OUT.wav), or a folder for many songs (--out DIR)",
            file=sys.stderr,
        )
        return 2
    args.input = inputs[0]
    try:
        info = render.render_file(
            args.input,
            args.output,
            preset=args.preset,
            seed=args.seed,
            rate=args.rate,
            track=args.track,
            channel=args.channel,
            lyrics=args.lyrics,
            part=args.part,
            transpose=args.transpose,
            plot=args.plot,
            subtype=args.format,
            jobs=args.jobs,
            progress=None if args.quiet else render.TextProgress(Path(args.input).name),
            warn=warn,
            log=None if args.quiet else say,
        )
    except (SongError, PresetError, render.RenderError) as e:
        print(f"vocoder render: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nvocoder render: interrupted; no output written", file=sys.stderr)
        return 130
    except OSError as e:  # e.g. the disk filled up while writing; nothing was left behind
        where = f"{e.filename}: " if e.filename else f"{args.output}: "
        print(f"vocoder render: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(
            f"wrote {info['output']}: {info['seconds']:.1f} s at {info['sample_rate']} Hz, {info['notes']} notes"
            f"{' with lyrics' if info['lyrics'] else ''}, {info['speed']:.1f}x real time",
            file=sys.stderr,
        )
    return 0


def _render_batch(args) -> int:
    """`vocoder render` with many inputs, a folder, @LIST or --out DIR: vocoder.hosts.batch on Dask."""
    from vocoder.engine.presets import PresetError
    from vocoder.hosts import batch, render
    from vocoder.score.events import SongError

    if args.output is not None:
        print("vocoder render: -o names one output file; for many songs give a folder with --out DIR", file=sys.stderr)
        return 2
    if args.out is None:
        print("vocoder render: many songs need an output folder: --out DIR", file=sys.stderr)
        return 2
    try:
        summary = batch.render_batch(
            args.input,
            args.out,
            preset=args.preset,
            ext="." + args.type,
            scheduler=args.scheduler,
            workers=args.workers,
            retries=args.retries,
            timeout=args.timeout,
            quiet=args.quiet,
            seed=args.seed,
            rate=args.rate,
            track=args.track,
            channel=args.channel,
            lyrics=args.lyrics,
            part=args.part,
            transpose=args.transpose,
            plot=args.plot,
            subtype=args.format,
        )
    except ImportError as e:
        if (e.name or "").split(".")[0] not in ("distributed", "dask"):
            raise
        print(
            f"vocoder render: many songs run on Dask, which is not installed ({e}); pip install 'vocoder[cluster]'",
            file=sys.stderr,
        )
        return 2
    except (batch.BatchError, SongError, PresetError, render.RenderError) as e:  # before any song: names the file
        print(f"vocoder render: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nvocoder render: interrupted; finished outputs are kept, run again to resume", file=sys.stderr)
        return 130
    return 1 if summary["failed"] else 0


def cmd_devices(args) -> int:
    from vocoder.hosts import live

    print(live.format_devices())
    return 0


def cmd_live(args) -> int:
    from vocoder.engine.presets import PresetError
    from vocoder.hosts import live
    from vocoder.score.events import SongError

    if args.blocksize < 1 or args.rate < 8000:
        print("vocoder live: --blocksize must be >= 1 and --rate >= 8000", file=sys.stderr)
        return 2
    try:
        return live.run_live(args)
    except (live.LiveError, PresetError, SongError) as e:  # SongError: an unreadable --lyrics file
        print(f"vocoder live: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while loading, before any sound
        print("\nvocoder live: interrupted", file=sys.stderr)
        return 130


def cmd_plugins(args) -> int:
    from vocoder.hosts import plugins

    def warn(m):
        print(f"vocoder plugins: warning: {m}", file=sys.stderr)

    infos = plugins.list_plugins(do_probe=not args.no_probe, warn=warn)
    if args.json:
        print(json.dumps([i.to_json() for i in infos], indent=1))
    else:
        print(plugins.format_table(infos))
    return 0


def cmd_serve(args) -> int:
    from vocoder.hosts import serve

    return serve.main(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vocoder", description="Real-time neural singing vocoder host for the CPU.")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("info", help="version, CPU flags, kernel levels").set_defaults(func=cmd_info)

    b = sub.add_parser("bench", help="benchmarks that print tables")
    b.add_argument("what", choices=["kernels", "engine", "live", "batch", "serve"], help="what to benchmark")
    b.add_argument("--json", action="store_true", help="print one JSON list of records")
    b.add_argument("--level", help="time only this kernel level")
    b.add_argument("--plot", metavar="PNG", help="also write a bar chart (needs matplotlib)")
    b.add_argument("--quick", action="store_true", help="few repeats (smoke test, noisy numbers)")
    b.add_argument(
        "--preset",
        help="live: preset name or path (default: 'default' if installed, else a "
        "random preset of the shipped size); batch: default 'default'",
    )
    b.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="live: seconds per case (default 5, quick 1); batch: seconds per song (default 30)",
    )
    b.add_argument(
        "--unpaced",
        action="store_true",
        help="live: call back to back instead of once per period (default: paced like a device)",
    )
    b.add_argument("--no-load", action="store_true", help="live: leave the other core idle")
    b.add_argument(
        "--api",
        choices=["none", "jack"],
        default="none",
        help="serve: the audio clock of the measured host (default none: a paced thread)",
    )
    b.set_defaults(func=cmd_bench)

    sub.add_parser("presets", help="list voice presets and their metadata").set_defaults(func=cmd_presets)

    sub.add_parser("devices", help="list MIDI ports (jack and alsa APIs) and audio devices").set_defaults(
        func=cmd_devices
    )

    lv = sub.add_parser("live", help="sing live from MIDI input (docs/live.md)")
    lv.add_argument("--preset", default=None, help="preset name or path (default: 'default')")
    lv.add_argument("--midi-in", metavar="PORT", help="MIDI input port: name, part of a name, or index")
    lv.add_argument("--virtual", action="store_true", help="open a virtual MIDI input port instead")
    lv.add_argument("--api", choices=["jack", "alsa"], default="alsa", help="MIDI API (default alsa)")
    lv.add_argument(
        "--device", help="audio output device: index or name (default: JACK's with --api jack, else the system default)"
    )
    lv.add_argument("--blocksize", type=int, default=128, help="frames per audio callback (default 128)")
    lv.add_argument("--rate", type=int, default=48000, help="device sample rate (default 48000)")
    lv.add_argument("--lyrics", metavar="TEXT|FILE", help="lyrics: each new note sings the next syllable")
    lv.add_argument(
        "--channel",
        action="append",
        metavar="CH=PRESET",
        help="route MIDI channel CH (1-16) to its own voice with PRESET; repeatable",
    )
    lv.add_argument("--osc-port", type=int, metavar="N", help="OSC control on 127.0.0.1:N (0: any free port)")
    lv.add_argument("--seed", type=int, default=0, help="sampling seed of the first voice (others +1, +2, ...)")
    lv.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    lv.add_argument("--stats-json", metavar="PATH", help="write callback-time statistics here at exit")
    lv.add_argument(
        "--event-log",
        metavar="NPY",
        help="save the MIDI events given to the voices, with their "
        "sample positions, as int64 [position, status, d1, d2] rows (for replay and tests)",
    )
    lv.add_argument("--event-log-size", type=int, default=100000, help=argparse.SUPPRESS)
    lv.add_argument("--no-status", dest="status", action="store_false", help="no status line")
    lv.add_argument("--client-name", default="vocoder", help="MIDI client name (default vocoder)")
    lv.set_defaults(func=cmd_live)

    r = sub.add_parser(
        "render",
        help="sing a MIDI or MusicXML song to a WAV/FLAC file",
        description="Sing a MIDI (.mid, karaoke .kar) or MusicXML (.musicxml, .xml, .mxl) song "
        "with its lyrics and write WAV or FLAC (by the output's extension).",
    )
    r.add_argument(
        "input",
        metavar="INPUT",
        nargs="+",
        help="MIDI or MusicXML file; for a batch: many files, folders, or @LIST (a file of paths)",
    )
    r.add_argument("-o", "--output", metavar="OUT", help="output .wav or .flac (written atomically)")
    r.add_argument("--preset", default="default", help="voice preset name or .safetensors path (default: default)")
    r.add_argument("--seed", type=int, default=0, help="sampling seed; same input, preset and seed give the same bytes")
    r.add_argument("--rate", type=int, metavar="HZ", help="resample the output to this rate (default: the preset's)")
    r.add_argument(
        "--format",
        choices=["16", "24", "float"],
        default="16",
        help="sample format: 16 or 24-bit PCM, or 32-bit float (WAV only); default 16",
    )
    r.add_argument("--track", type=int, metavar="N", help="MIDI track index (0-based) or MusicXML part index")
    r.add_argument(
        "--part",
        metavar="NAME|NUMBER",
        help="MusicXML part to sing: its number (0-based, as listed) or name (default: the first part "
        "with lyrics, else the first voice part, else the highest part)",
    )
    r.add_argument("--channel", type=int, metavar="C", help="MIDI channel 1..16")
    r.add_argument("--lyrics", metavar="TEXT|FILE", help="lyrics laid one syllable per note (a text or a file)")
    r.add_argument(
        "--transpose",
        default="0",
        metavar="K|auto",
        help="semitones added to every note (-48..48), or 'auto': the octave shift that fits the most "
        "notes into the voice's range",
    )
    r.add_argument("--plot", metavar="PNG", help="also write a spectrogram with score and rendered f0 (matplotlib)")
    r.add_argument("--jobs", type=int, metavar="N", help="processes for long songs (default: CPU count)")
    r.add_argument(
        "--out",
        metavar="DIR",
        help="batch: output folder (one NAME.wav per song; finished ones are "
        "skipped, so a rerun resumes); see docs/render.md",
    )
    r.add_argument("--type", choices=["wav", "flac"], default="wav", help="batch: output type (default wav)")
    r.add_argument(
        "--scheduler",
        metavar="tcp://HOST:8786",
        help="batch: run on this Dask scheduler (default: local worker processes)",
    )
    r.add_argument("--workers", type=int, metavar="N", help="batch: local worker processes (default: CPU count)")
    r.add_argument(
        "--retries",
        type=int,
        default=2,
        metavar="N",
        help="batch: retries of a song whose render failed for another reason than its input (default 2)",
    )
    r.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="batch: give up on the songs not done after S seconds (they are reported as failed; default: no limit)",
    )
    r.add_argument("-q", "--quiet", action="store_true", help="no progress, part or summary lines (warnings stay)")
    r.set_defaults(func=cmd_render)

    pl = sub.add_parser("plugins", help="voice plugins installed (VOCODER_PLUGIN_PATH, entry points) with ABI checks")
    pl.add_argument("--json", action="store_true", help="one JSON list")
    pl.add_argument("--no-probe", action="store_true", help="only list the libraries found; load nothing")
    pl.set_defaults(func=cmd_plugins)

    from vocoder.hosts.serve.cli import add_arguments as add_serve_arguments

    sv = sub.add_parser(
        "serve", help="the plugin host service: HTTP/WebSocket API, web page, render jobs (docs/serve.md)"
    )
    add_serve_arguments(sv)
    sv.set_defaults(func=cmd_serve)

    from vocoder.train.cli import add_parsers as add_train_parsers

    add_train_parsers(sub)  # vocoder train corpus|fit|export, vocoder evaluate
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RuntimeError as e:  # e.g. VOCODER_ISA naming a level this CPU lacks
        print(f"vocoder: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
