"""Rules shaped one per ACL, as headscale compiles them, with the differences a :class:`Semantics` names.

Each ACL becomes one rule: its sources merged into the fewest prefixes, every destination resolved on
its own and written as prefixes, ``IPProto`` from the profile's defaults. ``autogroup:self`` is compiled
per receiving node (its owner's untagged devices), before the ACL's other destinations. A node then
receives the destinations that hold one of its addresses or overlap a route it serves or, with
``advertised_routes_receive``, merely advertises. SSH rules follow the same profile
(:class:`AclSSHCompiler`).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from typing import Any

from derptool.errors import UsageError
from derptool.policy.engine.addresses import (
    ALL_V4,
    ALL_V6,
    INTERNET,
    V6_END,
    IPSet,
    addr_text,
    prefix_range,
    prefix_text_full,
    range_prefixes,
)
from derptool.policy.engine.aliases import SELF, WILDCARD, Resolver, str_list
from derptool.policy.engine.filter import DstPort, Rule, RuleSet
from derptool.policy.engine.peers import PeerMap, bit_indexes
from derptool.policy.engine.ports import ALL_PORTS, parse_proto, split_destination
from derptool.policy.engine.semantics import Semantics
from derptool.policy.engine.ssh import SSHCompiler, SSHRule
from derptool.policy.engine.tailnet import Node, Tailnet

NONROOT = "autogroup:nonroot"
MAX_SSH_PRINCIPALS = 65_536
"""The most source addresses one SSH rule lists (every address of its sources, one by one)."""


def _prefixes(ips: IPSet) -> list[tuple[int, int, str]]:
    out = []
    for a, b in ips.ranges:
        for net, length in range_prefixes(a, b):
            bits = 32 if net < (1 << 32) else 128
            out.append((net, net + (1 << (bits - length)) - 1, prefix_text_full(net, length)))
    return out


def with_user_aliases(tailnet: Tailnet) -> Tailnet:
    """*tailnet* where ``"name@"`` also names the user called ``name`` (headscale drops the ``@``)."""
    out = Tailnet(list(tailnet.users), list(tailnet.nodes), control_url=tailnet.control_url)
    for u in tailnet.users:
        for key in (u.name, u.email):
            if key and "@" not in key:
                out.by_login.setdefault(f"{key}@".lower(), u)
    return out


class AclResolver:
    """Resolves one alias as the profile says (``*``, hosts naming a node, ``name@``)."""

    def __init__(self, resolver: Resolver, sem: Semantics) -> None:
        self.r = resolver
        self.sem = sem
        self.tailnet = resolver.tailnet

    def resolve(self, alias: str) -> IPSet | None:
        """The addresses *alias* stands for, or None when it names nothing."""
        alias = alias.strip()
        if alias == WILDCARD and self.sem.wildcard_prefixes is not None:
            return IPSet.parse(self.sem.wildcard_prefixes)
        ips = self.r.resolve(alias)
        if ips is None or not self.sem.host_means_node:
            return ips
        if alias in self.r.hosts:
            return ips.union(*(n.address_set for n in self.tailnet.nodes if any(ips.contains(i) for i in n.ips)))
        if ips.ranges and len(ips.ranges) == 1 and ips.ranges[0][0] == ips.ranges[0][1]:
            owner = self.tailnet.node_at(ips.ranges[0][0])
            if owner is not None:
                return ips.union(owner.address_set)
        return ips


def protocols(proto: Any, sem: Semantics) -> list[int] | None:
    """``IPProto`` of an ACL's ``proto`` under *sem*."""
    if not isinstance(proto, str) or not proto.strip():
        return list(sem.default_protocols) if sem.default_protocols is not None else None
    if proto.strip().lower() == "icmp":
        return list(sem.icmp_protocols)
    return parse_proto(proto.strip().lower())


def _uses_self(acls: list[Mapping[str, Any]], ssh: Any) -> bool:
    """Whether ``autogroup:self`` appears in any ACL or SSH rule (headscale then compiles per node)."""
    for a in acls:
        if SELF in str_list(a.get("src", a.get("users"))):
            return True
        for d in str_list(a.get("dst", a.get("ports"))):
            split = split_destination(d)
            if split is not None and split[0] == SELF:
                return True
    rules = [r for r in ssh if isinstance(r, Mapping)] if isinstance(ssh, list) else []
    return any(SELF in str_list(r.get("src")) or SELF in str_list(r.get("dst")) for r in rules)


class AclRuleSet(RuleSet):
    """The rules of a policy compiled one per ACL, handed to each node (per node for ``autogroup:self``)."""

    def __init__(self, policy: Mapping[str, Any], tailnet: Tailnet, resolver: Resolver, sem: Semantics) -> None:
        if policy.get("grants") and not sem.supports_grants:
            raise UsageError(f"{sem.name} does not compile grants: remove them, or compile with --control tailscale")
        self.tailnet = tailnet
        self.sem = sem
        self.ar = AclResolver(resolver, sem)
        self.rules: list[Rule] = []
        self.per_node = [[] for _ in tailnet.nodes]
        acls = policy.get("acls")
        self.acls = [a for a in acls if isinstance(a, Mapping)] if isinstance(acls, list) else None
        uses_self = _uses_self(self.acls or [], policy.get("ssh"))
        self._memo: dict[tuple[int, int | None], int | None] = {}
        if self.acls is None:
            star: tuple[str, ...] = ("*",)
            if not sem.allow_all_literal:
                star = tuple(IPSet.parse(sem.wildcard_prefixes or ()).prefix_strings_full())
            self.rules.append(Rule(star, None, [DstPort("*", ALL_PORTS, 0, V6_END, ())]))
            shared = [0]
        else:
            shared = [r for r in (self._rule(i, None) for i in range(len(self.acls))) if r is not None]
        self.per_node_self = uses_self
        """Whether each node has rules of its own (``autogroup:self``) rather than the shared ones."""
        self.unreduced: list[list[int]] = []
        """Per node, the indexes of the rules compiled for it before they are reduced to its destinations."""
        self._addresses = sorted((ip, n.index) for n in tailnet.nodes for ip in n.ips)
        self._address_keys = [ip for ip, _ in self._addresses]
        self._routes = {n.index: ranges for n in tailnet.nodes if (ranges := self._route_ranges(n))}
        self._received: dict[int, dict[int, list[int]]] = {}
        for node in tailnet.nodes:
            own = shared
            if uses_self:  # per node: each ACL's autogroup:self rule for the node's user, then its other rule
                uid = node.user.id if node.user is not None else None
                owners = (uid, None) if uid is not None else (None,)
                own = [r for i in range(len(self.acls or [])) for u in owners if (r := self._rule(i, u)) is not None]
            self.unreduced.append(own)
            self.per_node[node.index] = [(r, parts) for r in own if (parts := self._receivers(r).get(node.index))]

    def _rule(self, i: int, uid: int | None) -> int | None:
        """The index of ACL *i*'s rule: its ``autogroup:self`` part for user *uid*, or (None) its other
        destinations; None when it has none. Each is compiled once and shared by the nodes."""
        key = (i, uid)
        if key not in self._memo:
            rule = self._compile_acl(i, uid)
            self._memo[key] = None if rule is None else len(self.rules)
            if rule is not None:
                self.rules.append(rule)
        return self._memo[key]

    def _compile_acl(self, i: int, uid: int | None) -> Rule | None:
        """ACL *i* as one rule: with *uid*, only its ``autogroup:self`` destinations for that user's untagged
        devices (sources narrowed to them, as headscale compiles it per node); else its other destinations."""
        acl = (self.acls or [])[i]
        if acl.get("action") != "accept":
            return None
        srcs = [s for s in (self.ar.resolve(x) for x in str_list(acl.get("src", acl.get("users")))) if s is not None]
        src = IPSet().union(*srcs) if srcs else IPSet()
        if not src:
            return None
        protos = protocols(acl.get("proto"), self.sem)
        dsts = [d for d in (split_destination(e) for e in str_list(acl.get("dst", acl.get("ports")))) if d is not None]
        origin = ("acls", i)
        if uid is not None:
            selfs = [d for d in dsts if d[0] == SELF]
            same = [n for n in self.tailnet.by_user.get(uid, []) if not n.tagged]
            members = [n for n in same if any(src.contains(ip) for ip in n.ips)]
            if not selfs or not members:
                return None
            own_src = IPSet().union(*(n.address_set for n in members))
            ports = [
                DstPort(addr_text(ip), p, ip, ip, origin)
                for _, port_ranges in selfs
                for n in same
                for p in port_ranges
                for ip in n.ips
            ]
            return Rule(tuple(t for *_, t in _prefixes(own_src)), protos, ports, origins=[origin])
        ports = []
        for host, port_ranges in dsts:
            if host == SELF:
                continue
            ips = self.ar.resolve(host)
            if ips is None:
                continue
            for lo, hi, text in _prefixes(ips):
                ports.extend(DstPort(text, p, lo, hi, origin) for p in port_ranges)
        if not ports:
            return None
        return Rule(tuple(t for *_, t in _prefixes(src)), protos, ports, origins=[origin])

    def _route_ranges(self, node: Node) -> list[tuple[int, int]]:
        """The ranges of the routes *node* receives rules for (headscale: advertised ones too)."""
        routes = list(node.routable_ips) if self.sem.advertised_routes_receive else []
        return [prefix_range(r) for r in (*routes, *node.subnet_routes)]

    def _receivers(self, r: int) -> dict[int, list[int]]:
        """For rule *r*: each node that receives part of it, and the indexes of the destinations it receives
        (those holding one of its addresses or overlapping one of its routes). Found by binary search over the
        sorted addresses, once per rule, not by testing every node against every rule."""
        found = self._received.get(r)
        if found is None:
            found = {}
            for k, d in enumerate(self.rules[r].dst_ports):
                lo = bisect.bisect_left(self._address_keys, d.lo)
                hi = bisect.bisect_right(self._address_keys, d.hi)
                hit = {self._addresses[a][1] for a in range(lo, hi)}
                hit.update(i for i, ranges in self._routes.items() if any(a <= d.hi and d.lo <= b for a, b in ranges))
                for i in hit:
                    found.setdefault(i, []).append(k)
            self._received[r] = found
        return found


class AclPeerMap(PeerMap):
    """Who sees whom as headscale decides it: a pair are peers when one may reach the other's addresses or
    approved subnet routes (or an exit node through a rule to the internet); with ``autogroup:self`` each
    node's own rules decide what it sees, one direction at a time."""

    def __init__(self, rules: RuleSet) -> None:
        super().__init__(rules)  # the route matches that AllowedIPs are computed from
        assert isinstance(rules, AclRuleSet)
        nodes = self.tailnet.nodes
        # Node sets as bit masks, per rule: who it lets in (an address in its sources) and whom it reaches
        # (an address or a subnet route in its destinations, every exit node for a rule to the internet).
        # A pairwise test of every two nodes would be O(n^2) calls at 10 000 nodes.
        froms: list[int] = []
        tos: list[int] = []
        for reach in (_Reach(r) for r in rules.rules):
            froms.append(self.addressed(reach.src))
            tos.append(self.addressed(reach.dst) | self.routed(reach.dst) | (self.exit_nodes if reach.internet else 0))
        self.peers = [0] * len(nodes)
        if rules.per_node_self:  # each node sees whom its own rules let it reach
            for node, own in zip(nodes, rules.unreduced, strict=True):
                bit = 1 << node.index
                for r in own:
                    if froms[r] & bit:
                        self.peers[node.index] |= tos[r]
        else:  # a pair are peers when a rule lets either reach the other
            shared = rules.unreduced[0] if rules.unreduced else []
            for r in dict.fromkeys(shared):
                if not froms[r] or not tos[r]:
                    continue
                for i in bit_indexes(froms[r]):
                    self.peers[i] |= tos[r]
                for j in bit_indexes(tos[r]):
                    self.peers[j] |= froms[r]
        for node in nodes:
            self.peers[node.index] &= ~(1 << node.index)
        self.seen = [p | (1 << k) for k, p in enumerate(self.peers)]


class _Reach:
    """The sources and destinations of one rule, as headscale's matchers test them."""

    def __init__(self, rule: Rule) -> None:
        self.src = rule.src
        self.dst = IPSet.of((d.lo, d.hi) for d in rule.dst_ports)
        self.internet = self.dst == INTERNET or self.dst.covers(*ALL_V4.ranges[0]) or self.dst.covers(*ALL_V6.ranges[0])


class _HeadscaleSSHRule(SSHRule):
    """An SSH rule whose action is written as headscale writes it (no hold-and-delegate)."""

    session_ns: int = 0

    def to_json(self, control_url: str = "") -> dict[str, Any]:
        action: dict[str, Any] = {
            "accept": True,
            "allowAgentForwarding": True,
            "allowLocalPortForwarding": True,
            "allowRemotePortForwarding": True,
        }
        if self.session_ns:
            action["sessionDuration"] = self.session_ns
        return {
            "principals": [{"nodeIP": ip} for ip in self.principals],
            "sshUsers": dict(self.ssh_users),
            "action": action,
        }


_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def _duration_ns(text: Any) -> int:
    """Nanoseconds of a Go-style duration such as ``12h`` or ``1h30m`` (0 when absent or malformed)."""
    if not isinstance(text, str):
        return 0
    total = 0
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|h|m|s)", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return 0
    for number, unit in parts:
        total += int(float(number) * _UNITS[unit])
    return total


class AclSSHCompiler(SSHCompiler):
    """The ``ssh`` rules compiled per node as the profile says (headscale: accept-shaped check actions)."""

    def __init__(self, policy: Mapping[str, Any], tailnet: Tailnet, resolver: Resolver, sem: Semantics) -> None:
        self.tailnet = tailnet
        self.resolver = resolver
        self.ar = AclResolver(resolver, sem)
        raw = policy.get("ssh")
        self.raw = [r for r in raw if isinstance(r, Mapping)] if isinstance(raw, list) else []

    def for_node(self, node: Node) -> list[SSHRule]:
        """The SSH rules *node* receives, in policy order."""
        out: list[SSHRule] = []
        for i, rule in enumerate(self.raw):
            action = rule.get("action")
            if action not in ("accept", "check"):
                continue
            srcs = [s for s in (self.ar.resolve(x) for x in str_list(rule.get("src"))) if s is not None]
            src = IPSet().union(*srcs) if srcs else IPSet()
            if not src:
                continue
            users = str_list(rule.get("users"))
            user_map: dict[str, str] = {}
            if NONROOT in users:
                user_map.update({"*": "=", "root": ""})
            if "root" in users:
                user_map["root"] = "root"
            for u in users:
                if u not in ("root", NONROOT):
                    user_map[u] = u
            session = _duration_ns(rule.get("checkPeriod")) if action == "check" else 0
            dsts = str_list(rule.get("dst"))
            if SELF in dsts and not node.tagged and node.user is not None:
                same = [n for n in self.tailnet.by_user.get(node.user.id, []) if not n.tagged]
                members = [n for n in same if any(src.contains(ip) for ip in n.ips)]
                own = IPSet().union(*(n.address_set for n in members)) if members else IPSet()
                if own:
                    out.append(self._principals_rule(own, user_map, action, session, ("ssh", i)))
            others = [d for d in dsts if d != SELF]
            dst_sets = [s for s in (self.ar.resolve(d) for d in others) if s is not None]
            if dst_sets and any(s.contains(ip) for s in dst_sets for ip in node.ips):
                out.append(self._principals_rule(src, user_map, action, session, ("ssh", i)))
        return out

    def _principals_rule(self, src: IPSet, users: dict[str, str], action: str, session: int, origin: Any) -> SSHRule:
        principals: list[str] = []
        for a, b in src.ranges:
            if b - a + len(principals) >= MAX_SSH_PRINCIPALS:
                raise UsageError(f"an SSH rule ({origin[0]}[{origin[1]}]) has more than {MAX_SSH_PRINCIPALS} sources")
            principals.extend(addr_text(ip) for ip in range(a, b + 1))
        rule = _HeadscaleSSHRule(principals, users, action, None, origin)
        rule.session_ns = session
        return rule


__all__ = ["AclPeerMap", "AclResolver", "AclRuleSet", "AclSSHCompiler", "protocols", "with_user_aliases"]
