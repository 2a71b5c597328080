"""OSC control of a running ``vocoder live`` (python-osc, 127.0.0.1 only)."""

from __future__ import annotations

import threading

from .host import LiveHost


class OscControl:
    """OSC server on 127.0.0.1:port. Addresses (an optional last int argument names a MIDI
    channel 1-16; without it every voice is meant):

    ========================  ==============================================
    /vocoder/preset NAME [ch]  switch the voice of channel ch (or every voice) to a preset
    /vocoder/lyrics TEXT [ch]  load lyrics (the cursor restarts)
    /vocoder/vibrato X [ch]    vibrato depth, 0..1 (float) or 0..127 (int): CC 1
    /vocoder/cc N V [ch]       any control change
    /vocoder/lyric_step N [ch] move the lyric cursor by N syllables (-1: back one)
    /vocoder/lyric_restart [ch]
    /vocoder/panic             every note off, now
    ========================  ==============================================
    """

    def __init__(self, host: LiveHost, port: int, make_voice, log=None):
        from pythonosc import dispatcher, osc_server

        self.host = host
        self.make_voice = make_voice
        self.lyrics_text: dict[int, str] = {}  # voice index -> the lyrics OSC loaded (a new preset keeps them)
        self.log = log or (lambda s: None)
        d = dispatcher.Dispatcher()
        for name in ("preset", "lyrics", "vibrato", "cc", "lyric_step", "lyric_restart", "panic"):
            d.map(f"/vocoder/{name}", self._guard(getattr(self, "_" + name)))
        d.set_default_handler(lambda addr, *a: self.log(f"osc: unknown address {addr}"))
        self.server = osc_server.ThreadingOSCUDPServer(("127.0.0.1", int(port)), d)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="vocoder-osc", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _guard(self, fn):
        def handler(addr, *args):
            try:
                fn(*args)
            except Exception as e:  # a bad message must not kill the server
                self.log(f"osc {addr} {list(args)}: {e}")

        return handler

    def _targets(self, ch):
        """Voice indices for an optional 1-based channel argument."""
        if ch is None:
            return list(range(len(self.host.voices)))
        ch = int(ch)
        if not 1 <= ch <= 16:
            raise ValueError(f"channel must be 1..16, got {ch}")
        vi = self.host.routing[ch - 1]
        if vi is None:
            raise ValueError(f"channel {ch} is not routed to a voice")
        return [vi]

    def _preset(self, name, ch=None):
        for vi in self._targets(ch):
            new = self.make_voice(str(name), vi)
            if vi in self.lyrics_text:
                new.lyrics(self.lyrics_text[vi])
            self.host.replace_voice(vi, new)
        self.log(f"osc: preset {name}")

    def _lyrics(self, text, ch=None):
        # Lyrics are parsed on this thread (never in the callback); the voice swaps them in.
        for vi in self._targets(ch):
            self.host.voices[vi].lyrics(str(text))
            self.lyrics_text[vi] = str(text)
        self.log(f"osc: lyrics {str(text)[:40]!r}")

    def _vibrato(self, x, ch=None):
        v = int(round(float(x) * 127)) if isinstance(x, float) else int(x)
        for vi in self._targets(ch):
            self.host.post("control", 1, max(0, min(127, v)), 0, voice=vi)

    def _cc(self, cc, value, ch=None):
        for vi in self._targets(ch):
            self.host.post("control", int(cc), max(0, min(127, int(value))), 0, voice=vi)

    def _lyric_step(self, n=1, ch=None):
        for vi in self._targets(ch):
            self.host.voices[vi].lyric_step(int(n))

    def _lyric_restart(self, ch=None):
        for vi in self._targets(ch):
            self.host.voices[vi].lyric_restart()

    def _panic(self, *args):
        self.host.post("panic")
        self.log("osc: panic")
