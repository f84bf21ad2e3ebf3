"""Who sees whom: peer visibility, each peer's ``AllowedIPs`` and ``PrimaryRoutes``, auto-approved routes.

Two nodes are peers when some rule lets traffic flow between them in either direction: one node's
addresses (or a subnet route it serves) are among the rule's sources and the other's addresses or routes
among its destinations, or the other is an exit node and the destinations are the internet. Each rule's
source and destination nodes are found once as bit sets, so the cost grows with the rules and nodes, not
with their product.

A route served by several nodes has one primary (the first of them in tailnet order). A peer's
``AllowedIPs`` are its addresses plus the primary and exit routes the viewer may use.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from derptool.policy.engine.addresses import ALL_V4, ALL_V6, INTERNET, IPSet, prefix_range
from derptool.policy.engine.aliases import Resolver, str_list
from derptool.policy.engine.filter import Rule, RuleSet, policy_grants
from derptool.policy.engine.ha import standby_routes, via_primaries
from derptool.policy.engine.tailnet import Node, Tailnet

Range = tuple[int, int]


def _bits(indexes: Iterable[int]) -> int:
    mask = 0
    for i in indexes:
        mask |= 1 << i
    return mask


def bit_indexes(mask: int) -> list[int]:
    """The positions of the set bits of *mask*, lowest first (node indexes of a node set)."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


@dataclass(frozen=True)
class _Match:
    src: IPSet
    dst: IPSet
    internet: bool
    only: int  # nodes reached through via entries
    routed: IPSet  # destinations including via entries (for route access)


class PeerMap:
    """Peer sets of every node from the compiled rules (global, as the control plane computes them)."""

    def __init__(self, rules: RuleSet) -> None:
        self.tailnet = rules.tailnet
        nodes = self.tailnet.nodes
        self._ips = sorted((ip, n.index) for n in nodes for ip in n.ips)
        self._keys = [ip for ip, _ in self._ips]
        self._routes = {n.index: [prefix_range(r) for r in n.subnet_routes] for n in nodes if n.subnet_routes}
        self._exits = _bits(n.index for n in nodes if n.is_exit_node)
        self.matches = [m for m in (_match(r) for r in rules.rules) if m is not None]
        self.peers = [0] * len(nodes)
        self._route_matches: dict[str, tuple[list[_Match], list[_Match]]] = {}
        self._compute()

    def _nodes_in(self, ips: IPSet) -> int:
        """Nodes with an address in *ips* or a subnet route overlapping it."""
        return self.addressed(ips) | self.routed(ips)

    def addressed(self, ips: IPSet) -> int:
        """Nodes with an address in *ips*."""
        mask = 0
        for lo, hi in ips.ranges:
            a = bisect.bisect_left(self._keys, lo)
            b = bisect.bisect_right(self._keys, hi)
            for k in range(a, b):
                mask |= 1 << self._ips[k][1]
        return mask

    def routed(self, ips: IPSet) -> int:
        """Nodes with a subnet route overlapping *ips*."""
        mask = 0
        for idx, routes in self._routes.items():
            if any(ips.overlaps(lo, hi) for lo, hi in routes):
                mask |= 1 << idx
        return mask

    @property
    def exit_nodes(self) -> int:
        """The exit nodes."""
        return self._exits

    def _compute(self) -> None:
        pairs: dict[tuple[int, int], None] = {}
        cache: dict[IPSet, int] = {}
        for m in self.matches:
            s = cache.get(m.src)
            if s is None:
                s = cache[m.src] = self._nodes_in(m.src)
            d = cache.get(m.dst)
            if d is None:
                d = cache[m.dst] = self._nodes_in(m.dst)
            d |= m.only
            if m.internet:
                d |= self._exits
            if s and d:
                pairs.setdefault((s, d), None)
        for s, d in pairs:
            for i in bit_indexes(s):
                self.peers[i] |= d
            for j in bit_indexes(d):
                self.peers[j] |= s
        self.seen = list(self.peers)  # before each node is taken out of its own set: shared by many nodes
        for n in self.tailnet.nodes:
            self.peers[n.index] &= ~(1 << n.index)

    def peers_of(self, node: Node) -> list[Node]:
        """The nodes *node* sees, in tailnet order."""
        return [self.tailnet.nodes[i] for i in bit_indexes(self.peers[node.index])]

    def can_access_route(self, viewer: Node, route: str) -> bool:
        """Whether a rule lets *viewer* (or the subnets it serves) reach into *route*, or the reverse."""
        lo, hi = prefix_range(route)
        relevant = self._route_matches.get(route)
        if relevant is None:  # the rules whose destinations or sources touch the route, found once per route
            relevant = (
                [m for m in self.matches if m.routed.overlaps(lo, hi)],
                [m for m in self.matches if m.src.overlaps(lo, hi)],
            )
            self._route_matches[route] = relevant
        into, out_of = relevant
        own = viewer.ips
        mine = self._routes.get(viewer.index, [])
        for m in into:
            if any(m.src.contains(ip) for ip in own) or (mine and any(m.src.overlaps(a, b) for a, b in mine)):
                return True
        for m in out_of:
            if any(m.dst.contains(ip) for ip in own) or (mine and any(m.dst.overlaps(a, b) for a, b in mine)):
                return True
        return False


def _match(rule: Rule) -> _Match | None:
    """The source and destination sets of a rule (``DstPorts`` and ``CapGrant`` alike)."""
    dst: list[Range] = []
    via: list[Range] = []
    only = 0
    for d in rule.dst_ports:
        if d.only is not None:
            only |= _bits(d.only)
            via.append((d.lo, d.hi))
        else:
            dst.append((d.lo, d.hi))
    for g in rule.cap_grants or []:
        dst.extend((lo, hi) for lo, hi, _ in g.dsts)
    dset = IPSet.of(dst)
    src = rule.src
    internet = bool(dset.ranges) and (
        dset.covers(*ALL_V4.ranges[0]) or dset.covers(*ALL_V6.ranges[0]) or INTERNET.subset_of(dset)
    )
    if not src or (not dset and not only):
        return None
    return _Match(src, dset, internet, only, dset.union(IPSet.of(via)) if via else dset)


def primary_routes(tailnet: Tailnet) -> dict[str, int]:
    """Each subnet route and the node index that is primary for it.

    A node's ``primary_routes`` in the tailnet file win (the control plane elects the router that
    advertised first, which only it knows); otherwise the first node in the file serving the route.
    """
    out: dict[str, int] = {}
    for n in tailnet.nodes:
        for r in n.primary_routes or ():
            if r in n.subnet_routes:
                out.setdefault(r, n.index)
    for n in tailnet.nodes:
        for r in n.subnet_routes:
            out.setdefault(r, n.index)
    return out


@dataclass(frozen=True)
class Peer:
    """One peer as a node sees it."""

    node: Node
    allowed_ips: list[str]
    primary_routes: list[str]

    def to_json(self) -> dict[str, Any]:
        """``{"name", "allowed_ips", "primary_routes"}``."""
        return {"name": self.node.name, "allowed_ips": self.allowed_ips, "primary_routes": self.primary_routes}


@dataclass(frozen=True)
class ViaGrant:
    """A grant's sources and destination prefixes, with its ``via`` tags (empty for an ordinary grant)."""

    src: IPSet
    dsts: tuple[Range, ...]
    internet: bool
    via: tuple[str, ...]


def via_grants(policy: Mapping[str, Any], resolver: Resolver) -> list[ViaGrant]:
    """Every grant and ACL entry as :class:`ViaGrant` values, when the policy has any ``via`` grant."""
    raw = policy.get("grants")
    if not any(
        isinstance(g, Mapping) and isinstance(g.get("via"), list) and any(isinstance(v, str) for v in g["via"])
        for g in (raw if isinstance(raw, list) else [])
    ):
        return []  # only grants have via: the ACLs need not be read a second time
    grants = policy_grants(policy)
    if not any(g.via for g in grants):
        return []
    out = []
    for g in grants:
        src = resolver.resolve_all([x for x in g.srcs if x != "autogroup:self"])
        dsts: list[Range] = []
        for d in g.dsts:
            if d in ("autogroup:internet", "*"):
                continue
            ips = resolver.resolve(d)
            if ips is not None:
                dsts.extend(ips.ranges)
        out.append(ViaGrant(src, tuple(dsts), "autogroup:internet" in g.dsts, tuple(g.via)))
    return out


def _via_filter(viewer: Node, peer: Node, routes: list[str], grants: list[ViaGrant]) -> list[str]:
    """Routes of *peer* the viewer may use once ``via`` grants steer its traffic to the tagged routers."""
    mine = [g for g in grants if any(g.src.contains(ip) for ip in viewer.ips)]
    excluded: set[str] = set()
    for g in (g for g in mine if g.via):
        for r in routes:
            lo, hi = prefix_range(r)
            exit_route = (lo, hi) in (ALL_V4.ranges[0], ALL_V6.ranges[0])
            hit = (g.internet and exit_route) or (not exit_route and any(a <= hi and lo <= b for a, b in g.dsts))
            if hit and not any(peer.has_tag(t) for t in g.via):
                excluded.add(r)
    for g in (g for g in mine if not g.via):
        for r in list(excluded):
            lo, hi = prefix_range(r)
            if any(a <= hi and lo <= b for a, b in g.dsts):
                excluded.discard(r)
    return [r for r in routes if r not in excluded]


def peers_for(
    node: Node, peer_map: PeerMap, primaries: Mapping[str, int], vias: list[ViaGrant] | None = None
) -> list[Peer]:
    """The peers *node* sees with their ``AllowedIPs`` and ``PrimaryRoutes``."""
    primaries = viewer_primaries(node, peer_map.tailnet, primaries, vias)
    return [peer_for(node, p, peer_map, primaries, vias) for p in peer_map.peers_of(node)]


def viewer_primaries(
    node: Node, tailnet: Tailnet, primaries: Mapping[str, int], vias: list[ViaGrant] | None
) -> Mapping[str, int]:
    """Each route's primary as *node* sees it: via grants steering it elect among their tagged routers."""
    if not vias:
        return primaries
    mine = [g for g in vias if any(g.src.contains(ip) for ip in node.ips)]
    plain = [d for g in mine if not g.via for d in g.dsts]
    return via_primaries(node, tailnet, primaries, [(g.via, g.dsts) for g in mine if g.via], plain)


def routes_vary(peer: Node, primaries: Mapping[str, int]) -> bool:
    """Whether what viewers see of *peer* depends on the viewer: it is primary for a route or an exit node."""
    return bool(peer.exit_routes) or any(primaries.get(r) == peer.index for r in peer.subnet_routes)


def peer_for(
    node: Node, p: Node, peer_map: PeerMap, primaries: Mapping[str, int], vias: list[ViaGrant] | None = None
) -> Peer:
    """Peer *p* as *node* sees it: its addresses plus the primary and exit routes *node* may use."""
    prim = [r for r in p.subnet_routes if primaries.get(r) == p.index]
    standby = standby_routes(node, p, primaries)
    usable = [r for r in prim if r in standby or peer_map.can_access_route(node, r)]
    exits = [r for r in p.exit_routes if peer_map.can_access_route(node, r)]
    if vias:
        usable = _via_filter(node, p, usable, vias)
        exits = _via_filter(node, p, exits, vias)
    return Peer(p, list(p.addresses) + usable + exits, usable)


def auto_approve(policy: Mapping[str, Any], tailnet: Tailnet) -> Tailnet:
    """The tailnet as it is after its advertised routes are first seen: ``autoApprovers`` approve them.

    A subnet route is approved when the node matches an approver of a ``routes`` prefix that contains
    the route; exit routes when the node matches an ``exitNode`` approver.
    """
    aa = policy.get("autoApprovers")
    if not isinstance(aa, Mapping):
        return tailnet
    resolver = Resolver(policy, tailnet)
    routes = aa.get("routes") if isinstance(aa.get("routes"), Mapping) else {}
    approvers: list[tuple[IPSet, IPSet]] = []
    for prefix, who in (routes or {}).items():
        try:
            covered = IPSet.parse([str(prefix)])
        except ValueError:
            continue
        approvers.append((covered, resolver.resolve_all(str_list(who))))
    exit_set = resolver.resolve_all(str_list(aa.get("exitNode")))
    nodes = []
    for n in tailnet.nodes:
        approved = list(n.approved_routes)
        for r in n.routable_ips:
            if r in approved:
                continue
            try:
                net = ipaddress.ip_network(r.strip(), strict=False)
            except ValueError:
                continue
            if net.prefixlen == 0:
                ok = any(exit_set.contains(ip) for ip in n.ips)
            else:
                lo, hi = prefix_range(str(net))
                ok = any(a.covers(lo, hi) and any(s.contains(ip) for ip in n.ips) for a, s in approvers)
            if ok:
                approved.append(r)
        nodes.append(replace(n, approved_routes=tuple(approved)))
    return Tailnet(list(tailnet.users), nodes, control_url=tailnet.control_url)


__all__ = ["Peer", "PeerMap", "auto_approve", "bit_indexes", "peer_for", "peers_for", "primary_routes", "routes_vary"]
