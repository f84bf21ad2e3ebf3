"""Running the steps of a check, node after node and family after family; a failed step skips the steps
that need it.

Time: every step ends by one deadline (``timeout`` seconds from its start), however the server answers
(a server that drips one byte at a time cannot stretch it), and a node's steps together end by its own
deadline of :data:`NODE_BUDGET` timeouts per address family; steps left when it passes are skipped.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Iterable

from derptool.errors import InputError
from derptool.net.check.derp import check_derp, check_relay, endpoint
from derptool.net.check.dns import check_dns
from derptool.net.check.https import check_http
from derptool.net.check.report import CheckReport, NodeCheck, NodeTarget
from derptool.net.check.stun import check_stun
from derptool.net.check.tls import DEFAULT_WARN_DAYS, TlsSession, check_tls
from derptool.net.derp.conn import Deadline
from derptool.net.derp.relay import RelayResult, relay_probe
from derptool.net.dial import tls_context
from derptool.net.stunclient import StunStats

DEFAULT_TIMEOUT = 5.0
NODE_BUDGET = 4
"""A node's steps over one address family end within this many timeouts."""
_AFTER_CONNECT = ("tls", "cert_name", "cert_expiry", "latency_check", "generate_204", "derp")
_AFTER_TLS = ("latency_check", "generate_204", "derp")


def run(
    target: str,
    targets: list[NodeTarget],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    ca_file: str | None = None,
    insecure: bool = False,
    warn_days: float = DEFAULT_WARN_DAYS,
    relay: bool = False,
    mesh_key: str | None = None,
    now: dt.datetime | None = None,
) -> CheckReport:
    """Check every node of *targets* over each address family it has; *target* labels the whole report.

    *relay* adds the ``relay`` step (packets between two clients through each node) and, for a region with
    several nodes, a mesh probe between each pair of them (:attr:`CheckReport.mesh`). *mesh_key* (64 hex
    digits, derper's ``--mesh-psk-file``) lets the probes past a server that verifies clients.

    Raises :class:`InputError` for a timeout that is not positive or a CA file that cannot be used; every
    failed step is recorded in the report. Notices (ignored STUN packets) are in ``CheckReport.notes``.
    """
    if timeout <= 0:
        raise InputError("the timeout must be a positive number of seconds")
    if warn_days < 0:
        raise InputError("--warn-days must not be negative")
    if ca_file is not None:
        tls_context(ca_file=ca_file)  # raises InputError for a file that is not a usable CA
    started, clock = time.time(), time.monotonic()
    stats = StunStats()
    nodes: list[NodeCheck] = []
    sessions: dict[int, tuple[str, TlsSession]] = {}
    for t in targets:
        for result, session in check_node_families(
            t,
            timeout=timeout,
            ca_file=ca_file,
            insecure=insecure,
            now=now,
            stun_stats=stats,
            warn_days=warn_days,
            relay=relay,
            mesh_key=mesh_key,
        ):
            nodes.append(result)
            derp = result.get("derp")
            admitted = derp is not None and derp.status == "pass" and not derp.data.get("verify_clients")
            if session is not None and admitted and id(t) not in sessions:
                sessions[id(t)] = (result.address or "", session)
    _note_load_balancers(nodes)
    mesh = _mesh_probes(targets, sessions, timeout, mesh_key) if relay else []
    note = stats.note()
    return CheckReport(target, nodes, [note] if note else [], mesh, started, time.monotonic() - clock)


def check_node(
    t: NodeTarget,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    ca_file: str | None = None,
    insecure: bool = False,
    now: dt.datetime | None = None,
    stun_stats: StunStats | None = None,
    warn_days: float = DEFAULT_WARN_DAYS,
) -> NodeCheck:
    """Run every check against one node over its first address family (IPv4 when it has one)."""
    return check_node_families(
        t, timeout=timeout, ca_file=ca_file, insecure=insecure, now=now, stun_stats=stun_stats, warn_days=warn_days
    )[0][0]


def check_node_families(
    t: NodeTarget,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    ca_file: str | None = None,
    insecure: bool = False,
    now: dt.datetime | None = None,
    stun_stats: StunStats | None = None,
    warn_days: float = DEFAULT_WARN_DAYS,
    relay: bool = False,
    mesh_key: str | None = None,
) -> list[tuple[NodeCheck, TlsSession | None]]:
    """Every check against one node, once per address family; each with the TLS session it got, if any."""
    dns_status, dns_detail, found, chosen = check_dns(t, timeout)
    if not chosen:
        result = NodeCheck(t)
        result.add("dns", dns_status, dns_detail, addresses=found)
        result.skip(("stun", *_AFTER_CONNECT), "no address to connect to")
        return [(result, None)]
    out = []
    for family, address in chosen.items():
        result = NodeCheck(t, address=address, family=family)
        result.add("dns", dns_status, dns_detail, addresses=found)
        session = _check_address(
            t,
            address,
            result,
            timeout=timeout,
            ca_file=ca_file,
            insecure=insecure,
            now=now,
            stun_stats=stun_stats,
            warn_days=warn_days,
            relay=relay,
            mesh_key=mesh_key,
        )
        out.append((result, session))
    return out


def _check_address(
    t: NodeTarget,
    address: str,
    result: NodeCheck,
    *,
    timeout: float,
    ca_file: str | None,
    insecure: bool,
    now: dt.datetime | None,
    stun_stats: StunStats | None,
    warn_days: float,
    relay: bool,
    mesh_key: str | None,
) -> TlsSession | None:
    node_deadline = Deadline(timeout * NODE_BUDGET)
    stun_address = address if not t.stun_test_ip or (":" in t.stun_test_ip) == (":" in address) else None
    check_stun(t, stun_address or t.stun_test_ip, result, timeout, stun_stats)
    if t.stun_only:
        result.skip(_AFTER_CONNECT, "STUN-only node: no DERP server expected")
        return None
    tls = check_tls(t, address, result, node_deadline.within(timeout), ca_file, insecure or t.insecure, now, warn_days)
    if tls is None:
        result.skip(_AFTER_TLS + (("relay",) if relay else ()), "no TLS connection")
        return None
    check_http(t, address, tls, result, timeout, node_deadline)
    if node_deadline.expired:
        result.skip(("derp",) + (("relay",) if relay else ()), _budget_spent(node_deadline))
        return tls
    admitted = check_derp(t, address, tls, result, node_deadline.within(timeout), mesh_key)
    if not relay:
        return tls
    if not admitted:
        why = (
            "the server verifies clients (see derp)"
            if result.get("derp") and result.passed("derp")
            else "no DERP handshake"
        )
        result.skip(("relay",), why)
    elif node_deadline.expired:
        result.skip(("relay",), _budget_spent(node_deadline))
    else:
        check_relay(t, address, tls, result, min(timeout, node_deadline.left()), mesh_key)
    return tls


def _budget_spent(deadline: Deadline) -> str:
    return f"the node's {deadline.seconds:g} s ({NODE_BUDGET} timeouts) were spent on earlier steps"


def _note_load_balancers(nodes: list[NodeCheck]) -> None:
    """Different server keys for one node over IPv4 and IPv6: a load balancer (or two servers) per name."""
    by_target: dict[int, list[NodeCheck]] = {}
    for n in nodes:
        by_target.setdefault(id(n.target), []).append(n)
    for group in by_target.values():
        keys = sorted({n.public_key for n in group if n.public_key})
        if len(keys) > 1:
            shown = ", ".join(f"IPv{n.family} {n.public_key}" for n in group if n.public_key)
            for n in group:
                n.add(
                    "server_key",
                    "fail",
                    f"{len(keys)} server keys behind {n.target.host} ({shown}): a load "
                    "balancer or different servers per address family; clients on different servers reach each "
                    "other only if they mesh; list each server as its own node",
                    public_keys=keys,
                    load_balancer=True,
                )


def _mesh_probes(
    targets: Iterable[NodeTarget], sessions: dict[int, tuple[str, TlsSession]], timeout: float, mesh_key: str | None
) -> list[RelayResult]:
    """A relay probe between each pair of nodes of a region that both completed TLS."""
    regions: dict[int, list[NodeTarget]] = {}
    for t in targets:
        if t.region_id is not None and id(t) in sessions and not t.stun_only:
            regions.setdefault(t.region_id, []).append(t)
    out = []
    for members in regions.values():
        for a, b in itertools.combinations(members, 2):
            addr_a, tls_a = sessions[id(a)]
            addr_b, tls_b = sessions[id(b)]
            result = relay_probe(
                endpoint(a, addr_a, tls_a), endpoint(b, addr_b, tls_b), timeout=timeout, mesh_key=mesh_key
            )
            result.node_a = a.node or result.node_a
            result.node_b = b.node or result.node_b
            out.append(result)
    return out
