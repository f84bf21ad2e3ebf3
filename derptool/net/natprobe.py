"""The I/O side of ``derptool nat``: pick STUN servers from a DERP map and probe them from one socket.

For each address family one UDP socket (the shared :class:`derptool.net.stunclient.StunSocket`, bound to an
ephemeral port) sends a binding request to every chosen server, repeating it until it answers or the time
is up. Using the *same* socket for every server is what makes the answers comparable: a NAT that hands out
one public ``ip:port`` for all of them is endpoint-independent. A closed port fails at once (ICMP), and an
answer from another address or port than the server probed is ignored. :func:`run` returns the pure
:class:`derptool.net.nat.NatReport`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from derptool.derpmap import DERPMap, DERPNode, is_ip
from derptool.errors import InputError, NetworkError, ProbeFailed, ResolveError, StunTimeout
from derptool.net import captive, dial, nat, portmap
from derptool.net.describe import describe_error
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


def plan_targets(
    dmap: DERPMap,
    region_ids: Iterable[int] | None = None,
    *,
    families: Iterable[int] = (4, 6),
    resolver: Resolver = resolve_host,
    max_addresses: int = MAX_ADDRESSES_PER_FAMILY,
) -> list[Target]:
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


def probe(targets: list[Target], timeout: float = DEFAULT_TIMEOUT) -> tuple[list[nat.Observation], list[nat.Endpoint]]:
    """Send STUN binding requests to *targets*, one socket per family; gather answers until *timeout*.

    Returns the observations (in target order) and the local endpoints of the sockets used.
    """
    observations, locals_, _note = _exchange(targets, timeout)
    return observations, locals_


def _exchange(
    targets: list[Target], timeout: float, *, bind_ip: str | None = None, bind_port: int = 0
) -> tuple[list[nat.Observation], list[nat.Endpoint], str | None]:
    with BlockingStunClient(bind_ip=bind_ip, bind_port=bind_port) as client:
        locals_: dict[int, nat.Endpoint | None] = {}
        for family in (4, 6):
            fam_targets = [t for t in targets if t.server.family == family]
            if not fam_targets:
                continue
            if bind_ip is not None and (":" in bind_ip) != (family == 6):
                continue  # the bind address is of the other family: no socket (as tailscale netcheck)
            try:
                port = client.socket(family).local_port
            except OSError as err:  # no such address family on this machine, or the bind address is wrong
                if bind_ip is not None or bind_port:
                    where = dial.join_host_port(bind_ip or ("0.0.0.0" if family == 4 else "::"), bind_port)
                    raise InputError(f"cannot bind the STUN socket to {where}: {describe_error(err)}") from None
                continue
            ip = bind_ip or next(
                (ip for t in fam_targets if (ip := route_source(family, t.server.ip, t.server.port))), None
            )
            locals_[family] = nat.Endpoint(ip, port) if ip else None
        usable = [t for t in targets if t.server.family in locals_]
        results = client.query(
            [(t.server.ip, t.server.port) for t in usable], timeout=timeout, retransmit=RETRANSMIT_INTERVAL
        )
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


def run(
    dmap: DERPMap,
    region_ids: Iterable[int] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    families: Iterable[int] = (4, 6),
    bind_ip: str | None = None,
    bind_port: int = 0,
    port_mapping: bool = False,
    captive_portal: bool = True,
    captive_port: int = 80,
) -> nat.NatReport:
    """Plan, probe and classify: the whole of ``derptool nat`` as a library call.

    *bind_ip*/*bind_port*: the local address and UDP port of the STUN socket (a family other than
    *bind_ip*'s is not probed). *port_mapping* also asks the default gateway for UPnP, NAT-PMP and PCP
    (beside the STUN probes); *captive_portal* checks the map's nodes for a captive portal when no STUN
    server answered (as netcheck, which skips it when UDP works), on their HTTP port *captive_port*.

    Raises :class:`InputError` for bad input (including a bind address that cannot be bound),
    :class:`NetworkError` when nothing can be probed; notices (ignored STUN packets) are in
    ``NatReport.notes``.
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
        raise InputError(
            'no STUN server of the selected regions has an address for the families probed (IPv4 and IPv6 are "none")'
        )
    if not targets:
        raise NetworkError(
            "no STUN server of the selected regions has an address to probe "
            "(no IP address in the map, and the host names do not resolve)"
        )
    if bind_ip is not None:
        targets = [t for t in targets if (":" in t.server.ip) == (":" in bind_ip)]
        if not targets:
            raise InputError(
                f"no STUN server of the selected regions has an IPv{6 if ':' in bind_ip else 4} "
                f"address for the bind address {bind_ip}"
            )
    mapping = None
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending_map = pool.submit(portmap.probe, timeout=portmap.REPORT_WINDOW) if port_mapping else None
        observations, locals_, note = _exchange(targets, timeout, bind_ip=bind_ip, bind_port=bind_port)
        if pending_map is not None:
            mapping = pending_map.result()
    report = nat.summarize(observations, locals_)
    captive_found = None
    if captive_portal and not report.result.udp:
        captive_found = captive.detect(dmap, None, port=captive_port).found
    return dataclasses.replace(
        report, notes=(note,) if note else (), port_mapping=mapping, captive_portal=captive_found
    )
