"""The ``vocoder serve`` command line (arguments only; imports nothing heavy)."""

from __future__ import annotations

import argparse

DEFAULT_PORT = 8720


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--api",
        choices=["none", "jack", "alsa", "portaudio"],
        default="portaudio",
        help="audio output: JACK, ALSA, PortAudio's default device, or none (API and render jobs "
        "only; a paced clock still runs the voices so status is meaningful). Default portaudio",
    )
    p.add_argument("--device", help="audio output device: index or name")
    p.add_argument("--rate", type=int, default=48000, help="sample rate of the live voices (default 48000)")
    p.add_argument("--blocksize", type=int, default=256, help="frames per audio callback (default 256)")
    p.add_argument(
        "--listen",
        default="127.0.0.1",
        metavar="ADDR",
        help="address to bind (default 127.0.0.1; any other needs --token-file)",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT}; 0: any free)")
    p.add_argument(
        "--token-file",
        metavar="FILE",
        help="a file holding the access token; every request must then send 'Authorization: Bearer TOKEN'",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="do not serve: exit 0 when a host answering at --listen/--port is healthy, else 1",
    )
    p.add_argument(
        "--voice",
        action="append",
        metavar="CH=PRESET|PLUGIN[:PRESET]",
        help="load a voice at start (default: channel 1 = the 'default' preset when installed); repeatable",
    )
    p.add_argument("--no-default-voice", action="store_true", help="start with every channel empty")
    p.add_argument(
        "--spool", metavar="DIR", help="render job files (default: $XDG_RUNTIME_DIR or /tmp, vocoder-serve-UID-PORT)"
    )
    p.add_argument("--workers", type=int, default=2, help="render worker processes at a time (default 2)")
    p.add_argument("--queue", type=int, default=8, help="render jobs waiting at most (default 8; then 503)")
    p.add_argument(
        "--job-ttl",
        type=float,
        default=3600.0,
        metavar="S",
        help="seconds a finished job's output is kept (default 3600)",
    )
    p.add_argument("--worker-nice", type=int, default=10, help="niceness added to render workers (default 10)")
    p.add_argument("--max-upload-mb", type=float, default=8.0, help="largest song accepted (default 8 MiB)")
    p.add_argument(
        "--rate-limit",
        type=float,
        default=100.0,
        metavar="PER_S",
        help="requests per second per client address, bursts of twice that (default 100; 0: none)",
    )
    p.add_argument("--port-file", metavar="FILE", help=argparse.SUPPRESS)  # tests: the port actually bound
