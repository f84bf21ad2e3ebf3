"""Access gained and lost: the packet filters of two compiled policies compared as sets, node by node.

What a policy allows is a set of points ``(source, destination, protocol, port)``. A source is a node (either
of its addresses) or an address of an approved subnet route; a destination is a node (its own addresses, as
its filter sees them) or an address of a subnet or exit route a node serves (outside the tailnet's own
ranges). Every node's filter contributes only for the destinations it serves, so what the tailnet allows is
the union of what each node's filter admits there. ICMP counts only towards IPv4 route addresses and ICMPv6
only towards IPv6 ones (a node, having both families, gets both).

Nothing is compared pair by pair. Sources become bit masks (one bit per node, one per elementary piece of
subnet address space), each destination collects ``(protocols, port range, source mask)`` entries from the
filters, and only destinations whose entries differ between the two sides are cut into elementary port
ranges where the masks are compared (``new & ~old`` gained, ``old & ~new`` lost). A node whose received rules
are the same on both sides (and which serves no route) is not read at all.

The rows are canonical (a function of the set alone): per source and protocol, destination addresses with
the same ports merge into maximal runs; sources with the same destinations and ports merge likewise; runs
are written as CIDR prefixes and ports as maximal ranges.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from derptool._types import JsonPath
from derptool.policy.engine.addresses import (
    CGNAT,
    TAILSCALE_ULA,
    V4_END,
    IPSet,
    Range,
    prefix_text_full,
    range_prefixes,
)
from derptool.policy.engine.diff.view import FilterEntry, PolicyView
from derptool.policy.engine.tailnet import Node

TAILNET_RANGES = CGNAT.union(TAILSCALE_ULA)
"""The tailnet's own ranges: addresses there are nodes or nothing (never a subnet or the internet)."""
PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp"}
ICMP, ICMPV6 = 1, 58

DstKey = int | Range
"""A destination: a node index, or a range of route addresses."""
V = TypeVar("V")
Contribution = tuple[tuple[int, ...], int, int, int]
"""``(protocols, first port, last port, source mask)``."""


@dataclass(frozen=True, order=True)
class AccessRow:
    """One row of access gained or lost: source, destination, protocol, port range (the JSON contract)."""

    src: str
    dst: str
    proto: str | int
    ports: str

    def to_json(self) -> dict[str, str | int]:
        """``{"src", "dst", "proto", "ports"}``."""
        return {"src": self.src, "dst": self.dst, "proto": self.proto, "ports": self.ports}


def proto_name(number: int) -> str | int:
    """``tcp``, ``udp``, ``icmp``, ``icmpv6``, ``sctp``, or the protocol number."""
    return PROTO_NAMES.get(number, number)


def ports_text(first: int, last: int) -> str:
    """``*`` for every port, ``22``, or ``80-443``."""
    if (first, last) == (0, 65535):
        return "*"
    return str(first) if first == last else f"{first}-{last}"


def intersect(lo: int, hi: int, ranges: Sequence[Range]) -> list[Range]:
    """The parts of ``lo..hi`` inside sorted, disjoint *ranges*."""
    out = []
    i = bisect.bisect_right(ranges, (lo, -1)) - 1
    for a, b in ranges[max(i, 0) :]:
        if a > hi:
            break
        if b >= lo:
            out.append((max(a, lo), min(b, hi)))
    return out


def elementary(ranges: Sequence[Range]) -> list[Range]:
    """The coarsest ranges that every one of *ranges* is a union of (only where some range is)."""
    cover = IPSet.of(ranges)
    cuts: set[int] = set()
    for a, b in ranges:
        cuts.add(a)
        cuts.add(b + 1)
    points = sorted(cuts)
    out = []
    for a, b in cover.ranges:
        inner = points[bisect.bisect_right(points, a) : bisect.bisect_right(points, b)]
        start = a
        for c in inner:
            out.append((start, c - 1))
            start = c
        out.append((start, b))
    return out


class AccessSide:
    """One policy's access: per destination, the contributions of the filters that serve it."""

    def __init__(self, view: PolicyView, skip: frozenset[int] = frozenset()) -> None:
        self.view = view
        tailnet = view.tailnet
        self.nodes: Sequence[Node] = tailnet.nodes
        self.slots = NodeSlots(tailnet.nodes)
        self.subnets = IPSet.parse(tailnet.subnet_routes).minus(TAILNET_RANGES)
        self.skip = skip
        self.served: list[tuple[Range, ...]] = [
            IPSet.parse([*n.subnet_routes, *n.exit_routes]).minus(TAILNET_RANGES).ranges
            if n.subnet_routes or n.exit_routes
            else ()
            for n in tailnet.nodes
        ]
        self.filters: list[Sequence[FilterEntry]] = [() if n.index in skip else view.filter(n) for n in tailnet.nodes]

    def entries(self, node: Node) -> Sequence[FilterEntry]:
        """The node's filter (read again when it was skipped)."""
        return self.view.filter(node) if node.index in self.skip else self.filters[node.index]

    def sources(self) -> Iterable[IPSet]:
        """Every distinct source set (by identity) of the filters."""
        seen: set[int] = set()
        for entries in self.filters:
            for e in entries:
                if id(e.src) not in seen:
                    seen.add(id(e.src))
                    yield e.src


class NodeSlots:
    """The addresses of one side's nodes, sorted, for finding the nodes inside a set of ranges."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        self._slots = sorted((ip, n.index) for n in nodes for ip in n.ips)
        self._keys = [ip for ip, _ in self._slots]
        self._all = (1 << len(nodes)) - 1

    def mask(self, src: IPSet) -> int:
        """Bit ``i`` for each node ``i`` with an address in *src*."""
        mask = 0
        for lo, hi in src.ranges:
            a = bisect.bisect_left(self._keys, lo)
            b = bisect.bisect_right(self._keys, hi)
            if b - a == len(self._keys):
                return self._all
            for k in range(a, b):
                mask |= 1 << self._slots[k][1]
        return mask


@dataclass
class SourceAtoms:
    """Bit positions of sources: node ``i`` is bit ``i``; subnet piece ``k`` is bit ``len(nodes) + k``."""

    nodes: Sequence[Node]
    pieces: list[Range]

    def __post_init__(self) -> None:
        self._starts = [a for a, _ in self.pieces]

    def mask(self, src: IPSet, slots: NodeSlots, subnets: IPSet) -> int:
        """The bits of the nodes with an address in *src* and of the pieces of *subnets* inside *src*."""
        mask = slots.mask(src)
        if self.pieces and subnets:
            base = len(self.nodes)
            for lo, hi in src.ranges:
                for a, b in intersect(lo, hi, subnets.ranges):
                    i = bisect.bisect_left(self._starts, a)
                    while i < len(self.pieces) and self.pieces[i][1] <= b:
                        mask |= 1 << (base + i)
                        i += 1
        return mask

    def label(self, bit: int) -> int | Range:
        """A node index, or a subnet piece."""
        return bit if bit < len(self.nodes) else self.pieces[bit - len(self.nodes)]


def _contributions(side: AccessSide, atoms: SourceAtoms) -> dict[DstKey, list[Contribution]]:
    out: dict[DstKey, list[Contribution]] = defaultdict(list)
    masks: dict[int, tuple[IPSet, int]] = {}
    for node in side.nodes:
        served = side.served[node.index]
        ips = node.ips
        mine = out[node.index]
        for e in side.filters[node.index]:
            found = masks.get(id(e.src))
            if found is None:
                found = masks[id(e.src)] = (e.src, atoms.mask(e.src, side.slots, side.subnets))
            mask = found[1]
            if not mask:
                continue
            item = (e.protos, e.first, e.last, mask)
            if e.lo <= ips[0] <= e.hi or (len(ips) > 1 and e.lo <= ips[1] <= e.hi):
                mine.append(item)
            if served:
                for r in intersect(e.lo, e.hi, served):
                    out[r].append(item)
    return out


def _split_routes(
    old: dict[DstKey, list[Contribution]], new: dict[DstKey, list[Contribution]]
) -> tuple[dict[DstKey, list[Contribution]], dict[DstKey, list[Contribution]]]:
    """Route destinations cut into elementary ranges common to both sides."""
    raw = [k for k in (*old, *new) if isinstance(k, tuple)]
    if not raw:
        return old, new
    pieces = elementary(raw)
    starts = [a for a, _ in pieces]
    out = []
    for side in (old, new):
        split: dict[DstKey, list[Contribution]] = {}
        for key, items in side.items():
            if not isinstance(key, tuple):
                split[key] = items
                continue
            i = bisect.bisect_left(starts, key[0])
            while i < len(pieces) and pieces[i][1] <= key[1]:
                split.setdefault(pieces[i], []).extend(items)
                i += 1
        out.append(split)
    return out[0], out[1]


Cells = dict[int, dict[int, dict[DstKey, list[Range]]]]
"""proto -> source bit -> destination -> elementary port ranges."""


def _bits(mask: int) -> Iterable[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _compare(key: DstKey, old: list[Contribution], new: list[Contribution], gained: Cells, lost: Cells) -> None:
    protos = sorted({p for items in (old, new) for it in items for p in it[0]})
    if isinstance(key, tuple):  # a route: ICMP only to IPv4 addresses, ICMPv6 only to IPv6 ones
        protos = [p for p in protos if p != (ICMPV6 if key[1] <= V4_END else ICMP)]
    for proto in protos:
        a = [(f, t, m) for ps, f, t, m in old if proto in ps]
        b = [(f, t, m) for ps, f, t, m in new if proto in ps]
        if sorted(a) == sorted(b):
            continue
        cuts = sorted({f for f, _, _ in a + b} | {t + 1 for _, t, _ in a + b})
        masks_a = [0] * len(cuts)
        masks_b = [0] * len(cuts)
        for items, masks in ((a, masks_a), (b, masks_b)):
            for f, t, m in items:
                i = bisect.bisect_left(cuts, f)
                while i < len(cuts) - 1 and cuts[i] <= t:
                    masks[i] |= m
                    i += 1
        for i in range(len(cuts) - 1):
            port = (cuts[i], cuts[i + 1] - 1)
            for cells, mask in ((gained, masks_b[i] & ~masks_a[i]), (lost, masks_a[i] & ~masks_b[i])):
                for bit in _bits(mask):
                    cells.setdefault(proto, {}).setdefault(bit, {}).setdefault(key, []).append(port)


def _merge_ports(ports: list[Range]) -> tuple[Range, ...]:
    out: list[Range] = []
    for a, b in sorted(ports):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return tuple(out)


def _runs(items: list[tuple[Range, V]]) -> list[tuple[Range, V]]:
    """Contiguous address ranges (sorted) with equal values merged (never across IPv4 and IPv6)."""
    out: list[tuple[Range, V]] = []
    for (a, b), value in sorted(items, key=lambda x: x[0]):
        if out and out[-1][1] == value and out[-1][0][1] + 1 == a and out[-1][0][1] != V4_END:
            out[-1] = ((out[-1][0][0], b), value)
        else:
            out.append(((a, b), value))
    return out


def _prefixes(r: Range) -> list[str]:
    return [prefix_text_full(net, length) for net, length in range_prefixes(r[0], r[1])]


Ports = tuple[Range, ...]
Reach = tuple[tuple[tuple[int, Ports], ...], tuple[tuple[Range, Ports], ...]]
"""What one source reaches: ``(node destinations, route runs)``, each with its ports."""


def canonical_rows(cells: Cells, atoms: SourceAtoms) -> list[AccessRow]:
    """The rows of a set of points given as cells (see the module docstring)."""
    names = [n.name for n in atoms.nodes]
    rows: list[AccessRow] = []
    for proto, by_src in cells.items():
        pname = proto_name(proto)
        node_srcs: list[tuple[int, Reach]] = []
        piece_srcs: list[tuple[Range, Reach]] = []
        for bit, by_dst in by_src.items():
            nodes = sorted((k, _merge_ports(p)) for k, p in by_dst.items() if isinstance(k, int))
            routes = _runs([(k, _merge_ports(p)) for k, p in by_dst.items() if isinstance(k, tuple)])
            reach: Reach = (tuple(nodes), tuple(routes))
            label = atoms.label(bit)
            if isinstance(label, int):
                node_srcs.append((label, reach))
            else:
                piece_srcs.append((label, reach))
        srcs: list[tuple[list[str], Reach]] = [([names[i]], q) for i, q in node_srcs]
        srcs += [(_prefixes(r), q) for r, q in _runs(piece_srcs)]
        for src_labels, (dst_nodes, dst_routes) in srcs:
            dsts: list[tuple[list[str], Ports]] = [([names[k]], p) for k, p in dst_nodes]
            dsts += [(_prefixes(r), p) for r, p in dst_routes]
            for dst_labels, ports in dsts:
                for s in src_labels:
                    for d in dst_labels:
                        rows.extend(AccessRow(s, d, pname, ports_text(f, t)) for f, t in ports)
    return sorted(rows, key=row_order)


def row_order(row: AccessRow) -> tuple[str, str, int, int]:
    """Sort key: source, destination, protocol number, first port."""
    number = next((k for k, v in PROTO_NAMES.items() if v == row.proto), row.proto)
    first = 0 if row.ports == "*" else int(row.ports.split("-")[0])
    return (row.src, row.dst, int(number), first)


@dataclass
class AccessDiff:
    """Access gained and lost, with what is needed to find the rule behind a row."""

    gained: list[AccessRow]
    lost: list[AccessRow]
    old: AccessSide
    new: AccessSide

    def origin(self, row: AccessRow, *, gained: bool) -> JsonPath | None:
        """The rule (``(section, index)``) of the side that allows *row*: the new side for gained rows."""
        side = self.new if gained else self.old
        return find_origin(side, row)


def _unchanged(old: PolicyView, new: PolicyView) -> frozenset[int]:
    """Nodes whose own filter cannot change anything: same filter, same addresses, serving no route, on a
    tailnet whose subnet routes are the same on both sides (so sources read the same)."""
    ta, tb = old.tailnet, new.tailnet
    if ta.subnet_routes != tb.subnet_routes:
        return frozenset()
    out = set()
    for na, nb in zip(ta.nodes, tb.nodes, strict=True):
        if na.ips != nb.ips:
            return frozenset()
        if na.subnet_routes or na.exit_routes or nb.subnet_routes or nb.exit_routes:
            continue
        if old.filter_key(na) == new.filter_key(nb):
            out.add(na.index)
    return frozenset(out)


def diff_access(old: PolicyView, new: PolicyView) -> AccessDiff:
    """Access gained and lost from *old* to *new* (same tailnet: nodes in the same order).

    A node whose filter is the same on both sides (and serves no route) adds the same points to both, so
    it is left out of the comparison.
    """
    skip = _unchanged(old, new)
    a, b = AccessSide(old, skip), AccessSide(new, skip)
    clipped = [
        r
        for side in (a, b)
        if side.subnets
        for src in side.sources()
        for lo, hi in src.ranges
        for r in intersect(lo, hi, side.subnets.ranges)
    ]
    atoms = SourceAtoms(a.nodes, elementary(clipped) if clipped else [])
    ca, cb = _split_routes(_contributions(a, atoms), _contributions(b, atoms))
    gained: Cells = {}
    lost: Cells = {}
    for key in ca.keys() | cb.keys():
        old_items, new_items = ca.get(key, []), cb.get(key, [])
        if old_items != new_items:
            _compare(key, old_items, new_items, gained, lost)
    return AccessDiff(canonical_rows(gained, atoms), canonical_rows(lost, atoms), a, b)


def _label_range(side: AccessSide, label: str) -> tuple[Node | None, Range | None]:
    node = side.view.tailnet.by_name.get(label)
    if node is not None:
        return node, None
    length = label.partition("/")[2]
    return None, IPSet.parse([label]).ranges[0] if length else None


def find_origin(side: AccessSide, row: AccessRow) -> JsonPath | None:
    """The first filter entry that admits part of *row* on the side, as its rule's ``(section, index)``."""
    src_node, src_range = _label_range(side, row.src)
    dst_node, dst_range = _label_range(side, row.dst)
    first, _, last = row.ports.partition("-")
    ports = (0, 65535) if first == "*" else (int(first), int(last or first))
    number = next((k for k, v in PROTO_NAMES.items() if v == row.proto), row.proto)
    if dst_node is not None:
        receivers = [dst_node]
    elif dst_range is not None:
        receivers = [n for n in side.view.tailnet.nodes if intersect(dst_range[0], dst_range[1], side.served[n.index])]
    else:
        return None
    for n in receivers:
        for e in side.entries(n):
            if number not in e.protos or e.last < ports[0] or e.first > ports[1]:
                continue
            if src_node is not None:
                if not any(e.src.contains(ip) for ip in src_node.ips):
                    continue
            elif src_range is None or not e.src.overlaps(*src_range):
                continue
            if dst_node is not None:
                if not any(e.lo <= ip <= e.hi for ip in dst_node.ips):
                    continue
            elif dst_range is None or e.hi < dst_range[0] or e.lo > dst_range[1]:
                continue
            return e.origin
    return None


__all__ = ["AccessDiff", "AccessRow", "AccessSide", "diff_access", "ports_text", "proto_name"]
