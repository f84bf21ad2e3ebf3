"""The I/O side of ``derptool nat``: pick STUN servers from a DERP map and probe them from one socket.

For each address family one UDP socket (the shared :class:`derptool.net.stunclient.StunSocket`, bound to an
ephemeral port) sends a binding request to every chosen server, repeating it until it answers or the time
is up. Using the *same* socket for every server is what makes the answers comparable: a NAT that hands out
one public ``ip:port`` for all of them is endpoint-independent. A closed port fails at once (ICMP), and an
answer from another address or port than the server probed is ignored. :func:`run` returns the pure
:class:`derptool.net.nat.NatReport`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from derptool.derpmap import DERPMap, DERPNode, is_ip
from derptool.errors import InputError, NetworkError, ProbeFailed, ResolveError, StunTimeout
from derptool.net import dial, nat
from derptool.net.stunclient import BlockingStunClient, StunAnswer, route_source

DEFAULT_TIMEOUT = 3.0
RETRANSMIT_INTERVAL = 0.4
MAX_ADDRESSES_PER_FAMILY = 4
MAX_TARGETS_PER_FAMILY = 8

Resolver = Callable[[str, int], list[str]]


@dataclass(frozen=True)
class Target:
    """One STUN server to probe."""

    node: str
    region_id: int
    server: nat.Endpoint


def resolve_host(host: str, family: int) -> list[str]:
    """Addresses of *host* for *family* (4 or 6); empty when it does not resolve."""
    try:
        return dial.resolve_sync(host, family=family, timeout=DEFAULT_TIMEOUT)
    except ResolveError:
        return []


def _node_address(node: DERPNode, family: int, resolver: Resolver) -> str | None:
    """Where to send STUN to *node* over *family*, as tailscale does (STUNTestIP, IPv4/IPv6, HostName)."""
    host = node.stun_host(4 if family == 4 else 6)
    if host is None or is_ip(host):
        return host
    found = resolver(host, family)
    return found[0] if found else None


def plan_targets(dmap: DERPMap, region_ids: Iterable[int] | None = None, *,
                 families: Iterable[int] = (4, 6), resolver: Resolver = resolve_host,
                 max_addresses: int = MAX_ADDRESSES_PER_FAMILY) -> list[Target]:
    """Choose the STUN servers to probe: per family, up to *max_addresses* distinct addresses.

    Nodes are taken one per region first (regions in the order given, else by ID), then the remaining
    nodes. A node on an address already chosen but with another STUN port is always taken too: such a
    pair tells an address-dependent mapping from an address-and-port-dependent one. Host names are
    resolved only when a node is reached and its map entry gives no address.
    """
    ids = list(region_ids) if region_ids is not None else sorted(dmap.regions)
    regions = [r for i in ids if (r := dmap.regions.get(i)) is not None]
    nodes_in_order: list[DERPNode] = []
    for rank in range(max((len(r.nodes) for r in regions), default=0)):
        for region in regions:
            if rank < len(region.nodes):
                nodes_in_order.append(region.nodes[rank])
    targets: list[Target] = []
    for family in families:
        chosen: list[Target] = []
        ips: set[str] = set()
        cache: dict[str, str | None] = {}
        for node in nodes_in_order:
            port = node.effective_stun_port
            if port is None:
                continue
            if node.name not in cache:
                cache[node.name] = _node_address(node, family, resolver)
            ip = cache[node.name]
            if ip is None:
                continue
            ep = nat.Endpoint(ip, port)
            if any(t.server == ep for t in chosen):
                continue
            if ip in ips or len(ips) < max_addresses:
                chosen.append(Target(node.name, node.region_id, ep))
                ips.add(ip)
            if len(chosen) >= MAX_TARGETS_PER_FAMILY:
                break
        targets.extend(chosen)
    return targets


def probe(targets: list[Target], timeout: float = DEFAULT_TIMEOUT) -> tuple[list[nat.Observation],
                                                                            list[nat.Endpoint]]:
    """Send STUN binding requests to *targets*, one socket per family; gather answers until *timeout*.

    Returns the observations (in target order) and the local endpoints of the sockets used.
    """
    observations, locals_, _note = _exchange(targets, timeout)
    return observations, locals_


def _exchange(targets: list[Target], timeout: float) -> tuple[list[nat.Observation], list[nat.Endpoint], str | None]:
    with BlockingStunClient() as client:
        locals_: dict[int, nat.Endpoint | None] = {}
        for family in (4, 6):
            fam_targets = [t for t in targets if t.server.family == family]
            if not fam_targets:
                continue
            try:
                port = client.socket(family).local_port
            except OSError:  # no such address family on this machine
                continue
            ip = next((ip for t in fam_targets if (ip := route_source(family, t.server.ip, t.server.port))), None)
            locals_[family] = nat.Endpoint(ip, port) if ip else None
        usable = [t for t in targets if t.server.family in locals_]
        results = client.query([(t.server.ip, t.server.port) for t in usable], timeout=timeout,
                               retransmit=RETRANSMIT_INTERVAL)
        note = client.stats.note()
    outcome = {id(t): r for t, r in zip(usable, results, strict=True)}
    observations = []
    for t in targets:
        if t.server.family not in locals_:
            observations.append(nat.Observation(t.server, None, None, t.node, "no socket for this family"))
            continue
        local = locals_[t.server.family]
        got = outcome[id(t)]
        if isinstance(got, StunAnswer):
            observations.append(nat.Observation(t.server, _mapped(got), local, t.node, None))
        else:
            observations.append(nat.Observation(t.server, None, local, t.node, _error(got)))
    return observations, [lo for lo in locals_.values() if lo is not None], note


def _mapped(answer: StunAnswer) -> nat.Endpoint:
    ip = str(ipaddress.ip_address(answer.response.ip))
    if ip.startswith("::ffff:"):
        ip = str(ipaddress.IPv6Address(ip).ipv4_mapped)
    return nat.Endpoint(ip, answer.response.port)


def _error(err: ProbeFailed) -> str:
    return "no answer" if isinstance(err, StunTimeout) else str(err)


def run(dmap: DERPMap, region_ids: Iterable[int] | None = None, *,
        timeout: float = DEFAULT_TIMEOUT, families: Iterable[int] = (4, 6)) -> nat.NatReport:
    """Plan, probe and classify: the whole of ``derptool nat`` as a library call.

    Raises :class:`InputError` for bad input, :class:`NetworkError` when nothing can be probed; notices
    (ignored STUN packets) are in ``NatReport.notes``.
    """
    if timeout <= 0:
        raise InputError("the timeout must be a positive number of seconds")
    ids = list(region_ids) if region_ids is not None else sorted(dmap.regions)
    regions = [r for i in ids if (r := dmap.regions.get(i)) is not None]
    if not any(n.effective_stun_port is not None for r in regions for n in r.nodes):
        raise InputError("the selected regions have no STUN server (every node has STUNPort -1, or no nodes)")
    resolved: list[str] = []

    def resolver(host: str, family: int) -> list[str]:
        resolved.append(host)
        return resolve_host(host, family)

    targets = plan_targets(dmap, ids, families=families, resolver=resolver)
    if not targets and not resolved:
        raise InputError("no STUN server of the selected regions has an address for the families probed "
                         "(IPv4 and IPv6 are \"none\")")
    if not targets:
        raise NetworkError("no STUN server of the selected regions has an address to probe "
                           "(no IP address in the map, and the host names do not resolve)")
    observations, locals_, note = _exchange(targets, timeout)
    report = nat.summarize(observations, locals_)
    return dataclasses.replace(report, notes=(note,)) if note else report
