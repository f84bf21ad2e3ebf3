"""The HTTPS latency probe on the wire: the ``GET /derp/latency-check`` request and the reading of its answer.

A DERP server answers ``/derp/latency-check`` (and ``/generate_204``) over HTTPS; netcheck times it when
STUN gets no answer, and ``check`` requires it. Both write the same request and read the same status line
here; only how bytes move differs (an asyncio stream for netcheck, a deadline-bound socket for ``check``).
"""

from __future__ import annotations

from derptool.errors import ProbeFailed
from derptool.net.dial import join_host_port

LATENCY_CHECK_PATH = "/derp/latency-check"
MAX_HEADER_BYTES = 16 * 1024
"""An answer whose header does not end within this many bytes is not a DERP server's."""


def request(host: str, port: int, path: str = LATENCY_CHECK_PATH) -> bytes:
    """The bytes of ``GET path`` to *host* (the ``Host`` header names *port* unless it is 443)."""
    host_header = join_host_port(host, port) if port != 443 else (f"[{host}]" if ":" in host else host)
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: derptool\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


def status(head: bytes) -> int:
    """The status code of an answer's *head* (its header, from the status line on).

    Raises :class:`~derptool.errors.ProbeFailed` when the status line is not HTTP's.
    """
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProbeFailed(f"not an HTTP answer: {status_line[:60]!r}")
    return int(parts[1])


def require_success(head: bytes) -> int:
    """:func:`status`, raising :class:`~derptool.errors.ProbeFailed` for one above 299 as well."""
    code = status(head)
    if code > 299:
        reason = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 1)[1]
        raise ProbeFailed(f"HTTP status {reason}")
    return code
