"""``vocoder serve``: one long-running headless plugin host (docs/serve.md).

Live voices on 16 channels (plugins: the built-in WaveRNN voice or third-party shared
libraries, vocoder.hosts.plugins), an audio device or none, an HTTP/JSON + WebSocket
control API and a web page (aiohttp), and render jobs in worker processes.
Loopback only unless --listen and --token-file say otherwise.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "check", "JsonLog"]


class JsonLog:
    """Structured logs: one JSON object a line on stderr."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr

    def __call__(self, event: str, level: str = "info", **fields) -> None:
        rec = {"t": round(time.time(), 3), "level": level, "event": event}
        rec.update({k: v for k, v in fields.items() if v is not None})
        try:
            self.stream.write(json.dumps(rec, default=str) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass


def _is_loopback(addr: str) -> bool:
    if addr in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def read_token(path) -> str:
    try:
        raw = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise SystemExit(f"vocoder serve: --token-file {path}: {getattr(e, 'strerror', None) or e}") from None
    if len(raw) < 16 or any(c.isspace() for c in raw):
        raise SystemExit(
            f"vocoder serve: --token-file {path}: the token must be at least 16 characters with no "
            "spaces (e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return raw


def check(args) -> int:
    """--check: 0 when the host at --listen/--port answers /api/status with ok."""
    import urllib.error
    import urllib.request

    host = args.listen if args.listen not in ("0.0.0.0", "::", "") else "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    req = urllib.request.Request(f"http://{host}:{args.port}/api/status")
    if args.token_file:
        req.add_header("Authorization", f"Bearer {read_token(args.token_file)}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            st = json.loads(r.read())
    except urllib.error.HTTPError as e:
        print(f"vocoder serve --check: {host}:{args.port} answered {e.code} {e.reason}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"vocoder serve --check: no healthy host at {host}:{args.port}: {e}", file=sys.stderr)
        return 1
    if not st.get("ok"):
        print(f"vocoder serve --check: {host}:{args.port} reports not ok", file=sys.stderr)
        return 1
    t = st.get("timing", {})
    print(
        f"ok: vocoder serve {st.get('version')} pid {st.get('pid')} up {st.get('uptime_s', 0):.0f} s, "
        f"api {st.get('api')}, {t.get('callbacks')} callbacks, load p99.9 {t.get('load_p999')}, "
        f"xruns {st.get('xruns')}, jobs {st.get('jobs')}"
    )
    return 0


def _parse_voice(spec: str) -> tuple:
    """'CH=PRESET' or 'CH=PLUGIN:PRESET' (PLUGIN an id like test.saw)."""
    ch, sep, what = spec.partition("=")
    if not sep or not ch.strip().isdigit() or not 1 <= int(ch) <= 16 or not what:
        raise SystemExit(f"vocoder serve: --voice {spec!r}: expected CH=PRESET or CH=PLUGIN:PRESET with CH 1..16")
    plugin, colon, preset = what.partition(":")
    if colon:
        return int(ch) - 1, plugin, preset or None
    if "." in what and not what.endswith(".safetensors"):
        return int(ch) - 1, what, None  # a plugin id
    return int(ch) - 1, "vocoder.wavernn", what


def main(args) -> int:
    if args.check:
        return check(args)
    log = JsonLog()
    token = read_token(args.token_file) if args.token_file else None
    if not _is_loopback(args.listen) and token is None:
        print(
            f"vocoder serve: refusing to listen on {args.listen} without --token-file: anyone who can reach "
            "it could play and render; give a token file (or listen on 127.0.0.1)",
            file=sys.stderr,
        )
        return 2
    if args.blocksize < 16 or args.blocksize > 8192 or not 8000 <= args.rate <= 384000:
        print("vocoder serve: --blocksize must be 16..8192 and --rate 8000..384000", file=sys.stderr)
        return 2
    if args.spool is None:
        base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
        args.spool = str(Path(base) / f"vocoder-serve-{os.getuid()}-{args.port}")
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        print("vocoder serve: needs aiohttp (pip install 'vocoder[serve]')", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args, log, token))
    except KeyboardInterrupt:
        return 130


async def _serve(args, log, token) -> int:
    from aiohttp import web

    from .app import Server
    from .audio import AudioError

    srv = Server(args, log)
    srv.token = token
    try:
        srv.audio.start()
    except AudioError as e:
        log("audio_error", level="error", error=str(e))
        print(f"vocoder serve: {e}", file=sys.stderr)
        srv.jobs.shutdown()
        return 2
    runner = web.AppRunner(srv.app(), access_log=None, handle_signals=False, shutdown_timeout=3)
    await runner.setup()
    site = web.TCPSite(runner, args.listen, args.port, reuse_address=True)
    try:
        await site.start()
    except OSError as e:
        print(f"vocoder serve: cannot listen on {args.listen}:{args.port}: {e.strerror or e}", file=sys.stderr)
        srv.audio.stop()
        srv.jobs.shutdown()
        await runner.cleanup()
        return 2
    server: Any = site._server  # aiohttp's TCPSite keeps its asyncio server here
    port = server.sockets[0].getsockname()[1] if server is not None and server.sockets else args.port
    log(
        "listening",
        address=args.listen,
        port=port,
        api=args.api,
        device=srv.audio.device_name,
        token=token is not None,
        spool=args.spool,
        pid=os.getpid(),
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    # voices to start with, loaded like any request (off the loop, then swapped in)
    voices = [_parse_voice(v) for v in (args.voice or [])]
    if not voices and not args.no_default_voice:
        from vocoder import presets

        if any(n == "default" for n, _p, m in presets.list_presets() if "error" not in m):
            voices = [(0, "vocoder.wavernn", "default")]
    for ch, plugin, preset in voices:
        try:
            v = await loop.run_in_executor(None, srv._make_voice, plugin, preset, ch, ch)
            await srv._swap(ch, v)
            srv.audio.channels[ch].seed = ch
            log("voice_loaded", channel=ch + 1, plugin=v.plugin_id, preset=v.preset_name)
        except Exception as e:  # a bad start voice is logged; the host serves anyway
            log("voice_refused", level="warning", channel=ch + 1, plugin=plugin, preset=preset, error=str(e))

    if args.port_file:  # written once the start voices are in: the host is ready
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(str(port))
        os.replace(tmp, args.port_file)
    log("ready", port=port)

    async def housekeeping():
        while True:
            await asyncio.sleep(0.5)
            srv.audio.collect()
            srv.jobs.pump()

    hk = asyncio.create_task(housekeeping())
    await stop.wait()
    log("stopping")
    hk.cancel()
    for ws in list(srv.sockets):
        await ws.close()
    await runner.cleanup()
    await loop.run_in_executor(None, srv.audio.stop)  # panic, silence out, stream closed, voices destroyed
    srv.jobs.shutdown()
    log("stopped", callbacks=srv.audio.mixer.callbacks)
    return 0
