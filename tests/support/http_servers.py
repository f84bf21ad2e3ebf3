"""Loopback HTTP servers the probes talk to: an HTTPS ``/derp/latency-check`` endpoint and a captive-portal
check endpoint that answers like derper or like a portal."""

from __future__ import annotations

import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class TLSServer:
    """A threaded HTTPS server answering ``/derp/latency-check`` (empty 200) after *delay* seconds."""

    def __init__(
        self,
        ctx: ssl.SSLContext,
        host: str = "127.0.0.1",
        delay: float = 0.0,
        status: int = 200,
        handshake_delay: float = 0.0,
    ) -> None:
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.paths.append(self.path)
                time.sleep(delay)
                code = status if self.path == "/derp/latency-check" else 404
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # failed handshakes are part of the tests

        if handshake_delay:
            ctx.sni_callback = lambda *_: time.sleep(handshake_delay)
        self.server = Server((host, 0), Handler)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True, do_handshake_on_connect=False)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TLSServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def server_context(ca: Any, *names: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(ctx)
    return ctx


class CaptiveServer:
    """A loopback HTTP server; ``mode``: derper (204 + challenge answer), portal (302), bare204, badecho."""

    def __init__(self) -> None:
        self.mode = "derper"
        self.requests: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                challenge = self.headers.get("X-Tailscale-Challenge", "")
                if outer.mode == "portal":
                    self.send_response(302)
                    self.send_header("Location", "http://portal.invalid/login")
                elif outer.mode == "bare204":
                    self.send_response(204)
                else:
                    self.send_response(204)
                    echo = "response " + (challenge if outer.mode == "derper" else "ts_other")
                    self.send_header("X-Tailscale-Response", echo)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
