"""A minimal DERP-speaking HTTPS server for tests: enough of derper's HTTP surface to be checked.

* ``GET /derp`` with ``Upgrade: DERP`` answers ``101 Switching Protocols`` (with ``Derp-Version`` and
  ``Derp-Public-Key`` headers, as derper sends) followed by the server-key frame: type 0x01, a 4-byte
  big-endian length, the magic ``DERP🔑`` and the 32-byte public key. Then it closes (no tailnet).
* ``GET /derp/latency-check`` and ``/derp/probe``: empty 200; ``GET /generate_204``: 204.

Standard library only; runs in a background thread::

    with DerpServer(cert_pem, key_pem) as srv:   # PEM files (paths)
        srv.port, srv.public_key

``derp=False`` makes it a plain web server (``/derp`` is 404), ``bad_magic=True`` sends a frame with a
wrong magic, so the failure paths of a checker can be tested too. ``drip=SECONDS`` sends every answer one
byte at a time with that pause between bytes (a server that keeps a reader waiting without ever stalling).
"""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any

MAGIC = b"DERP\xf0\x9f\x94\x91"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        self.request.settimeout(5)
        try:
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        except (ssl.SSLError, OSError):
            self.request.close()
            self.rfile = self.wfile = None  # type: ignore[assignment]
            return
        super().setup()

    def handle(self) -> None:
        if self.rfile is None:
            return
        with contextlib.suppress(ssl.SSLError, OSError):
            super().handle()

    def finish(self) -> None:
        if self.rfile is None:
            return
        with contextlib.suppress(ssl.SSLError, OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, data: bytes) -> None:
        drip: float = self.server.options["drip"]
        if not drip:
            self.wfile.write(data)
            return
        for i in range(len(data)):
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()
            time.sleep(drip)

    def _empty(self, status: int) -> None:
        if self.server.options["drip"]:
            self._send(f"HTTP/1.1 {status} {self.responses[status][0]}\r\nContent-Length: 0\r\n\r\n".encode())
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        opts = self.server.options
        self.server.paths.append(self.path)
        if self.path in ("/derp/latency-check", "/derp/probe"):
            self._empty(200)
        elif self.path == "/generate_204":
            self._empty(opts["generate_204_status"])
        elif self.path == "/derp" and opts["derp"] and self.headers.get("Upgrade", "").lower() == "derp":
            key: bytes = self.server.public_key
            self._send(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n"
                b"Derp-Version: 2\r\nDerp-Public-Key: " + key.hex().encode() + b"\r\n\r\n"
            )
            magic = b"NOTDERP!" if opts["bad_magic"] else MAGIC
            self._send(struct.pack("!BI", 0x01, len(magic) + len(key)) + magic + key)
            self.wfile.flush()
            self.close_connection = True
        else:
            self._empty(404)


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls: ssl.SSLContext
    public_key: bytes
    options: dict[str, Any]
    paths: list[str]

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # handshake failures from clients that reject the certificate are expected


class DerpServer:
    """Serve on *host* (port 0 picks one) with the given certificate chain and key (PEM file paths)."""

    def __init__(
        self,
        cert_file: str,
        key_file: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        public_key: bytes | None = None,
        derp: bool = True,
        bad_magic: bool = False,
        generate_204_status: int = 204,
        drip: float = 0.0,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_cls = type("_Server", (_Server,), {"address_family": family})
        self._server: _Server = server_cls((host, port), _Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        self._server.tls = ctx
        self._server.public_key = public_key if public_key is not None else os.urandom(32)
        self._server.options = {
            "derp": derp,
            "bad_magic": bad_magic,
            "generate_204_status": generate_204_status,
            "drip": drip,
        }
        self._server.paths = []
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def public_key(self) -> bytes:
        return self._server.public_key

    @property
    def paths(self) -> list[str]:
        """Request paths seen, in order."""
        return self._server.paths

    def __enter__(self) -> DerpServer:
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
