"""Node-level access straight from Tailscale's recorded packet filters, computed without derptool's engine.

The same definition as ``derptool policy diff`` documents, written again from scratch on the recordings:
a node's filter admits ``(source, destination, protocol, port)`` for the destinations it serves (its own
addresses; the subnet routes in its recorded ``self.allowed_ips``; the internet when it is an approved exit
node), sources being nodes (either address) or subnet-route addresses outside the tailnet's ranges. Rows:
per source and protocol, destination addresses with equal ports merge into maximal runs, sources likewise;
runs are written as prefixes (``ipaddress.summarize_address_range``) and ports as maximal ranges. ICMP is
only counted towards IPv4 route addresses, ICMPv6 towards IPv6 ones.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

V6 = 1 << 32
TOP = V6 + (1 << 128) - 1
Interval = tuple[int, int]
NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp"}


def number(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return int(ip) if ip.version == 4 else V6 + int(ip)


def span(text: str) -> Interval:
    """An address, prefix, ``a-b`` range or ``*`` as an interval of the joint number line."""
    text = text.strip()
    if text == "*":
        return (0, TOP)
    if "-" in text and "/" not in text:
        a, b = (ipaddress.ip_address(x) for x in text.split("-"))
        return number(a), number(b)
    net = ipaddress.ip_network(text, strict=False)
    return number(net.network_address), number(net.broadcast_address)


def union(items: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for a, b in sorted(items):
        if out and a <= out[-1][1] + 1 and not (out[-1][1] == V6 - 1 and a == V6):
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def cut(items: list[Interval], holes: list[Interval]) -> list[Interval]:
    """*items* minus *holes* (both sorted, disjoint)."""
    out = []
    for a, b in items:
        start = a
        for c, d in holes:
            if d < start or c > b:
                continue
            if c > start:
                out.append((start, c - 1))
            start = max(start, d + 1)
        if start <= b:
            out.append((start, b))
    return out


def meet(items: list[Interval], other: list[Interval]) -> list[Interval]:
    return [(max(a, c), min(b, d)) for a, b in items for c, d in other if a <= d and c <= b]


Point = tuple[str | Interval, str | Interval, int, Interval]
TAILNET = union([span("100.64.0.0/10"), span("fd7a:115c:a1e0::/48")])
EXITS = ("0.0.0.0/0", "::/0")


class Recording:
    """One recorded case: who serves what, and each node's filter as intervals."""

    def __init__(self, case: dict[str, Any]) -> None:
        topo = case["topology"]["nodes"]
        seen = case["nodes"]
        self.names = sorted(topo)
        self.ips = {
            name: [number(ipaddress.ip_address(n[k])) for k in ("ipv4", "ipv6") if n.get(k)] for name, n in topo.items()
        }
        exits = set()
        for viewer in seen.values():
            for peer in viewer.get("peers") or []:
                if any(r in EXITS for r in peer.get("allowed_ips") or []):
                    exits.add(peer["name"])
        for name, n in topo.items():
            if any(r in EXITS for r in n.get("approved_routes") or []) and any(
                r in EXITS for r in n.get("routable_ips") or []
            ):
                exits.add(name)
        self.routes: dict[str, list[Interval]] = {}
        subnets: list[Interval] = []
        for name in self.names:
            own = {f"{ipaddress.ip_address(topo[name][k])}/{32 if k == 'ipv4' else 128}" for k in ("ipv4", "ipv6")}
            mine = [
                r for r in (seen[name].get("self") or {}).get("allowed_ips") or [] if r not in own and r not in EXITS
            ]
            subnets += [span(r) for r in mine]
            served = [span(r) for r in mine] + ([span(r) for r in EXITS] if name in exits else [])
            self.routes[name] = cut(union(served), TAILNET)
        self.subnets = cut(union(subnets), TAILNET)
        self.filters = {name: seen[name].get("packet_filter_rules") or [] for name in self.names}

    def points(self) -> list[Point]:
        """Boxes ``(source, destination, protocol, ports)``: node names or (unsplit) address intervals."""
        out: list[Point] = []
        for name in self.names:
            for rule in self.filters[name]:
                if "DstPorts" not in rule or not rule["DstPorts"]:
                    continue
                src = union(span(s) for s in rule.get("SrcIPs") or [])
                src_nodes = [n for n in self.names if any(a <= ip <= b for a, b in src for ip in self.ips[n])]
                src_ranges = meet(src, self.subnets)
                protos = rule.get("IPProto") or [6, 17, 1, 58]
                for d in rule["DstPorts"]:
                    lo, hi = span(d["IP"])
                    ports = (d["Ports"]["First"], d["Ports"]["Last"])
                    dsts: list[str | Interval] = []
                    if any(lo <= ip <= hi for ip in self.ips[name]):
                        dsts.append(name)
                    dsts += meet([(lo, hi)], self.routes[name])
                    for dst in dsts:
                        for p in protos:
                            if isinstance(dst, tuple) and p == (58 if dst[1] < V6 else 1):
                                continue
                            out.extend((s, dst, p, ports) for s in [*src_nodes, *src_ranges])
        return out


def _pieces(boxes: Iterable[Interval]) -> list[Interval]:
    """Elementary intervals of a set of intervals."""
    cuts = sorted({a for a, _ in boxes} | {b + 1 for _, b in boxes})
    return [(cuts[i], cuts[i + 1] - 1) for i in range(len(cuts) - 1)]


def _explode(boxes: list[Point], src_pieces: list[Interval], dst_pieces: list[Interval]) -> set[tuple[Any, ...]]:
    """Boxes as a set of elementary cells ``(src, dst, proto, port piece)``; ports are split later."""
    out: set[tuple[Any, ...]] = set()
    for s, d, p, ports in boxes:
        ss = [s] if isinstance(s, str) else [x for x in src_pieces if s[0] <= x[0] and x[1] <= s[1]]
        ds = [d] if isinstance(d, str) else [x for x in dst_pieces if d[0] <= x[0] and x[1] <= d[1]]
        out.update((a, b, p, ports) for a in ss for b in ds)
    return out


def _port_sets(cells: set[tuple[Any, ...]]) -> dict[tuple[Any, Any, int], list[Interval]]:
    out: dict[tuple[Any, Any, int], list[Interval]] = {}
    for s, d, p, ports in cells:
        out.setdefault((s, d, p), []).append(ports)
    return {k: union(v) for k, v in out.items()}


def _minus_ports(a: list[Interval], b: list[Interval]) -> list[Interval]:
    return cut(a, b)


def _prefixes(r: Interval) -> list[str]:
    if r[0] >= V6:
        first, last = ipaddress.IPv6Address(r[0] - V6), ipaddress.IPv6Address(r[1] - V6)
        return [str(n) for n in ipaddress.summarize_address_range(first, last)]
    return [str(n) for n in ipaddress.summarize_address_range(ipaddress.IPv4Address(r[0]), ipaddress.IPv4Address(r[1]))]


def _runs(items: list[tuple[Interval, Any]]) -> list[tuple[Interval, Any]]:
    out: list[tuple[Interval, Any]] = []
    for (a, b), v in sorted(items, key=lambda x: x[0]):
        if out and out[-1][1] == v and out[-1][0][1] + 1 == a and out[-1][0][1] != V6 - 1:
            out[-1] = ((out[-1][0][0], b), v)
        else:
            out.append(((a, b), v))
    return out


def _ports(r: Interval) -> str:
    if r == (0, 65535):
        return "*"
    return str(r[0]) if r[0] == r[1] else f"{r[0]}-{r[1]}"


def rows(diff: dict[tuple[Any, Any, int], list[Interval]]) -> set[tuple[str, str, str | int, str]]:
    """The canonical rows of a set given per ``(src, dst, proto)`` as port intervals."""
    out: set[tuple[str, str, str | int, str]] = set()
    by: dict[tuple[int, Any], dict[Any, tuple[Interval, ...]]] = {}
    for (s, d, p), ports in diff.items():
        if ports:
            by.setdefault((p, s), {})[d] = tuple(ports)
    per_proto: dict[int, list[tuple[Any, Any]]] = {}
    for (p, s), reach in by.items():
        nodes = tuple(sorted((d, v) for d, v in reach.items() if isinstance(d, str)))
        routes = tuple(_runs([(d, v) for d, v in reach.items() if not isinstance(d, str)]))
        per_proto.setdefault(p, []).append((s, (nodes, routes)))
    for p, items in per_proto.items():
        srcs = [([s], q) for s, q in items if isinstance(s, str)]
        srcs += [(_prefixes(r), q) for r, q in _runs([(s, q) for s, q in items if not isinstance(s, str)])]
        for labels, (nodes, routes) in srcs:
            dsts = [([d], v) for d, v in nodes] + [(_prefixes(r), v) for r, v in routes]
            for dl, ports in dsts:
                for s in labels:
                    for d in dl:
                        out.update((s, d, NAMES.get(p, p), _ports(x)) for x in ports)
    return out


def expected_rows(
    old: Recording, new: Recording
) -> tuple[set[tuple[str, str, str | int, str]], set[tuple[str, str, str | int, str]]]:
    """``(gained, lost)`` rows from *old* to *new* (same node names)."""
    a, b = old.points(), new.points()
    src_pieces = _pieces([s for s, _, _, _ in a + b if not isinstance(s, str)])
    dst_pieces = _pieces([d for _, d, _, _ in a + b if not isinstance(d, str)])
    pa = _port_sets(_explode(a, src_pieces, dst_pieces))
    pb = _port_sets(_explode(b, src_pieces, dst_pieces))
    gained = {k: _minus_ports(v, pa.get(k, [])) for k, v in pb.items()}
    lost = {k: _minus_ports(v, pb.get(k, [])) for k, v in pa.items()}
    return rows(gained), rows(lost)
