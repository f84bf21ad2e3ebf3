"""The HTTPS probe: ``GET /derp/latency-check`` timed on an already established TLS connection."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from derptool.derpmap import DERPNode
from derptool.errors import ProbeFailed
from derptool.net.dial import join_host_port, pinned_sha256, server_name
from derptool.net.stunclient import describe_os_error

if TYPE_CHECKING:
    import ssl

LATENCY_CHECK_PATH = "/derp/latency-check"


def needs_verification(node: DERPNode) -> bool:
    """False for InsecureForTests nodes and for nodes pinned by a ``sha256-raw:`` CertName."""
    return not (node.insecure_for_tests or pinned_sha256(node.cert_name) is not None)


async def latency_check(node: DERPNode, address: str, ctx: ssl.SSLContext) -> float:
    """Connect to *address* (TLS name: CertName, else HostName), then time the request; milliseconds.

    Raises :class:`ProbeFailed` for a status above 299 or an answer that is not HTTP, and the
    ``ssl``/``OSError`` exceptions of the connection (see :func:`describe_error`).
    """
    port = node.effective_derp_port
    pin = pinned_sha256(node.cert_name)
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await asyncio.open_connection(
            address, port, ssl=ctx, server_hostname=server_name(node.tls_name, node.cert_name) or ""
        )
        if pin is not None:
            _check_pin(writer, pin)
        host_header = (
            join_host_port(node.host_name, port)
            if port != 443
            else (f"[{node.host_name}]" if ":" in node.host_name else node.host_name)
        )
        request = (
            f"GET {LATENCY_CHECK_PATH} HTTP/1.1\r\nHost: {host_header}\r\n"
            "User-Agent: derptool\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        ).encode()
        started = time.perf_counter()
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 0.2)
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProbeFailed(f"not an HTTP answer: {status_line[:60]!r}")
    if int(parts[1]) > 299:
        raise ProbeFailed(f"HTTP status {status_line.split(' ', 1)[1]}")
    return elapsed


def describe_error(err: Exception) -> str:
    """A one-line reason for an exception raised by :func:`latency_check`."""
    import ssl

    if isinstance(err, ProbeFailed):
        return str(err)
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"TLS verification failed: {err.verify_message}"
    if isinstance(err, ssl.SSLError | asyncio.IncompleteReadError | asyncio.LimitOverrunError):
        return f"{type(err).__name__}: {err}"
    if isinstance(err, OSError):
        return describe_os_error(err)
    return f"{type(err).__name__}: {err}"


def _check_pin(writer: asyncio.StreamWriter, pin: str) -> None:
    import hashlib

    sslobj = writer.get_extra_info("ssl_object")
    der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
    if der is None or hashlib.sha256(der).hexdigest() != pin:
        raise ProbeFailed("TLS certificate does not match the sha256-raw pin in CertName")
