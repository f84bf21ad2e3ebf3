"""The I/O side of ``derptool nat``: pick STUN servers from a DERP map and probe them from one socket.

For each address family one UDP socket (bound to an ephemeral port) sends a binding request to every
chosen server, retransmitting until it answers or the time is up. Using the *same* socket for every
server is what makes the answers comparable: a NAT that hands out one public ``ip:port`` for all of
them is endpoint-independent. :func:`run` returns the pure :class:`derptool.net.nat.NatReport`.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from derptool.derpmap import DERPMap, DERPNode, is_ip
from derptool.errors import InputError, NetworkError
from derptool.net import nat, stun

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
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    try:
        infos = socket.getaddrinfo(host, None, af, socket.SOCK_DGRAM)
    except (OSError, UnicodeError):
        return []
    out: list[str] = []
    for info in infos:
        ip = str(info[4][0]).split("%", 1)[0]
        if ip not in out:
            out.append(ip)
    return out


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


def _local_ip(family: int, dest: nat.Endpoint) -> str | None:
    """The source address the kernel would use towards *dest* (no packet is sent)."""
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    with socket.socket(af, socket.SOCK_DGRAM) as s:
        try:
            s.connect((dest.ip, dest.port))
        except OSError:
            return None
        return str(s.getsockname()[0]).split("%", 1)[0]


@dataclass
class _Pending:
    target: Target
    txid: bytes
    sock: socket.socket
    mapped: nat.Endpoint | None = None
    error: str | None = None


def _sockets(targets: list[Target]) -> Iterator[tuple[int, socket.socket, nat.Endpoint | None]]:
    for family in (4, 6):
        fam_targets = [t for t in targets if t.server.family == family]
        if not fam_targets:
            continue
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        try:
            sock = socket.socket(af, socket.SOCK_DGRAM)
        except OSError:  # no such address family on this machine
            continue
        try:
            sock.setblocking(False)
            sock.bind(("0.0.0.0", 0) if family == 4 else ("::", 0))
        except OSError:
            sock.close()
            continue
        port = int(sock.getsockname()[1])
        ip = next((ip for t in fam_targets if (ip := _local_ip(family, t.server))), None)
        yield family, sock, nat.Endpoint(ip, port) if ip else None


def probe(targets: list[Target], timeout: float = DEFAULT_TIMEOUT) -> tuple[list[nat.Observation],
                                                                            list[nat.Endpoint]]:
    """Send STUN binding requests to *targets*, one socket per family; gather answers until *timeout*.

    Returns the observations (in target order) and the local endpoints of the sockets used.
    """
    socks = list(_sockets(targets))
    by_family = {fam: (sock, local) for fam, sock, local in socks}
    pending: list[_Pending] = [
        _Pending(t, stun.new_transaction_id(), by_family[t.server.family][0])
        for t in targets if t.server.family in by_family
    ]
    by_txid = {p.txid: p for p in pending}
    try:
        deadline = time.monotonic() + timeout
        next_send = time.monotonic()
        while True:
            now = time.monotonic()
            waiting = [p for p in pending if p.mapped is None]
            if not waiting or now >= deadline:
                break
            if now >= next_send:
                for p in waiting:
                    try:
                        p.sock.sendto(stun.binding_request(p.txid), (p.target.server.ip, p.target.server.port))
                        p.error = None
                    except OSError as err:
                        p.error = err.strerror or str(err)
                next_send = now + RETRANSMIT_INTERVAL
            wait = max(0.0, min(deadline, next_send) - time.monotonic())
            readable, _, _ = select.select([s for _, s, _ in socks], [], [], wait)
            for sock in readable:
                _drain(sock, by_txid)
    finally:
        for _, sock, _ in socks:
            sock.close()
    observations = []
    by_target = {id(p.target): p for p in pending}
    for t in targets:
        found = by_target.get(id(t))
        local = by_family.get(t.server.family, (None, None))[1]
        if found is None:
            observations.append(nat.Observation(t.server, None, None, t.node, "no socket for this family"))
            continue
        error = found.error if found.mapped is None else None
        if found.mapped is None and error is None:
            error = "no answer"
        observations.append(nat.Observation(t.server, found.mapped, local, t.node, error))
    return observations, [local for _, _, local in socks if local is not None]


def _drain(sock: socket.socket, by_txid: dict[bytes, _Pending]) -> None:
    while True:
        try:
            packet, _addr = sock.recvfrom(stun.MAX_PACKET_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            # An ICMP error (port unreachable) surfaces here on some systems; keep listening.
            return
        if len(packet) < stun.HEADER_LEN:
            continue
        p = by_txid.get(packet[8:20])
        if p is None or p.mapped is not None:
            continue
        try:
            resp = stun.parse_response(packet, p.txid)
        except stun.StunError as err:
            p.error = f"bad STUN answer: {err}"
            continue
        ip = str(ipaddress.ip_address(resp.ip))
        if ip.startswith("::ffff:"):
            ip = str(ipaddress.IPv6Address(ip).ipv4_mapped)
        p.mapped = nat.Endpoint(ip, resp.port)


def run(dmap: DERPMap, region_ids: Iterable[int] | None = None, *,
        timeout: float = DEFAULT_TIMEOUT, families: Iterable[int] = (4, 6)) -> nat.NatReport:
    """Plan, probe and classify: the whole of ``derptool nat`` as a library call."""
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
    observations, locals_ = probe(targets, timeout)
    return nat.summarize(observations, locals_)
