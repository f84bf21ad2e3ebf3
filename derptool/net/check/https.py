"""The ``latency_check`` and ``generate_204`` steps: plain HTTPS requests, each done by one deadline."""

from __future__ import annotations

import socket
import ssl

from derptool.net.check.report import NodeCheck, NodeTarget
from derptool.net.check.tls import TlsSession, handshake
from derptool.net.derp.conn import Deadline, DeadlineStream

MAX_HEADER_BYTES = 16 * 1024


def request(t: NodeTarget, address: str, tls: TlsSession, deadline: Deadline, path: str) -> int:
    """``GET path`` on a new connection; the answer's status, read (headers included) by *deadline*."""
    stream = DeadlineStream(handshake(t, address, tls.context, deadline), deadline)
    with stream.sock:
        host = f"[{t.host}]" if ":" in t.host else t.host
        stream.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: derptool-check\r\nConnection: close\r\n\r\n".encode(
                "ascii"
            )
        )
        head = stream.read_until(b"\r\n\r\n", MAX_HEADER_BYTES)
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP answer: {status_line[:60]!r}")
    return int(parts[1])


def check_http(
    t: NodeTarget,
    address: str,
    tls: TlsSession,
    result: NodeCheck,
    timeout: float,
    node_deadline: Deadline | None = None,
) -> None:
    """``GET /derp/latency-check`` must answer 2xx and ``GET /generate_204`` 204; record both steps."""
    note = "" if tls.verified else " (certificate not verified)"
    for name, path, want in (("latency_check", "/derp/latency-check", None), ("generate_204", "/generate_204", 204)):
        deadline = node_deadline.within(timeout) if node_deadline else Deadline(timeout)
        try:
            status = request(t, address, tls, deadline, path)
        except (OSError, ValueError) as err:
            result.add(name, "fail", f"GET {path}: {describe(err, deadline)}")
            continue
        good = status == want if want else 200 <= status <= 299
        expect = str(want) if want else "2xx"
        result.add(
            name,
            "pass" if good else "fail",
            f"GET {path}: {status}{'' if good else f', want {expect}'}{note}",
            http_status=status,
        )


def describe(err: BaseException, deadline: Deadline | None = None) -> str:
    """A one-line reason for a failed request."""
    if isinstance(err, TimeoutError | socket.timeout):
        return f"no answer within {deadline.seconds:g} s" if deadline else "timed out"
    if isinstance(err, ssl.SSLError):
        return f"TLS error: {err.reason or err}"
    if isinstance(err, OSError):
        return err.strerror or str(err)
    return str(err)
