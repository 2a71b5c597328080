"""The ``vocoder`` command line.

    vocoder info                      version, CPU flags, kernel levels
    vocoder bench kernels [--json]    kernel speed per level against numpy and scipy
    vocoder bench engine [--json]     real-time factor of the WaveRNN engine
    vocoder presets                   the voice presets found, with their metadata
"""

from __future__ import annotations

import argparse
import json
import sys


def cmd_info(args) -> int:
    import vocoder
    from vocoder import kernels

    print(f"vocoder {vocoder.__version__}")
    print(f"cpu flags:        {' '.join(kernels.cpu_flags()) or '(none detected)'}")
    print(f"available levels: {' '.join(kernels.available_levels())}")
    print(f"active level:     {kernels.active_level()}"
          + ("  (forced by VOCODER_ISA)" if _forced() else ""))
    return 0


def _forced() -> bool:
    import os

    return bool(os.environ.get("VOCODER_ISA", "").strip())


def cmd_bench(args) -> int:
    from vocoder import bench, kernels

    if args.what == "kernels":
        levels = None
        if args.level:
            if args.level not in kernels.available_levels():
                print(f"vocoder bench: level {args.level!r} is not available here; "
                      f"available: {', '.join(kernels.available_levels())}", file=sys.stderr)
                return 2
            levels = [args.level]
        records = bench.bench_kernels(levels=levels, quick=args.quick)
        if args.json:
            print(json.dumps(records, indent=1))
        else:
            print(bench.format_table(records))
        if args.plot:
            bench.plot_kernels(records, args.plot)
        return 0
    if args.what == "engine":
        records = bench.bench_engine(quick=args.quick)
        print(json.dumps(records, indent=1) if args.json else bench.format_engine_table(records))
        return 0
    print(f"vocoder bench: unknown benchmark {args.what!r}", file=sys.stderr)
    return 2


def cmd_presets(args) -> int:
    from vocoder import presets

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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vocoder", description="Real-time neural singing vocoder host for the CPU.")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("info", help="version, CPU flags, kernel levels").set_defaults(func=cmd_info)

    b = sub.add_parser("bench", help="benchmarks that print tables")
    b.add_argument("what", choices=["kernels", "engine"], help="what to benchmark")
    b.add_argument("--json", action="store_true", help="print one JSON list of records")
    b.add_argument("--level", help="time only this kernel level")
    b.add_argument("--plot", metavar="PNG", help="also write a bar chart (needs matplotlib)")
    b.add_argument("--quick", action="store_true", help="few repeats (smoke test, noisy numbers)")
    b.set_defaults(func=cmd_bench)

    sub.add_parser("presets", help="list voice presets and their metadata").set_defaults(func=cmd_presets)
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
