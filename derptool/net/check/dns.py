"""The ``dns`` step: the host name resolves; the address each family (IPv4, IPv6) is checked at.

A family is checked where the node has an address for it: the map's ``IPv4``/``IPv6`` when set, none when
it is ``"none"``, else the first address of that family the host name resolves to (an IP literal as the
host name stands for its own family). The step is recorded once per family, with the same outcome.
"""

from __future__ import annotations

from derptool.derpmap import is_ip
from derptool.errors import ResolveError
from derptool.net.check.report import NodeTarget, Status
from derptool.net.dial import resolve_sync


def _family(address: str) -> int:
    return 6 if ":" in address else 4


def check_dns(t: NodeTarget, timeout: float) -> tuple[Status, str, list[str], dict[int, str]]:
    """Resolve the node's host name: (status, detail, addresses found, {family: address to check})."""
    given = {fam: a for fam, a in ((4, t.ipv4), (6, t.ipv6)) if a and a != "none"}
    off = {fam for fam, a in ((4, t.ipv4), (6, t.ipv6)) if a == "none"}
    if is_ip(t.host):
        chosen = {_family(t.host): t.host, **given}
        return "skip", f"{t.host} is an IP address", [t.host], {f: a for f, a in sorted(chosen.items()) if f not in off}
    try:
        found = resolve_sync(t.host, timeout=timeout)
    except ResolveError as err:
        if given:
            shown = ", ".join(given[f] for f in sorted(given))
            return "skip", f"{t.host} does not resolve ({err.reason}); using the map's address {shown}", [], given
        return "fail", f"{t.host} does not resolve: {err.reason}", [], {}
    chosen = {}
    for fam in (4, 6):
        if fam in off:
            continue
        if fam in given:
            chosen[fam] = given[fam]
        else:
            first = next((a for a in found if _family(a) == fam), None)
            if first is not None:
                chosen[fam] = first
    detail = f"{t.host} resolves to {', '.join(found)}"
    if off:
        detail += "; " + ", ".join(f"IPv{f}" for f in sorted(off)) + " disabled by the map"
    return "pass", detail, found, chosen
