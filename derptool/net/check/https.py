"""The ``latency_check`` and ``generate_204`` steps, and the one HTTP request the DERP step reuses."""

from __future__ import annotations

import socket
import ssl
from typing import BinaryIO

from derptool.net.check.report import NodeCheck, NodeTarget
from derptool.net.check.tls import TlsSession, handshake

MAX_HEADER_BYTES = 16 * 1024


def request(t: NodeTarget, address: str, tls: TlsSession, timeout: float, path: str,
            extra: str = "") -> tuple[ssl.SSLSocket, BinaryIO, int, dict[str, str]]:
    """Send ``GET path`` and read the status line and headers; the caller closes the socket."""
    sock = handshake(t, address, tls.context, timeout)
    try:
        host = f"[{t.host}]" if ":" in t.host else t.host
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: derptool-check\r\n{extra}\r\n"
                     .encode("ascii"))
        reader: BinaryIO = sock.makefile("rb")
        status_line = reader.readline(MAX_HEADER_BYTES).decode("latin-1").strip()
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ValueError(f"not an HTTP answer: {status_line[:60]!r}")
        headers: dict[str, str] = {}
        total = 0
        while True:
            line = reader.readline(MAX_HEADER_BYTES)
            total += len(line)
            if not line or line in (b"\r\n", b"\n") or total > MAX_HEADER_BYTES:
                break
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        return sock, reader, int(parts[1]), headers
    except BaseException:
        sock.close()
        raise


def check_http(t: NodeTarget, address: str, tls: TlsSession, result: NodeCheck, timeout: float) -> None:
    """``GET /derp/latency-check`` must answer 2xx and ``GET /generate_204`` 204; record both steps."""
    note = "" if tls.verified else " (certificate not verified)"
    for name, path, want in (("latency_check", "/derp/latency-check", None), ("generate_204", "/generate_204", 204)):
        try:
            sock, _reader, status, _ = request(t, address, tls, timeout, path, "Connection: close\r\n")
            sock.close()
        except (OSError, ValueError) as err:
            result.add(name, "fail", f"GET {path}: {describe(err)}")
            continue
        good = status == want if want else 200 <= status <= 299
        expect = str(want) if want else "2xx"
        result.add(name, "pass" if good else "fail", f"GET {path}: {status}{'' if good else f', want {expect}'}{note}",
                   http_status=status)


def describe(err: BaseException) -> str:
    """A one-line reason for a failed request."""
    if isinstance(err, ssl.SSLError):
        return f"TLS error: {err.reason or err}"
    if isinstance(err, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(err, OSError):
        return err.strerror or str(err)
    return str(err)
