"""Debian's headless Chromium driven over the DevTools protocol on a pipe, with the network cut off.

Every load the browser tries goes to a loopback proxy that records it and answers nothing useful, so no request
can leave the machine; the DevTools log (``Network.requestWillBeSent``) lists every request the page made.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from tests.support.prereq import missing_command, need

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str:
    """The browser's path; a skip, or under CI=true a failure, when it is not installed."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    need(missing_command("chromium"))
    raise AssertionError("unreachable: chromium is missing but need() did not stop the test")


class _Recorder(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(2.0)
        try:
            head = self.request.recv(4096).decode("latin-1", "replace")
        except OSError:
            return
        line = head.split("\r\n", 1)[0]
        if line:
            self.server.seen.append(line)  # type: ignore[attr-defined]
        with suppress(OSError):
            self.request.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


class _Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.seen: list[str] = []


@contextmanager
def loopback_proxy() -> Iterator[_Proxy]:
    """A proxy on 127.0.0.1 that records the request line of everything sent to it."""
    proxy = _Proxy()
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()


@dataclass
class Visit:
    """What a page did in the browser."""

    requests: list[str] = field(default_factory=list)
    """URLs of every request the page made (DevTools log), the page itself included."""
    value: Any = None
    """The value of the expression evaluated after the load."""
    screenshot: bytes = b""
    console: list[str] = field(default_factory=list)


class Browser:
    """One headless Chromium; :meth:`visit` loads a page in a new tab."""

    def __init__(self, proxy_port: int) -> None:
        self.profile = tempfile.mkdtemp(prefix="derptool-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [
            chromium_path(),
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            f"--proxy-server=http://127.0.0.1:{proxy_port}",
            "--proxy-bypass-list=<-loopback>",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-sync",
            "--disable-features=Translate,MediaRouter,OptimizationHints",
            "--hide-scrollbars",
            "--mute-audio",
            "about:blank",
        ]
        # the protocol's pipe: the browser reads commands on fd 3 and writes answers on fd 4
        script = (
            "import fcntl, os, sys\n"
            f"r = fcntl.fcntl({to_browser_r}, fcntl.F_DUPFD, 10)\n"  # out of the way of 3 and 4 first
            f"w = fcntl.fcntl({from_browser_w}, fcntl.F_DUPFD, 10)\n"
            "os.dup2(r, 3, inheritable=True)\nos.dup2(w, 4, inheritable=True)\n"
            "os.execv(sys.argv[1], sys.argv[1:])"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, *args],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("the browser did not answer in time")
            import select

            ready, _, _ = select.select([self._from_browser], [], [], 0.5)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("the browser closed its DevTools pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)  # type: ignore[no-any-return]

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Send a command and wait for its answer (events that arrive meanwhile are kept in :attr:`events`)."""
        want = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(deadline)
            if message.get("id") == want:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})  # type: ignore[no-any-return]
            self.events.append(message)

    def wait_event(self, method: str, session: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for the event *method* of *session* (or find it among those already received)."""
        for event in self.events:
            if event.get("method") == method and event.get("sessionId") == session:
                return event
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(deadline)
            self.events.append(message)
            if message.get("method") == method and message.get("sessionId") == session:
                return message

    def visit(self, url: str, expression: str, *, width: int = 1100, height: int = 900) -> Visit:
        """Load *url* in a new tab, evaluate *expression* (its JSON value), take a full-page screenshot."""
        self.events = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network.enable", "Page.enable", "Runtime.enable"):
            self.call(domain, session=session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self.call("Page.navigate", {"url": url}, session=session)
        self.wait_event("Page.loadEventFired", session)
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
        shot = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session)
        time.sleep(0.2)  # late requests (none expected) still reach the log
        self.call("Runtime.evaluate", {"expression": "1"}, session=session)
        visit = Visit(
            requests=[
                e["params"]["request"]["url"]
                for e in self.events
                if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == session
            ],
            value=result.get("result", {}).get("value"),
            screenshot=base64.b64decode(shot["data"]),
            console=[
                str(e["params"].get("args"))
                for e in self.events
                if e.get("method") == "Runtime.consoleAPICalled" and e.get("sessionId") == session
            ],
        )
        self.call("Target.closeTarget", {"targetId": target})
        return visit

    def close(self) -> None:
        try:
            self._send("Browser.close")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def browser() -> Iterator[tuple[Browser, _Proxy]]:
    """A headless Chromium whose every network load goes to a recording loopback proxy."""
    with loopback_proxy() as proxy:
        b = Browser(proxy.server_address[1])
        try:
            yield b, proxy
        finally:
            b.close()


MARKERS_JS = """JSON.stringify({
  regions: [...document.querySelectorAll('svg.worldmap [data-region-id]')].map(g => ({
    id: Number(g.dataset.regionId), state: g.dataset.state, title: g.querySelector('title').textContent,
    latency: g.dataset.latencyMs === undefined ? null : Number(g.dataset.latencyMs),
    box: (b => [b.width, b.height])(g.getBoundingClientRect())})),
  bars: [...document.querySelectorAll('svg.impactchart [data-site]')].map(g => ({
    site: g.dataset.site, increase: g.dataset.increaseMs === undefined ? null : Number(g.dataset.increaseMs),
    over: g.dataset.over === 'true', y: g.getBoundingClientRect().y})),
  budget: [...document.querySelectorAll('svg.impactchart .budget')].map(g => Number(g.dataset.maxIncreaseMs)),
  tables: [...document.querySelectorAll('table')].map(t => t.rows.length),
  title: document.title,
  images: document.images.length,
})"""
"""What the tests read from a page: markers, bars, the budget line, table sizes."""
