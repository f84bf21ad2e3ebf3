"""Running the steps of a check, node after node; a failed step skips the steps that need it."""

from __future__ import annotations

import datetime as dt

from derptool.errors import InputError
from derptool.net.check.derp import check_derp
from derptool.net.check.dns import check_dns
from derptool.net.check.https import check_http
from derptool.net.check.report import CheckReport, NodeCheck, NodeTarget
from derptool.net.check.stun import check_stun
from derptool.net.check.tls import check_tls
from derptool.net.dial import tls_context
from derptool.net.stunclient import StunStats

DEFAULT_TIMEOUT = 5.0
_AFTER_CONNECT = ("tls", "cert_name", "cert_expiry", "latency_check", "generate_204", "derp")
_AFTER_TLS = ("latency_check", "generate_204", "derp")


def run(target: str, targets: list[NodeTarget], *, timeout: float = DEFAULT_TIMEOUT,
        ca_file: str | None = None, insecure: bool = False) -> CheckReport:
    """Check every node of *targets*; *target* is only the label shown for the whole report.

    Raises :class:`InputError` for a timeout that is not positive or a CA file that cannot be used; every
    failed step is recorded in the report. Notices (ignored STUN packets) are in ``CheckReport.notes``.
    """
    if timeout <= 0:
        raise InputError("the timeout must be a positive number of seconds")
    if ca_file is not None:
        tls_context(ca_file=ca_file)  # raises InputError for a file that is not a usable CA
    stats = StunStats()
    nodes = [check_node(t, timeout=timeout, ca_file=ca_file, insecure=insecure, stun_stats=stats) for t in targets]
    note = stats.note()
    return CheckReport(target, nodes, [note] if note else [])


def check_node(t: NodeTarget, *, timeout: float = DEFAULT_TIMEOUT, ca_file: str | None = None,
               insecure: bool = False, now: dt.datetime | None = None,
               stun_stats: StunStats | None = None) -> NodeCheck:
    """Run every check against one node."""
    result = NodeCheck(t)
    address = check_dns(t, result, timeout)
    result.address = address
    check_stun(t, address, result, timeout, stun_stats)
    if t.stun_only:
        result.skip(_AFTER_CONNECT, "STUN-only node: no DERP server expected")
        return result
    if address is None:
        result.skip(_AFTER_CONNECT, "no address to connect to")
        return result
    tls = check_tls(t, address, result, timeout, ca_file, insecure or t.insecure, now)
    if tls is None:
        result.skip(_AFTER_TLS, "no TLS connection")
        return result
    check_http(t, address, tls, result, timeout)
    check_derp(t, address, tls, result, timeout)
    return result
