"""Reaching a server: the one DNS lookup (with a deadline), the one TLS client context, ``[ip]:port``.

Every part of :mod:`derptool.net` that turns a host name into addresses, builds a TLS context or writes
an address with its port goes through here, so they all agree: ``.invalid`` names never reach a resolver
(RFC 6761), IPv4 addresses come before IPv6 ones, a ``sha256-raw:`` CertName pins the certificate instead
of naming it, and IPv6 addresses are bracketed before their port.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Sequence
from typing import Any

from derptool.derpmap import is_ip
from derptool.errors import InputError, ResolveError

PIN_PREFIX = "sha256-raw:"
"""A CertName with this prefix pins the certificate's SHA-256 (hex) instead of naming it."""

_INVALID_REASON = ".invalid names never resolve (RFC 6761)"


# -- [ip]:port ---------------------------------------------------------------------------------------


def join_host_port(host: str, port: int) -> str:
    """``host:port``, or ``[host]:port`` for an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address as (host, port or None).

    Raises ``ValueError`` (with a message naming the expected form) when a port is there but malformed.
    """
    if text.startswith("["):
        inside, _, rest = text[1:].partition("]")
        if not rest:
            return inside, None
        if not rest.startswith(":") or not rest[1:].isdigit():
            raise ValueError("expected [ipv6]:port")
        return inside, int(rest[1:])
    if text.count(":") != 1:
        return text, None  # a name, or an IPv6 address without brackets (and so without a port)
    host, _, port = text.partition(":")
    if not port.isdigit():
        raise ValueError("the port must be a number")
    return host, int(port)


# -- DNS ---------------------------------------------------------------------------------------------


def _family_label(family: int) -> str:
    return f" (IPv{family})" if family in (4, 6) else ""


def _precheck(host: str, family: int) -> list[str] | None:
    """The answer without asking a resolver (an IP literal), or None; raises for ``.invalid`` names."""
    if is_ip(host):
        return [host.split("%", 1)[0]]
    name = host.rstrip(".").lower()
    if name == "invalid" or name.endswith(".invalid"):
        raise ResolveError(host, _INVALID_REASON)
    return None


def _addresses(host: str, family: int, infos: Sequence[tuple[Any, ...]]) -> list[str]:
    found: list[str] = []
    for af in (socket.AF_INET, socket.AF_INET6):
        for info in infos:
            ip = str(info[4][0]).split("%", 1)[0]
            if info[0] == af and ip not in found:
                found.append(ip)
    if not found:
        raise ResolveError(f"{host}{_family_label(family)}", "no address")
    return found


def _af(family: int) -> int:
    return {4: socket.AF_INET, 6: socket.AF_INET6}.get(family, socket.AF_UNSPEC)


def _reason(err: BaseException) -> str:
    return (getattr(err, "strerror", None) or str(err)) if isinstance(err, OSError) else str(err)


async def resolve(host: str, *, family: int = 0, timeout: float | None = None) -> list[str]:
    """The addresses of *host* (IPv4 first; only *family* 4 or 6 when given); an IP literal as is.

    Raises :class:`~derptool.errors.ResolveError` when the name does not resolve, or not within *timeout*.
    """
    known = _precheck(host, family)
    if known is not None:
        return known
    loop = asyncio.get_running_loop()
    label = f"{host}{_family_label(family)}"
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, family=_af(family), type=socket.SOCK_STREAM), timeout
        )
    except TimeoutError:
        raise ResolveError(label, f"no answer within {timeout:g} s") from None
    except (OSError, UnicodeError) as err:
        raise ResolveError(label, _reason(err)) from None
    return _addresses(host, family, infos)


def resolve_sync(host: str, *, family: int = 0, timeout: float | None = None) -> list[str]:
    """:func:`resolve` for callers without an event loop (the lookup runs in a helper thread)."""
    known = _precheck(host, family)
    if known is not None:
        return known
    label = f"{host}{_family_label(family)}"
    box: list[Any] = []

    def lookup() -> None:
        try:
            box.append(socket.getaddrinfo(host, None, _af(family), socket.SOCK_STREAM))
        except (OSError, UnicodeError) as err:
            box.append(err)

    if timeout is None:
        lookup()
    else:
        # a daemon thread: a resolver that hangs past the deadline never keeps the process alive
        worker = threading.Thread(target=lookup, name="derptool-dns", daemon=True)
        worker.start()
        worker.join(timeout)
        if not box:
            raise ResolveError(label, f"no answer within {timeout:g} s")
    got = box[0]
    if isinstance(got, BaseException):
        raise ResolveError(label, _reason(got))
    return _addresses(host, family, got)


# -- TLS ---------------------------------------------------------------------------------------------


def pinned_sha256(cert_name: str) -> str | None:
    """The pinned SHA-256 (lower-case hex) of a ``sha256-raw:`` CertName, else None."""
    return cert_name[len(PIN_PREFIX) :].lower() if cert_name.startswith(PIN_PREFIX) else None


def server_name(tls_name: str, cert_name: str = "") -> str | None:
    """The TLS server name (SNI, and the name verified) for a node: none when its certificate is pinned."""
    return None if pinned_sha256(cert_name) is not None else tls_name


MAX_CA_FILE_BYTES = 4 * 1024 * 1024
"""Largest CA file read (a system bundle is about 200 KB)."""


def tls_context(*, verify: bool = True, ca_file: str | None = None, check_hostname: bool = True) -> ssl.SSLContext:
    """A TLS client context: the system CAs plus *ca_file*, or (``verify=False``) no verification at all.

    ``check_hostname=False`` verifies the chain but leaves the name to the caller (``check`` reports it on
    its own). Raises :class:`~derptool.errors.InputError` when *ca_file* cannot be used.
    """
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if ca_file:
        from derptool.fileio import read_file

        pem = read_file(ca_file, limit=MAX_CA_FILE_BYTES, raw=True).data
        try:
            ctx.load_verify_locations(cadata=pem.decode("ascii"))
        except (UnicodeError, ValueError, ssl.SSLError) as err:
            why = "not ASCII PEM text" if isinstance(err, UnicodeError) else getattr(err, "reason", None) or err
            raise InputError(f"cannot use CA file {ca_file}: {why}") from None
    ctx.check_hostname = check_hostname
    return ctx
