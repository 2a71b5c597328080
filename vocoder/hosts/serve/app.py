"""The HTTP/JSON + WebSocket control API and web page of ``vocoder serve`` (aiohttp).

See docs/serve.md for the API. Every handler runs on the event loop; anything slow
(building a voice, probing a plugin) runs in a thread, songs are parsed only in the
render workers. Errors are JSON ``{"error": message}`` with a fitting status.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from .audio import CHANNELS, AudioHost
from .jobs import JobError, Jobs, check_options

STATIC = Path(__file__).with_name("static")
MAX_EVENTS_PER_REQUEST = 256
MAX_JSON = 64 * 1024
MAX_SOCKETS = 64


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def jerror(status: int, message: str, **headers) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


class RateLimiter:
    """A token bucket per client address: ``rate`` requests a second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: float, max_clients: int = 4096):
        self.rate, self.burst, self.max_clients = float(rate), float(burst), max_clients
        self.buckets: dict = {}

    def allow(self, client: str) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        tokens, last = self.buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if len(self.buckets) >= self.max_clients and client not in self.buckets:
            # forget the fullest buckets (idle clients) so memory stays bounded
            for k in [k for k, (t, _) in self.buckets.items() if t >= self.burst][: self.max_clients // 2]:
                del self.buckets[k]
        if tokens < 1.0:
            self.buckets[client] = (tokens, now)
            return False
        self.buckets[client] = (tokens - 1.0, now)
        return True


def _number(d: dict, field: str, lo: float, hi: float, default=None) -> float:
    v = d.get(field, default)
    if v is None:
        raise ApiError(400, f"{field}: missing")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise ApiError(400, f"{field}: must be a number in {lo:g}..{hi:g}, got {v!r}")
    return float(v)


class Server:
    def __init__(self, args, log):
        self.args = args
        self.log = log
        self.token = None
        self.audio = AudioHost(
            api=args.api, sample_rate=args.rate, blocksize=args.blocksize, device=args.device, log=log
        )
        self.jobs = Jobs(
            args.spool, workers=args.workers, queue=args.queue, ttl=args.job_ttl, niceness=args.worker_nice, log=log
        )
        self.limiter = RateLimiter(args.rate_limit, args.rate_limit * 2)
        self.locks = [asyncio.Lock() for _ in range(CHANNELS)]
        self.started = time.time()
        self.sockets: set = set()
        self._plugins_cache = None
        self.max_upload = int(args.max_upload_mb * 1024 * 1024)
        from . import _is_loopback

        self.loopback = _is_loopback(args.listen)

    # ------------------------------------------------------------ middleware
    @web.middleware
    async def guard(self, request: web.Request, handler):
        t0 = time.perf_counter()
        client = request.remote or "?"
        status = 500
        try:
            refused = self.refuse_origin(request)
            if refused:
                status = 403
                return jerror(403, refused)
            if self.token is not None:
                auth = request.headers.get("Authorization", "")
                given = auth[7:].strip() if auth.startswith("Bearer ") else request.query.get("token", "")
                if not hmac.compare_digest(given.encode(), self.token.encode()):
                    status = 401
                    return jerror(
                        401,
                        "missing or wrong token (send 'Authorization: Bearer TOKEN')",
                        **{"WWW-Authenticate": "Bearer"},
                    )
            if request.path.startswith("/api/") and not self.limiter.allow(client):
                status = 429
                return jerror(429, "too many requests from this client; slow down", **{"Retry-After": "1"})
            try:
                resp = await handler(request)
            except ApiError as e:
                resp = jerror(e.status, str(e))
            except JobError as e:
                resp = jerror(e.status, str(e), **({"Retry-After": "5"} if e.status == 503 else {}))
            except web.HTTPException as e:
                if e.status < 400:
                    raise
                resp = jerror(e.status, e.reason)
            status = resp.status
            return resp
        except (asyncio.CancelledError, ConnectionResetError):
            status = 499
            raise
        except web.HTTPException as e:
            status = e.status
            raise
        except Exception as e:  # a bug must not take the host down: answer 500, log it
            self.log("error", level="error", path=request.path, error=f"{type(e).__name__}: {e}")
            status = 500
            return jerror(500, f"internal error: {type(e).__name__}: {e}")
        finally:
            self.log(
                "request",
                method=request.method,
                path=request.path,
                status=status,
                client=client,
                ms=round((time.perf_counter() - t0) * 1e3, 2),
            )

    # ------------------------------------------------------------ helpers
    def refuse_origin(self, request) -> str | None:
        """Browsers protect nobody on loopback: a web page from anywhere may POST to
        127.0.0.1 (or reach it by DNS rebinding). Refuse requests whose Origin is another
        site, and, on a loopback bind, a Host header that is not a loopback name."""
        from urllib.parse import urlsplit

        host = request.headers.get("Host", "")
        origin = request.headers.get("Origin")
        if origin is not None and origin != "null":
            if urlsplit(origin).netloc.lower() != host.lower():
                return f"cross-origin request from {origin[:100]} refused"
        elif origin == "null":
            return "request from an opaque origin refused"
        if self.loopback:
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            name = name.strip("[]").lower()
            if name not in ("localhost", "127.0.0.1", "::1") and not name.startswith("127."):
                return f"Host {host[:100]!r} refused: this host listens on loopback only"
        return None

    async def body_json(self, request: web.Request) -> Any:
        if request.content_length is not None and request.content_length > MAX_JSON:
            raise ApiError(413, f"JSON body larger than {MAX_JSON} bytes")
        raw = await request.content.read(MAX_JSON + 1)
        if len(raw) > MAX_JSON:
            raise ApiError(413, f"JSON body larger than {MAX_JSON} bytes")
        if not raw.strip():
            return {}
        try:
            d = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"body is not JSON: {e}") from None
        if not isinstance(d, (dict, list)):
            raise ApiError(400, "body must be a JSON object")
        return d

    def channel(self, request) -> int:
        raw = request.match_info["ch"]
        if not raw.isdigit() or not 1 <= int(raw) <= CHANNELS:
            raise ApiError(404, f"channel {raw!r}: channels are 1..{CHANNELS}")
        return int(raw) - 1

    def status(self, window_s: float | None = None) -> dict:
        self.audio.collect()
        self.jobs.pump()
        s = {
            "ok": True,
            "service": "vocoder serve",
            "version": _version(),
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started, 3),
            "jobs": self.jobs.counts(),
            "clients": len(self.sockets),
        }
        s.update(self.audio.status(window_s))
        return s

    # ------------------------------------------------------------ events
    def apply_event(self, ch: int, ev: dict) -> dict:
        if not isinstance(ev, dict):
            raise ApiError(400, "an event must be a JSON object")
        c = self.audio.channels[ch]
        v = c.voice
        kind = ev.get("type")
        if v is None:
            raise ApiError(409, f"channel {ch + 1} has no voice; PUT /api/channels/{ch + 1}/voice first")
        if kind == "note_on":
            note = _number(ev, "note", 0, 127)
            vel = _number(ev, "velocity", 0, 127, 100)
            evs = v.note_on(note, vel)
            c.notes += 1
            self.audio.notes += 1
        elif kind == "note_off":
            evs = v.note_off(_number(ev, "note", 0, 127))
        elif kind == "bend":
            evs = v.bend(_number(ev, "value", -1, 1))
        elif kind == "cc":
            evs = v.control(int(_number(ev, "cc", 0, 127)), _number(ev, "value", 0, 127))
        elif kind == "panic":
            evs = v.panic()
        else:
            raise ApiError(400, f"type: {kind!r} is not one of note_on, note_off, bend, cc, panic")
        dropped = self.audio.send(ch, evs)
        return {"channel": ch + 1, "type": kind, "sent": len(evs) - dropped, "dropped": dropped, "syllable": v.syllable}

    # ------------------------------------------------------------ handlers
    async def h_index(self, request):
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def h_status(self, request):
        w = request.query.get("window")
        try:
            window = None if w is None else float(w)
        except ValueError:
            window = -1.0
        if window is not None and not 0.01 <= window <= 3600:
            raise ApiError(400, f"window: seconds of callbacks to summarise, 0.01..3600, got {w!r}")
        return web.json_response(self.status(window))

    async def h_plugins(self, request):
        from vocoder.hosts import plugins

        if self._plugins_cache is None or request.query.get("refresh"):
            infos = await asyncio.get_running_loop().run_in_executor(None, plugins.list_plugins)
            self._plugins_cache = [i.to_json() for i in infos]
        return web.json_response({"plugins": self._plugins_cache})

    async def h_presets(self, request):
        from vocoder import presets

        found = await asyncio.get_running_loop().run_in_executor(None, presets.list_presets)
        out = [
            {
                "name": n,
                "ok": "error" not in m,
                "version": m.get("version"),
                "description": m.get("description"),
                "error": m.get("error"),
            }
            for n, _p, m in found
        ]
        return web.json_response({"presets": out})

    async def h_channels(self, request):
        return web.json_response({"channels": self.audio.status()["channels"]})

    async def h_set_voice(self, request):
        ch = self.channel(request)
        d = await self.body_json(request)
        if not isinstance(d, dict):
            raise ApiError(400, "body must be a JSON object")
        plugin = d.get("plugin", "vocoder.wavernn")
        preset = d.get("preset")
        seed = d.get("seed", ch)
        if not isinstance(plugin, str) or len(plugin) > 200:
            raise ApiError(400, "plugin: must be a plugin id")
        if preset is not None and (
            not isinstance(preset, str)
            or not preset
            or "/" in preset
            or "\\" in preset
            or preset.startswith(".")
            or len(preset) > 100
        ):
            raise ApiError(400, f"preset: {preset!r} must be a preset name (see GET /api/presets), not a path")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise ApiError(400, f"seed: must be an integer >= 0, got {seed!r}")
        if "/" in plugin or "\\" in plugin or plugin.startswith("."):
            raise ApiError(400, "plugin: give a plugin id from GET /api/plugins, not a path")
        async with self.locks[ch]:
            voice = await asyncio.get_running_loop().run_in_executor(None, self._make_voice, plugin, preset, seed, ch)
            await self._swap(ch, voice)
            self.audio.channels[ch].seed = seed
        self.log("voice_loaded", channel=ch + 1, plugin=voice.plugin_id, preset=voice.preset_name)
        return web.json_response(self.audio.channels[ch].to_json(self.audio.mixer))

    def _make_voice(self, plugin, preset, seed, ch):
        from vocoder import PresetError
        from vocoder.hosts import plugins

        try:
            return plugins.make_voice(
                plugin,
                preset=preset,
                sample_rate=self.audio.sample_rate,
                seed=seed,
                warn=lambda m: self.log("plugin_warning", level="warning", message=m),
            )
        except (plugins.PluginError, PresetError, ValueError, TypeError, OSError) as e:
            self.log("voice_refused", level="warning", channel=ch + 1, plugin=plugin, preset=preset, error=str(e))
            raise ApiError(400 if not isinstance(e, plugins.PluginError) else 422, str(e)) from None

    async def _swap(self, ch: int, voice) -> None:
        for _ in range(400):  # at most 2 s for the previous crossfade to end
            if self.audio.try_swap(ch, voice):
                return
            await asyncio.sleep(0.005)
        if voice is not None:
            voice.instance.close()
        raise ApiError(409, f"channel {ch + 1} is still swapping voices; try again")

    async def h_unset_voice(self, request):
        ch = self.channel(request)
        async with self.locks[ch]:
            v = self.audio.channels[ch].voice
            if v is not None:
                self.audio.send(ch, v.panic())
            await self._swap(ch, None)
        self.log("voice_unloaded", channel=ch + 1)
        return web.json_response(self.audio.channels[ch].to_json(self.audio.mixer))

    async def h_lyrics(self, request):
        ch = self.channel(request)
        d = await self.body_json(request)
        text = d.get("text") if isinstance(d, dict) else None
        if not isinstance(text, str) or len(text) > 20000:
            raise ApiError(400, "text: must be a string of at most 20000 characters")
        v = self.audio.channels[ch].voice
        if v is None:
            raise ApiError(409, f"channel {ch + 1} has no voice")
        v.lyrics(text)
        return web.json_response({"channel": ch + 1, "upcoming": v.upcoming})

    async def h_events(self, request):
        ch = self.channel(request)
        d = await self.body_json(request)
        evs = d if isinstance(d, list) else [d]
        if len(evs) > MAX_EVENTS_PER_REQUEST:
            raise ApiError(413, f"at most {MAX_EVENTS_PER_REQUEST} events per request")
        return web.json_response({"results": [self.apply_event(ch, e) for e in evs]})

    async def h_panic(self, request):
        for c in self.audio.channels:
            if c.voice is not None:
                self.audio.send(c.index, c.voice.panic())
        self.log("panic")
        return web.json_response({"ok": True})

    # ---- jobs
    async def h_jobs(self, request):
        self.jobs.pump()
        return web.json_response({"jobs": self.jobs.list()})

    async def h_submit(self, request):
        opts = check_options(request.query)
        name = request.query.get("name", "")
        if request.content_length is not None and request.content_length > self.max_upload:
            raise ApiError(413, f"the song is larger than the upload limit ({self.max_upload} bytes)")
        self.jobs.pump()
        job_id, path = self.jobs.reserve(name, opts)
        total = 0
        ok = False
        try:
            with open(path, "wb") as f:
                while True:
                    chunk = await request.content.read(65536)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > self.max_upload:
                        raise ApiError(413, f"the song is larger than the upload limit ({self.max_upload} bytes)")
                    f.write(chunk)
            if total == 0:
                raise ApiError(400, "the body is empty: send the song's bytes as the request body")
            ok = True
        finally:
            if not ok:  # a client gone mid-upload, too large, empty: nothing left behind
                self.jobs.abandon(job_id)
                self.log("upload_abandoned", job=job_id, bytes=total)
        j = self.jobs.commit(job_id)
        return web.json_response(j, status=202, headers={"Location": f"/api/jobs/{job_id}"})

    async def h_job(self, request):
        self.jobs.pump()
        return web.json_response(self.jobs.view(request.match_info["id"]))

    async def h_job_wav(self, request):
        self.jobs.pump()
        jid = request.match_info["id"]
        p = self.jobs.wav_path(jid)
        name = Path(self.jobs.jobs[jid]["name"]).stem or "song"
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:80] or "song"
        return web.FileResponse(
            p, headers={"Content-Type": "audio/wav", "Content-Disposition": f'attachment; filename="{safe}.wav"'}
        )

    async def h_job_delete(self, request):
        self.jobs.delete(request.match_info["id"])
        return web.json_response({"ok": True})

    # ---- websocket
    async def h_ws(self, request):
        if len(self.sockets) >= MAX_SOCKETS:
            raise ApiError(503, f"too many WebSocket clients ({MAX_SOCKETS}); try again later")
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=MAX_JSON)
        await ws.prepare(request)
        self.sockets.add(ws)
        client = request.remote or "?"
        interval = 0.25

        async def push():
            while not ws.closed:
                await ws.send_json({"kind": "status", "status": self.status()})
                await asyncio.sleep(interval)

        pusher = asyncio.create_task(push())
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type == WSMsgType.ERROR:
                        break
                    continue
                if not self.limiter.allow(client):
                    await ws.send_json({"kind": "error", "error": "too many messages; slow down"})
                    continue
                try:
                    d = json.loads(msg.data)
                    if not isinstance(d, dict):
                        raise ApiError(400, "a message must be a JSON object")
                    op = d.get("op")
                    if op == "event":
                        ch = int(_number(d, "channel", 1, CHANNELS)) - 1
                        res = self.apply_event(ch, d.get("event"))
                        await ws.send_json({"kind": "event", "result": res, "id": d.get("id")})
                    elif op == "panic":
                        for c in self.audio.channels:
                            if c.voice is not None:
                                self.audio.send(c.index, c.voice.panic())
                        await ws.send_json({"kind": "ok", "id": d.get("id")})
                    else:
                        raise ApiError(400, f"op: {op!r} is not one of event, panic")
                except ApiError as e:
                    await ws.send_json({"kind": "error", "error": str(e)})
                except (ValueError, TypeError) as e:
                    await ws.send_json({"kind": "error", "error": f"bad message: {e}"})
        finally:
            pusher.cancel()
            self.sockets.discard(ws)
        return ws

    # ------------------------------------------------------------ app
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard], client_max_size=max(self.max_upload, MAX_JSON))
        r = app.router
        r.add_get("/", self.h_index)
        r.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
        r.add_get("/api/status", self.h_status)
        r.add_get("/api/plugins", self.h_plugins)
        r.add_get("/api/presets", self.h_presets)
        r.add_get("/api/channels", self.h_channels)
        r.add_put("/api/channels/{ch}/voice", self.h_set_voice)
        r.add_delete("/api/channels/{ch}/voice", self.h_unset_voice)
        r.add_put("/api/channels/{ch}/lyrics", self.h_lyrics)
        r.add_post("/api/channels/{ch}/events", self.h_events)
        r.add_post("/api/panic", self.h_panic)
        r.add_get("/api/jobs", self.h_jobs)
        r.add_post("/api/jobs", self.h_submit)
        r.add_get("/api/jobs/{id}", self.h_job)
        r.add_get("/api/jobs/{id}/wav", self.h_job_wav)
        r.add_delete("/api/jobs/{id}", self.h_job_delete)
        r.add_get("/api/ws", self.h_ws)
        return app


def _version() -> str:
    import vocoder

    return vocoder.__version__
