"""The web page of `vocoder serve` in a real headless Chromium (Debian's `chromium`),
driven over the DevTools protocol: the page loads, shows the live status, a click on
the on-screen keyboard reaches the host as a note. Saves a screenshot (to docs/serve.png
when VOCODER_UPDATE_DOCS=1)."""

import asyncio
import base64
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_serve import Serve  # noqa: E402


class Chrome:
    """Headless Chromium with the DevTools protocol on a websocket (aiohttp's client)."""

    def __init__(self, tmp: Path):
        self.profile = tmp / "profile"
        self.p = subprocess.Popen(
            [
                CHROMIUM,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--remote-debugging-port=0",
                "--window-size=1280,860",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp / "chromium.log", "wb"),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        port_file = self.profile / "DevToolsActivePort"
        for _ in range(300):  # 30 s
            if port_file.exists() and port_file.read_text().strip():
                break
            if self.p.poll() is not None:
                break
            time.sleep(0.1)
        assert port_file.exists(), (tmp / "chromium.log").read_text()[-2000:]
        self.port = int(port_file.read_text().split()[0])
        self.next_id = 0

    async def connect(self, session):
        async with session.get(f"http://127.0.0.1:{self.port}/json/list") as r:
            pages = [t for t in await r.json() if t["type"] == "page"]
        self.ws = await session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024)

    async def call(self, method, **params):
        self.next_id += 1
        my = self.next_id
        await self.ws.send_json({"id": my, "method": method, "params": params})
        for _ in range(10000):
            m = await asyncio.wait_for(self.ws.receive_json(), 30)
            if m.get("id") == my:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]
        raise RuntimeError(f"{method}: no answer")

    async def js(self, expr):
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def wait_js(self, expr, seconds=20):
        for _ in range(int(seconds * 10)):
            v = await self.js(expr)
            if v:
                return v
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expr}")

    def close(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)


def test_page_in_headless_chromium(tmp_path):
    import aiohttp

    server = Serve(tmp_path / "serve")
    chrome = Chrome(tmp_path)
    try:
        server.req("PUT", "/api/channels/1/lyrics", {"text": "shine on and on"})
        n0 = server.status()["notes_received"]

        async def go():
            async with aiohttp.ClientSession() as cs:
                await chrome.connect(cs)
                await chrome.call("Page.enable")
                await chrome.call("Page.navigate", url=server.url + "/")
                # the status stream arrives and fills the page
                await chrome.wait_js("window.vocoderState && window.vocoderState.status !== null")
                await chrome.wait_js("document.querySelector('#voices tbody').textContent.includes('vocoder.wavernn')")
                # press and hold E4 on the on-screen keyboard
                rect = await chrome.js(
                    "(() => { const r = document.querySelector('.key[data-note=\"64\"]')"
                    ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height - 10]; })()"
                )
                for t in ("mouseMoved", "mousePressed"):
                    await chrome.call(
                        "Input.dispatchMouseEvent",
                        type=t,
                        x=rect[0],
                        y=rect[1],
                        button="left",
                        buttons=1,
                        clickCount=1,
                        pointerType="mouse",
                    )
                await chrome.wait_js("window.vocoderState.acks >= 1")
                # the page shows the host's updated status: the note count and the syllable sung
                await chrome.wait_js(f"Number(document.getElementById('notes').textContent) >= {n0 + 1}")
                await chrome.wait_js("document.querySelector('#voices .syl').textContent === 'shine'")
                assert await chrome.js("document.getElementById('load-text').textContent.includes('p99.9')")
                await asyncio.sleep(0.5)
                shot = await chrome.call("Page.captureScreenshot", format="png")
                await chrome.call(
                    "Input.dispatchMouseEvent",
                    type="mouseReleased",
                    x=rect[0],
                    y=rect[1],
                    button="left",
                    buttons=0,
                    clickCount=1,
                    pointerType="mouse",
                )
                await chrome.wait_js("window.vocoderState.acks >= 2")
                await chrome.ws.close()
                return base64.b64decode(shot["data"])

        png = asyncio.run(asyncio.wait_for(go(), 120))
        st = server.status()
        assert st["notes_received"] == n0 + 1
        assert st["channels"][0]["syllable"] == ""  # released
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        (tmp_path / "serve.png").write_bytes(png)
        if os.environ.get("VOCODER_UPDATE_DOCS") == "1":
            (ROOT / "docs" / "serve.png").write_bytes(png)
    finally:
        chrome.close()
        rc, log = server.stop()
    assert rc == 0, log[-2000:]
