"""The ``tls``, ``cert_name`` and ``cert_expiry`` steps: the handshake on the DERP port and the certificate.

The chain is verified against the system CAs plus an optional CA file (not for ``InsecureForTests`` nodes
or ``insecure=True``); a ``CertName`` of ``sha256-raw:<hex>`` pins the certificate's SHA-256 instead, as
tailscale does. Names are checked on their own, so the report can say which names the certificate has.
A certificate that expires within ``warn_days`` days fails ``cert_expiry`` (renewal is overdue). The
connect and every handshake of the step end by one deadline.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import ssl
import time
from dataclasses import dataclass

from derptool.net.check.report import NodeCheck, NodeTarget, Status
from derptool.net.check.x509 import CertInfo, cert_info, name_matches
from derptool.net.derp.conn import Deadline, tls_connect
from derptool.net.dial import join_host_port, pinned_sha256, server_name, tls_context

DEFAULT_WARN_DAYS = 14
"""A certificate expiring sooner than this fails ``cert_expiry``."""


@dataclass(frozen=True)
class TlsSession:
    """How later steps connect: the context to use, and whether the chain was trusted."""

    context: ssl.SSLContext
    verified: bool


def handshake(t: NodeTarget, address: str, ctx: ssl.SSLContext, deadline: Deadline) -> ssl.SSLSocket:
    """A TLS connection to the node's DERP port on *address*, made by *deadline* (the caller closes it)."""
    return tls_connect(
        address, t.derp_port, context=ctx, server_name=server_name(t.tls_name, t.cert_name), deadline=deadline
    )


def _skip_cert(result: NodeCheck, why: str) -> None:
    result.skip(("cert_name", "cert_expiry"), why)


def check_tls(
    t: NodeTarget,
    address: str,
    result: NodeCheck,
    deadline: Deadline,
    ca_file: str | None,
    insecure: bool,
    now: dt.datetime | None,
    warn_days: float = DEFAULT_WARN_DAYS,
) -> TlsSession | None:
    """Record the ``tls``, ``cert_name`` and ``cert_expiry`` steps; the session for later steps, if any."""
    where = join_host_port(address, t.derp_port)
    pin = pinned_sha256(t.cert_name)
    verify = tls_context(ca_file=ca_file, check_hostname=False)
    loose = tls_context(verify=False)
    chain_error: str | None = None
    verified = False
    started = time.monotonic()
    try:
        if insecure or pin:
            sock = handshake(t, address, loose, deadline)
        else:
            try:
                sock = handshake(t, address, verify, deadline)
                verified = True
            except ssl.SSLCertVerificationError as err:
                chain_error = err.verify_message or str(err)
                started = time.monotonic()
                sock = handshake(t, address, loose, deadline)
    except TimeoutError:
        result.add("tls", "fail", f"no TLS connection with {where} within {deadline.seconds:g} s")
        _skip_cert(result, "no TLS connection")
        return None
    except ssl.SSLError as err:
        result.add("tls", "fail", f"TLS handshake with {where} failed: {err.reason or err}")
        _skip_cert(result, "no TLS handshake")
        return None
    except OSError as err:
        result.add("tls", "fail", f"cannot connect to {where}: {err.strerror or err}")
        _skip_cert(result, "no TLS connection")
        return None
    handshake_s = time.monotonic() - started
    with sock:
        der = sock.getpeercert(binary_form=True) or b""
        version = sock.version() or "TLS"
    digest = hashlib.sha256(der).hexdigest()
    timing = {"sha256": digest, "handshake_ms": round(handshake_s * 1000, 3)}
    if pin:
        verified = digest == pin
        if verified:
            result.add("tls", "pass", f"{version} with {where}; certificate matches the sha256-raw pin", **timing)
        else:
            result.add("tls", "fail", f"certificate SHA-256 {digest} does not match the CertName pin {pin}", **timing)
    elif chain_error:
        result.add(
            "tls", "fail", f"{version} with {where}, but the certificate is not trusted: {chain_error}", **timing
        )
    elif verified:
        result.add("tls", "pass", f"{version} with {where}; certificate chain trusted", **timing)
    else:
        why = "InsecureForTests" if t.insecure else "--insecure"
        result.add("tls", "pass", f"{version} with {where}; chain not verified ({why})", **timing)

    try:
        info = cert_info(der)
    except ValueError as err:
        _skip_cert(result, f"cannot read the certificate: {err}")
    else:
        lenient = insecure and not pin
        _check_name(t, info, result, pin is not None, lenient)
        _check_expiry(info, result, now or dt.datetime.now(dt.UTC), lenient, warn_days)
    # Later requests go over a context that trusts what a client would trust (or nothing, if insecure).
    # (A pinned certificate was checked above; later connections need not verify a chain it lacks.)
    trusted = verified and chain_error is None
    return TlsSession(verify if trusted and not pin else loose, trusted)


def _check_name(t: NodeTarget, info: CertInfo, result: NodeCheck, pinned: bool, lenient: bool) -> None:
    names = [*info.dns_names, *info.ip_addresses]
    shown = ", ".join(names) or "none"
    if pinned:
        result.add("cert_name", "skip", f"certificate pinned by SHA-256; names: {shown}", names=names)
        return
    if name_matches(t.tls_name, info):
        result.add("cert_name", "pass", f"covers {t.tls_name} (names: {shown})", names=names)
        return
    status: Status = "skip" if lenient else "fail"
    extra = " (not required: verification is off)" if lenient else ""
    source = "CertName" if t.cert_name else "host name"
    result.add("cert_name", status, f"does not cover the {source} {t.tls_name}{extra}; names: {shown}", names=names)


def _check_expiry(info: CertInfo, result: NodeCheck, now: dt.datetime, lenient: bool, warn_days: float) -> None:
    seconds = (info.not_after - now).total_seconds()
    days = seconds / 86400
    data = {"not_after": info.not_after.isoformat(), "days_left": math.floor(days), "expires_in_s": round(seconds, 3)}
    bad: Status = "skip" if lenient else "fail"
    if now < info.not_before:
        result.add("cert_expiry", bad, f"not valid before {info.not_before:%Y-%m-%d %H:%M} UTC", **data)
    elif days < 0:
        result.add("cert_expiry", bad, f"expired {-days:.0f} days ago ({info.not_after:%Y-%m-%d})", **data)
    elif days < warn_days:
        left = f"{days:.1f} days" if days >= 1 else f"{seconds / 3600:.1f} hours"
        result.add(
            "cert_expiry",
            bad,
            f"expires in {left} ({info.not_after:%Y-%m-%d %H:%M} UTC), sooner than "
            f"--warn-days {warn_days:g}: renew it now (clients reject it once expired)",
            **data,
        )
    else:
        result.add("cert_expiry", "pass", f"expires in {days:.0f} days ({info.not_after:%Y-%m-%d})", **data)
