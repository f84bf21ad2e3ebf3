"""The ``dns`` step: the host name resolves (the map's ``IPv4``/``IPv6`` stand in when it does not)."""

from __future__ import annotations

from derptool.derpmap import is_ip
from derptool.errors import ResolveError
from derptool.net.check.report import NodeCheck, NodeTarget
from derptool.net.dial import resolve_sync


def check_dns(t: NodeTarget, result: NodeCheck, timeout: float) -> str | None:
    """Resolve the node's host name and record the step; return the address later steps connect to."""
    given = [a for a in (t.ipv4, t.ipv6) if a and a != "none"]
    if is_ip(t.host):
        result.add("dns", "skip", f"{t.host} is an IP address", addresses=[t.host])
        return given[0] if given else t.host
    try:
        found = resolve_sync(t.host, timeout=timeout)
    except ResolveError as err:
        if given:
            result.add("dns", "skip", f"{t.host} does not resolve ({err.reason}); using the map's "
                       f"address {given[0]}", addresses=[])
            return given[0]
        result.add("dns", "fail", f"{t.host} does not resolve: {err.reason}", addresses=[])
        return None
    usable = [a for a in found if not (t.ipv4 == "none" and "." in a) and not (t.ipv6 == "none" and ":" in a)]
    result.add("dns", "pass", f"{t.host} resolves to {', '.join(found)}", addresses=found)
    if given:
        return given[0]
    return usable[0] if usable else None
