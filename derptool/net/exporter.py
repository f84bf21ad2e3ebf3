"""The HTTP side of a Prometheus exporter: the latest exposition text of a repeating command, served to scrapers.

``derptool latency --listen`` and ``derptool check --listen`` measure in a loop and :meth:`Exporter.publish`
the text of each round; the :class:`Exporter` answers from a thread of its own:

==============  ===========================================================================================
``/metrics``    the latest text (``Content-Type: text/plain; version=0.0.4``, gzip when asked); 503 before
``/``           the first round
``/healthz``    200 once a round has been published, 503 before, when the last round was published with a
                problem (``unhealthy: 0 of 30 regions answered``) and once the last round is stale (older
                than three intervals and five minutes: the loop hangs); a one-line body for the log
anything else   404
==============  ===========================================================================================

``GET`` and ``HEAD`` are answered; a client that goes away mid-answer is ignored, never a traceback. Also here:
:func:`parse_listen` (``ADDR:PORT``, ``[v6]:PORT``) and the constant labels a fleet adds to every series
(:func:`constant_labels`, :func:`with_labels`), checked against Prometheus' rules for label names.
"""

from __future__ import annotations

import gzip
import re
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Collection, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from derptool.errors import UsageError
from derptool.net.dial import split_host_port

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TARGET_LABELS = frozenset({"job", "instance"})
"""Labels Prometheus sets on every scraped series itself; an exporter's own would be renamed ``exported_*``."""

_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_METRIC_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


# -- options ---------------------------------------------------------------------------------------------


def parse_listen(text: str, option: str = "--listen") -> tuple[str, int]:
    """``ADDR:PORT`` (``[v6]:PORT`` for IPv6; ``:PORT`` for every IPv4 address) as a (host, port) pair."""
    try:
        host, port = split_host_port(text.strip())
    except ValueError:
        port = None
    if port is None or not 0 <= port <= 65535:
        raise UsageError(f"{option}: {text!r} is not ADDR:PORT (examples: 127.0.0.1:9469, [::]:9469)")
    return host or "0.0.0.0", port


def check_label_name(name: str, option: str, example: str = "site") -> str:
    """*name* if Prometheus accepts it as a label name: letters, digits and ``_``, not a digit first, no ``__``."""
    if not _LABEL_NAME.match(name) or name.startswith("__"):
        raise UsageError(f"{option}: {name!r} is not a label name (letters, digits, _; example: {example})")
    return name


def constant_labels(
    pairs: Iterable[str], *, site: str | None = None, taken: Collection[str] = (), option: str = "--site-label"
) -> dict[str, str]:
    """The labels ``--site-label NAME=VALUE`` (repeatable) and ``--site VALUE`` (``site="VALUE"``) ask for.

    Raises :class:`UsageError` for a malformed pair, a bad or repeated name, an empty value, ``job`` or
    ``instance`` (Prometheus sets those itself) and the names in *taken* (labels the series already carry).
    """
    labels: dict[str, str] = {}
    items = [(option, pair) for pair in pairs] + ([("--site", f"site={site}")] if site is not None else [])
    for opt, pair in items:
        name, eq, value = pair.partition("=")
        name = name.strip()
        if not eq:
            raise UsageError(f"{opt}: {pair!r} is not NAME=VALUE (example: --site-label site=office-denver)")
        check_label_name(name, opt)
        if name in TARGET_LABELS:
            raise UsageError(
                f"{opt}: Prometheus sets the {name!r} label itself; name the site with "
                "--site NAME (label 'site') instead"
            )
        if name in taken:
            raise UsageError(f"{opt}: the series already carry a {name!r} label; choose another name")
        if not value:
            raise UsageError(f"{opt}: {name}= needs a value (Prometheus treats an empty label as none)")
        if name in labels:
            raise UsageError(f"{opt}: the label {name!r} is given twice")
        labels[name] = value
    return labels


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def with_labels(text: str, labels: Mapping[str, str]) -> str:
    """Exposition *text* with *labels* added (first) to every sample; comments and blank lines unchanged."""
    if not labels:
        return text
    extra = ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items())
    out = []
    for line in text.splitlines(keepends=True):
        m = None if line.startswith("#") else _METRIC_NAME.match(line)
        if m is None:
            out.append(line)
            continue
        rest = line[m.end() :]
        if rest.startswith("{"):
            inner = rest[1:]
            out.append(f"{m.group()}{{{extra}{'' if inner.lstrip().startswith('}') else ','}{inner}")
        else:
            out.append(f"{m.group()}{{{extra}}}{rest}")
    return "".join(out)


# -- the server ------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a client that sends nothing for this long loses its connection (and thread)
    error_message_format = "%(code)d %(message)s\n"  # other methods (501), malformed requests (400): one line
    error_content_type = "text/plain; charset=utf-8"

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, *, body: bool) -> None:
        exporter = self.server.exporter
        path = self.path.split("?", 1)[0]
        if path in ("/metrics", "/"):
            latest = exporter.latest()
            if latest is None:
                self._send(503, b"no round has finished yet\n", body)
            elif "gzip" in self.headers.get("Accept-Encoding", ""):
                self._send(200, latest[1], body, CONTENT_TYPE, encoding="gzip")
            else:
                self._send(200, latest[0], body, CONTENT_TYPE)
        elif path == "/healthz":
            ok, line = exporter.health()
            self._send(200 if ok else 503, line.encode() + b"\n", body)
        else:
            self._send(404, b"not found; metrics are on /metrics, health on /healthz\n", body)

    def _send(
        self,
        status: int,
        data: bytes,
        body: bool,
        ctype: str = "text/plain; charset=utf-8",
        encoding: str | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        if status == 200 and ctype == CONTENT_TYPE:
            self.send_header("Vary", "Accept-Encoding")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    exporter: Exporter

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6 and self.server_address[0] in ("::", ""):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # [::] takes IPv4 too
        # TCPServer's bind, without HTTPServer's socket.getfqdn(): no DNS lookup to start an exporter
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: object, client_address: object) -> None:
        err = sys.exc_info()[1]
        if isinstance(err, ConnectionError | TimeoutError):
            return  # the scraper went away or stalled: nothing to report
        print(f"derptool: warning: exporter: a request from {client_address} failed: {err}", file=sys.stderr)


class Exporter:
    """An HTTP exporter on (*host*, *port*) serving the latest published exposition text, from a daemon thread.

    Binding happens here: :class:`UsageError` (exit 2) names *option* and the reason when the address cannot be
    had. *every* (seconds) is the interval of the rounds: ``/healthz`` turns 503 when none was published for
    three intervals and five minutes (:attr:`stale_after`; None never). Stop it with :meth:`close` (or use it
    as a context manager).
    """

    def __init__(self, host: str, port: int, *, every: float | None = None, option: str = "--listen") -> None:
        self._lock = threading.Lock()
        self._latest: tuple[bytes, bytes] | None = None
        self._published = 0.0
        self._problem: str | None = None
        self._rounds = 0
        self.stale_after = 3 * every + 300 if every is not None else None
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_cls = type("_Server", (_Server,), {"address_family": family})
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self._server: _Server = server_cls((host, port), _Handler)
        except OSError as err:
            raise UsageError(f"{option} {where}: {err.strerror or err}") from None
        self._server.exporter = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"exporter {where}", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the exporter listens on (the real port when 0 was asked for)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def publish(self, text: str | bytes, *, problem: str | None = None) -> None:
        """Serve *text* (one round's exposition) from now on; *problem* (one line) makes ``/healthz`` answer 503
        ``unhealthy: <problem>`` until a round without one is published."""
        data = text.encode() if isinstance(text, str) else text
        packed = (data, gzip.compress(data, compresslevel=6, mtime=0))
        with self._lock:
            self._problem = problem
            self._latest = packed
            self._published = time.monotonic()
            self._rounds += 1

    def latest(self) -> tuple[bytes, bytes] | None:
        """The latest text, plain and gzipped; None before the first :meth:`publish`."""
        with self._lock:
            return self._latest

    def health(self) -> tuple[bool, str]:
        """Whether the exporter is healthy, and a line saying why."""
        with self._lock:
            rounds, published, problem = self._rounds, self._published, self._problem
        if rounds == 0:
            return False, "starting: no round has finished yet"
        age = time.monotonic() - published
        if self.stale_after is not None and age > self.stale_after:
            return False, f"stale: the last round finished {age:.0f} s ago (limit {self.stale_after:.0f} s)"
        if problem is not None:
            return False, f"unhealthy: {problem}"
        return True, f"ok: {rounds} round(s), the last finished {age:.0f} s ago"

    def close(self) -> None:
        """Stop serving and release the address (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
