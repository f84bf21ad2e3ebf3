"""Packet filter rules: ``acls`` and ``grants`` (``ip`` and ``app``) compiled once, then handed to each node.

The rules of the whole tailnet are compiled once (:func:`compile_rules`): sources and destinations are
resolved to addresses, an ACL destination or a grant ``ip`` entry becomes ``DstPorts``, an ``app`` entry a
``CapGrant``; rules with the same ``SrcIPs`` and ``IPProto`` merge into one, in the order of the policy
(grants first, then ACLs, as Tailscale orders them). ``autogroup:self`` becomes one rule per user, and a
``via`` grant a rule only the routers carrying a via tag receive.

A node then receives (:meth:`RuleSet.for_node`) the rules whose destinations include one of its
addresses, overlap a subnet route it serves, or are internet addresses when it is an exit node: which
destinations reach which node is computed once per destination with an address index, so handing rules
to every node costs time in proportion to what the nodes receive.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from derptool._types import JsonPath
from derptool.errors import LimitError
from derptool.policy.engine.addresses import (
    INTERNET,
    V4_END,
    V6,
    V6_END,
    IPSet,
    addr_text,
    prefix_range,
    prefix_text,
    prefix_text_full,
    range_prefixes,
    range_text,
    src_ips_set,
)
from derptool.policy.engine.aliases import DANGER_ALL, INTERNET_GROUP, SELF, WILDCARD, Resolver, node_set, str_list
from derptool.policy.engine.ports import ALL_PORTS, IPSpec, PortRange, parse_grant_ip, parse_proto, split_destination
from derptool.policy.engine.posture import PostureGate, required_postures
from derptool.policy.engine.tailnet import Node, Tailnet

WHOLE = (0, V6_END)
MAX_DELIVERIES = 5_000_000
"""The most ``DstPorts``/``CapGrant`` entries handed to nodes in all (a rule's entry times the nodes it
reaches), so a policy on a huge tailnet stops with a clear error before it fills the memory."""
COMPANION_CAPS = {
    "tailscale.com/cap/drive": "tailscale.com/cap/drive-sharer",
    "tailscale.com/cap/relay": "tailscale.com/cap/relay-target",
}
"""Capabilities for which Tailscale also grants a companion capability in the reverse direction."""


@dataclass(frozen=True)
class DstPort:
    """One ``DstPorts`` entry, with the rule entry it came from and the nodes it may go to."""

    ip: str
    ports: PortRange
    lo: int
    hi: int
    origin: JsonPath
    only: frozenset[int] | None = None  # node indexes (via grants), None: by address

    def to_json(self) -> dict[str, Any]:
        """Tailscale's ``NetPortRange`` JSON."""
        return {"IP": self.ip, "Ports": {"First": self.ports[0], "Last": self.ports[1]}}


@dataclass(frozen=True)
class CapGrant:
    """One ``CapGrant``: destination prefixes ``(lo, hi, length)`` and the capability map."""

    dsts: tuple[tuple[int, int, int], ...]
    cap_map: Mapping[str, Any]


@dataclass
class Rule:
    """A compiled filter rule (``tailcfg.FilterRule``) with where it came from.

    Its source set is read from its ``SrcIPs`` and never given beside them, so what the engine answers
    from the set (explain, the policy's tests, peers, egress) is what the packet filter says.
    """

    src_ips: tuple[str, ...]
    protos: list[int] | None
    dst_ports: list[DstPort] = field(default_factory=list)
    cap_grants: list[CapGrant] | None = None
    origins: list[JsonPath] = field(default_factory=list)
    _src: tuple[tuple[str, ...], IPSet] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def src(self) -> IPSet:
        """The addresses ``src_ips`` stand for (``*``: every address), read once."""
        read = self._src
        if read is None or read[0] is not self.src_ips:
            read = self._src = (self.src_ips, src_ips_set(self.src_ips))
        return read[1]

    def to_json(
        self, dst_ports: list[DstPort] | None = None, cap_grants: list[CapGrant] | None = None
    ) -> dict[str, Any]:
        """The rule as Tailscale's JSON, optionally with only some destinations."""
        out: dict[str, Any] = {"SrcIPs": list(self.src_ips)}
        if self.cap_grants is not None:
            grants = cap_grants if cap_grants is not None else self.cap_grants
            out["CapGrant"] = [{"Dsts": [_dst_text(d) for d in g.dsts], "CapMap": dict(g.cap_map)} for g in grants]
            return out
        out["DstPorts"] = [d.to_json() for d in (dst_ports if dst_ports is not None else self.dst_ports)]
        if self.protos is not None:
            out["IPProto"] = list(self.protos)
        return out


def rule_name(rule: Rule) -> str:
    """``acls[3]`` style name of the first policy entry a rule came from."""
    o = rule.origins[0] if rule.origins else ()
    return f"{o[0]}[{o[1]}]" if len(o) > 1 else "the default allow-all rule"


def _dst_text(d: tuple[int, int, int]) -> str:
    return prefix_text_full(d[0], d[2])


def _prefix_dsts(ips: IPSet) -> list[tuple[int, int, int]]:
    return [p for a, b in ips.ranges for p in _range_dsts(a, b)]


def _range_dsts(a: int, b: int) -> list[tuple[int, int, int]]:
    out = []
    for net, length in range_prefixes(a, b):
        bits = 128 if net >= V6 else 32
        out.append((net, net + (1 << (bits - length)) - 1, length))
    return out


@dataclass
class _Grant:
    """A grant or one destination of an ACL, normalised."""

    srcs: list[str]
    dsts: list[str]
    specs: list[IPSpec]
    app: Mapping[str, Any] | None
    via: list[str]
    origin: JsonPath
    dst_origins: list[JsonPath]
    posture: tuple[str, ...] = ()  # srcPosture (or defaultSrcPosture): the sources must satisfy one


def policy_grants(policy: Mapping[str, Any]) -> list[_Grant]:
    """Grants, then ACLs (one grant per destination), in Tailscale's order.

    A policy with neither ``grants`` nor ``acls`` allows everything, as Tailscale's does.
    """
    out: list[_Grant] = []
    if policy.get("grants") is None and policy.get("acls") is None:
        return [_Grant(["*"], ["*"], [IPSpec(None, [ALL_PORTS])], None, [], (), [()])]
    grants = policy.get("grants")
    for i, g in enumerate(grants if isinstance(grants, list) else []):
        if not isinstance(g, Mapping):
            continue
        specs = [s for s in (parse_grant_ip(e) for e in str_list(g.get("ip"))) if s is not None]
        app = g.get("app") if isinstance(g.get("app"), Mapping) and g.get("app") else None
        dsts = str_list(g.get("dst"))
        out.append(
            _Grant(
                str_list(g.get("src")),
                dsts,
                specs,
                app,
                str_list(g.get("via")),
                ("grants", i),
                [("grants", i, "dst", j) for j in range(len(dsts))],
                required_postures(policy, g),
            )
        )
    acls = policy.get("acls")
    for i, a in enumerate(acls if isinstance(acls, list) else []):
        if not isinstance(a, Mapping):
            continue
        src_key = "src" if "src" in a else "users"
        dst_key = "dst" if "dst" in a else "ports"
        srcs = str_list(a.get(src_key))
        protos = parse_proto(a.get("proto") if isinstance(a.get("proto"), str) else None)
        parsed = []
        for j, entry in enumerate(str_list(a.get(dst_key))):
            split = split_destination(entry)
            if split is not None:
                parsed.append((j, split[0], split[1]))
        if any(not host.startswith("autogroup:") for _, host, _ in parsed):
            parsed = [p for p in parsed if p[1] != SELF] + [p for p in parsed if p[1] == SELF]
        for j, host, ports in parsed:
            out.append(
                _Grant(
                    srcs,
                    [host],
                    [IPSpec(protos, ports)],
                    None,
                    [],
                    ("acls", i),
                    [("acls", i, dst_key, j)],
                    required_postures(policy, a),
                )
            )
    return out


class RuleSet:
    """The compiled rules of a tailnet and the index that hands them to nodes."""

    def __init__(self, rules: list[Rule], tailnet: Tailnet) -> None:
        self.rules = rules
        self.tailnet = tailnet
        nodes = tailnet.nodes
        self._ips = sorted((ip, n.index) for n in nodes for ip in n.ips)
        self._ip_keys = [ip for ip, _ in self._ips]
        self._routers = [(n.index, [prefix_range(r) for r in n.subnet_routes]) for n in nodes if n.subnet_routes]
        self._routed = IPSet.of(r for _, routes in self._routers for r in routes)
        self._exits = [n.index for n in nodes if n.is_exit_node]
        self._all = list(range(len(nodes)))
        self.per_node: list[list[tuple[int, list[int]]]] = [[] for _ in nodes]
        self._distribute()

    def _reached(self, lo: int, hi: int, *, internet: bool = True) -> list[int]:
        if (lo, hi) == WHOLE:
            return self._all
        a = bisect.bisect_left(self._ip_keys, lo)
        b = bisect.bisect_right(self._ip_keys, hi)
        out = {self._ips[k][1] for k in range(a, b)}
        if self._routed.overlaps(lo, hi):
            for idx, routes in self._routers:
                if any(r[0] <= hi and lo <= r[1] for r in routes):
                    out.add(idx)
        if internet and self._exits and INTERNET.covers(lo, hi):
            out.update(self._exits)
        return sorted(out)

    def _distribute(self) -> None:
        handed = 0
        for r_idx, rule in enumerate(self.rules):
            picked: dict[int, list[int]] = {}
            if rule.cap_grants is not None:
                for g_idx, grant in enumerate(rule.cap_grants):
                    for lo, hi, _ in grant.dsts:
                        for n in self._reached(lo, hi, internet=False):
                            lst = picked.setdefault(n, [])
                            if not lst or lst[-1] != g_idx:
                                lst.append(g_idx)
            else:
                for d_idx, d in enumerate(rule.dst_ports):
                    targets = sorted(d.only) if d.only is not None else self._reached(d.lo, d.hi)
                    for n in targets:
                        picked.setdefault(n, []).append(d_idx)
            for n, parts in picked.items():
                self.per_node[n].append((r_idx, parts))
                handed += len(parts)
            if handed > MAX_DELIVERIES:
                raise LimitError(
                    f"the policy hands more than {MAX_DELIVERIES} packet-filter entries to the "
                    f"{len(self.per_node)} nodes (at {rule_name(rule)}); compile a smaller tailnet"
                )

    def for_node(self, node: Node) -> list[tuple[Rule, list[int]]]:
        """The rules *node* receives, each with the indexes of its ``DstPorts`` (or ``CapGrant``) kept."""
        return [(self.rules[r], parts) for r, parts in self.per_node[node.index]]

    def node_json(self, node: Node) -> list[dict[str, Any]]:
        """The packet filter of *node* in Tailscale's JSON shape."""
        out = []
        for rule, parts in self.for_node(node):
            if rule.cap_grants is not None:
                out.append(
                    rule.to_json(
                        cap_grants=[_reduce_cap(g, node, self.tailnet) for g in (rule.cap_grants[i] for i in parts)]
                    )
                )
            else:
                out.append(rule.to_json(dst_ports=[rule.dst_ports[i] for i in parts]))
        return out


def _reduce_cap(grant: CapGrant, node: Node, tailnet: Tailnet) -> CapGrant:
    """A CapGrant as one node receives it: prefixes holding its addresses become those addresses."""
    dsts: set[tuple[int, int, int]] = set()
    routes = [prefix_range(r) for r in node.subnet_routes]
    for lo, hi, length in grant.dsts:
        for ip in node.ips:
            if lo <= ip <= hi:
                dsts.add((ip, ip, 128 if ip >= V6 else 32))
        if any(r[0] <= hi and lo <= r[1] for r in routes):
            dsts.add((lo, hi, length))
    return CapGrant(tuple(sorted(dsts)), grant.cap_map)


class Compiler:
    """Compiles the grants and ACLs of one policy for one tailnet."""

    def __init__(
        self,
        policy: Mapping[str, Any],
        tailnet: Tailnet,
        resolver: Resolver | None = None,
        gate: PostureGate | None = None,
    ) -> None:
        self.policy = policy
        self.tailnet = tailnet
        self.resolver = resolver or Resolver(policy, tailnet)
        self.gate = gate or PostureGate(policy, tailnet)
        self._routes = tailnet.subnet_routes

    def src_strings(self, srcs: list[str], posture: tuple[str, ...] = ()) -> tuple[str, ...]:
        """``SrcIPs`` of a rule (empty: nothing resolves).

        Tailscale lists what each source stands for without merging: every node address on its own,
        prefixes as written, ``*`` as the tailnet's ranges plus every approved subnet route,
        ``autogroup:danger-all`` as ``*``. A posture keeps the addresses of the satisfying devices only.
        """
        parts = [it for it in (self.resolver.items(s) for s in srcs if s != SELF) if it is not None]
        if posture:
            parts = [self.gate.narrow(it, posture) for it in parts]
        if not any(parts):
            return ()
        if DANGER_ALL in srcs and not posture:
            return ("*",)
        out = dict.fromkeys(range_text(a, b) for it in parts for a, b in it)
        if WILDCARD in srcs and not posture:
            out.update(dict.fromkeys(self._routes))
        return tuple(out)

    def dst_items(self, dst: str) -> list[tuple[int, int, int]] | None:
        """Destination prefixes ``(lo, hi, length)`` of a selector, unmerged; None when unresolvable."""
        items = self.resolver.items(dst)
        if items is None:
            return None
        return [p for a, b in items for p in _range_dsts(a, b)]

    def dst_ports(self, dst: str, spec: IPSpec, origin: JsonPath) -> list[DstPort]:
        """``DstPorts`` entries of one destination selector and port spec."""
        if dst == WILDCARD:
            return [DstPort("*", p, 0, V6_END, origin) for p in spec.ports]
        dsts = self.dst_items(dst)
        if dsts is None:
            return []
        out = []
        for lo, hi, length in dsts:
            text = prefix_text(lo, length)
            for p in spec.ports:
                out.append(DstPort(text, p, lo, hi, origin))
        return out

    def compile(self) -> list[Rule]:
        """Every rule of the tailnet, merged, in order."""
        rules: list[Rule] = []
        for g in policy_grants(self.policy):
            rules.extend(self._grant(g))
        return merge_rules(rules)

    def _grant(self, g: _Grant) -> list[Rule]:
        if not g.srcs or not g.dsts:
            return []
        if g.via:
            return self._via(g)
        out: list[Rule] = []
        src_ips = self.src_strings(g.srcs, g.posture)
        others = [(d, o) for d, o in zip(g.dsts, g.dst_origins, strict=True) if d != SELF]
        selfs = [o for d, o in zip(g.dsts, g.dst_origins, strict=True) if d == SELF]
        if src_ips and others:
            for spec in g.specs:
                ports = [p for d, o in others for p in self.dst_ports(d, spec, o)]
                if ports:
                    out.append(Rule(src_ips, spec.protos, ports, origins=[g.origin]))
        if g.app and others:
            out.extend(self._app(g, [d for d, _ in others], src_ips))
        if selfs:
            out.extend(self._self(g, selfs[0]))
        return out

    def _app(self, g: _Grant, dsts: list[str], src_ips: tuple[str, ...]) -> list[Rule]:
        assert g.app is not None
        grants: list[CapGrant] = []
        dst_sets: list[IPSet] = []
        for d in dsts:
            ips = self.resolver.resolve(d)
            items = self.dst_items(d)
            if ips is None or items is None:
                continue
            dst_sets.append(ips)
            grants.append(CapGrant(tuple(items), g.app))
        if not grants:
            return []
        out = [Rule(src_ips, None, cap_grants=grants, origins=[g.origin])]
        companions = [(c, COMPANION_CAPS[c]) for c in sorted(g.app) if c in COMPANION_CAPS]
        if companions:
            dst_strings = [t for s in dst_sets for t in s.strings()]
            if WILDCARD in dsts:
                dst_strings += [r for r in self._routes if r not in dst_strings]
            src_only = self.gate.narrow_set(self.resolver.resolve_all([s for s in g.srcs if s != SELF]), g.posture)
            for _, companion in companions:
                out.append(
                    Rule(
                        tuple(dst_strings),
                        None,
                        cap_grants=[CapGrant(tuple(_prefix_dsts(src_only)), {companion: None})],
                        origins=[g.origin],
                    )
                )
        return out

    def _self(self, g: _Grant, origin: JsonPath) -> list[Rule]:
        """``autogroup:self``: per user, their devices among the sources may reach their devices."""
        sets = [s for s in (self.resolver.resolve(x) for x in g.srcs if x != SELF) if s is not None]
        out: list[Rule] = []
        for uid in sorted(self.tailnet.by_user):
            own = self.tailnet.by_user[uid]
            members = [
                n for n in own if any(s.contains(ip) for s in sets for ip in n.ips) and self.gate.allows(n, g.posture)
            ]
            if not members:
                continue
            src = node_set(members)
            src_ips = tuple(_addr(ip) for ip in sorted(ip for n in members for ip in n.ips))
            for spec in g.specs:
                ports = [DstPort(_addr(ip), p, ip, ip, origin) for n in own for p in spec.ports for ip in n.ips]
                out.append(Rule(src_ips, spec.protos, ports, origins=[g.origin]))
            if g.app:
                grants = [CapGrant(tuple((ip, ip, 128 if ip >= V6 else 32) for ip in n.ips), g.app) for n in own]
                out.append(Rule(src_ips, None, cap_grants=grants, origins=[g.origin]))
                for c in sorted(g.app):
                    if c in COMPANION_CAPS:
                        dst_strings = tuple(_addr(ip) for n in own for ip in n.ips)
                        out.append(
                            Rule(
                                dst_strings,
                                None,
                                cap_grants=[CapGrant(tuple(_prefix_dsts(src)), {COMPANION_CAPS[c]: None})],
                                origins=[g.origin],
                            )
                        )
        return out

    def _via(self, g: _Grant) -> list[Rule]:
        """A grant with ``via``: only routers with a via tag receive it, for the routes they serve."""
        if not g.specs:
            return []
        sets = [s for s in (self.resolver.resolve(x) for x in g.srcs if x != SELF) if s is not None]
        merged = self.gate.narrow_set(IPSet().union(*sets) if sets else IPSet(), g.posture)
        if not merged:
            return []
        src_ips = dict.fromkeys(merged.strings())
        if WILDCARD in g.srcs and not g.posture:
            src_ips.update(dict.fromkeys(self._routes))
        routers = [n for n in self.tailnet.nodes if any(n.has_tag(t) for t in g.via)]
        entries: list[tuple[int, int, str, frozenset[int], JsonPath]] = []
        for d, origin in zip(g.dsts, g.dst_origins, strict=True):
            if d == INTERNET_GROUP:
                exits = frozenset(n.index for n in routers if n.is_exit_node)
                if exits:
                    for lo, hi, length in _prefix_dsts(INTERNET):
                        entries.append((lo, hi, prefix_text_full(lo, length), exits, origin))
                continue
            ips = self.resolver.resolve(d) if d != WILDCARD else None
            if ips is None:
                continue
            for lo, hi, length in _prefix_dsts(ips):
                served = frozenset(
                    n.index
                    for n in routers
                    if any(r[0] <= hi and lo <= r[1] for r in map(prefix_range, n.subnet_routes))
                )
                if served:
                    entries.append((lo, hi, prefix_text_full(lo, length), served, origin))
        out = []
        for spec in g.specs:
            ports = [
                DstPort(text, p, lo, hi, origin, only) for lo, hi, text, only, origin in entries for p in spec.ports
            ]
            if ports:
                out.append(Rule(tuple(src_ips), spec.protos, ports, origins=[g.origin]))
        return out


def _addr(ip: int) -> str:
    return addr_text(ip)


def merge_rules(rules: list[Rule]) -> list[Rule]:
    """Rules with the same ``SrcIPs`` and ``IPProto`` become one (``CapGrant`` rules stay apart)."""
    out: list[Rule] = []
    by_key: dict[tuple[tuple[str, ...], tuple[int, ...] | None], Rule] = {}
    for rule in rules:
        if rule.cap_grants is not None:
            out.append(rule)
            continue
        key = (tuple(rule.src_ips), tuple(rule.protos) if rule.protos is not None else None)
        if key in by_key:
            first = by_key[key]
            first.dst_ports.extend(rule.dst_ports)
            first.origins.extend(o for o in rule.origins if o not in first.origins)
            continue
        merged = Rule(rule.src_ips, rule.protos, list(rule.dst_ports), origins=list(rule.origins))
        by_key[key] = merged
        out.append(merged)
    return out


def compile_rules(
    policy: Mapping[str, Any], tailnet: Tailnet, resolver: Resolver | None = None, gate: PostureGate | None = None
) -> RuleSet:
    """The rule set of *policy* on *tailnet*, ready to hand to nodes (*gate*: how postures are decided)."""
    return RuleSet(Compiler(policy, tailnet, resolver, gate).compile(), tailnet)


__all__ = [
    "ALL_PORTS",
    "V4_END",
    "CapGrant",
    "Compiler",
    "DstPort",
    "Rule",
    "RuleSet",
    "compile_rules",
    "merge_rules",
    "policy_grants",
]
