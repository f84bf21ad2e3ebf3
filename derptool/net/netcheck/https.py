"""The HTTPS probe: ``GET /derp/latency-check`` timed on an already established TLS connection."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time

from derptool.derpmap import DERPNode
from derptool.errors import ProbeFailed
from derptool.net import latencycheck
from derptool.net.dial import pinned_sha256, server_name


def needs_verification(node: DERPNode) -> bool:
    """False for InsecureForTests nodes and for nodes pinned by a ``sha256-raw:`` CertName."""
    return not (node.insecure_for_tests or pinned_sha256(node.cert_name) is not None)


async def latency_check(node: DERPNode, address: str, ctx: ssl.SSLContext) -> float:
    """Connect to *address* (TLS name: CertName, else HostName), then time the request; milliseconds.

    Raises :class:`ProbeFailed` for a status above 299 or an answer that is not HTTP, and the
    ``ssl``/``OSError`` exceptions of the connection (:func:`~derptool.net.describe.describe_error`
    says why in one line).
    """
    port = node.effective_derp_port
    pin = pinned_sha256(node.cert_name)
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await asyncio.open_connection(
            address,
            port,
            ssl=ctx,
            server_hostname=server_name(node.tls_name, node.cert_name) or "",
            limit=latencycheck.MAX_HEADER_BYTES,
        )
        if pin is not None:
            _check_pin(writer, pin)
        started = time.perf_counter()
        writer.write(latencycheck.request(node.host_name, port))
        await writer.drain()
        head = await _read_head(reader)
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 0.2)
    latencycheck.require_success(head)
    return elapsed


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """The answer's header, or :class:`ProbeFailed` saying how it fell short."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as err:
        raise ProbeFailed(f"connection closed after {len(err.partial)} bytes, before the end of the header") from None
    except asyncio.LimitOverrunError:
        raise ProbeFailed(f"no end of the header in the first {latencycheck.MAX_HEADER_BYTES} bytes") from None


def _check_pin(writer: asyncio.StreamWriter, pin: str) -> None:
    sslobj = writer.get_extra_info("ssl_object")
    der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
    import hashlib  # lazy: only a pinned certificate needs it

    if der is None or hashlib.sha256(der).hexdigest() != pin:
        raise ProbeFailed("TLS certificate does not match the sha256-raw pin in CertName")
