"""Why a connection is allowed or denied: the rules of a compiled policy that accept it.

:func:`explain` takes a source (node name, user, tag, group or address) and a ``HOST:PORT`` destination
(node name, host alias, tag or address) and answers, for each pair of source and destination addresses,
which rules accept the packet; the connection is allowed when every pair is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from derptool._types import JsonPath
from derptool.errors import UsageError
from derptool.policy.engine.addresses import V6, addr_text
from derptool.policy.engine.compile import Compiled
from derptool.policy.engine.filter import Rule, compile_rules
from derptool.policy.engine.ports import proto_allows
from derptool.policy.engine.posture import PostureGate, required_postures
from derptool.policy.engine.source import PolicySource
from derptool.policy.engine.tests import TestRunner
from derptool.policy.selectors import protocol_number, split_host_ports


@dataclass
class PairVerdict:
    """One source address to one destination address."""

    src: str
    dst: str
    rules: list[JsonPath] = field(default_factory=list)
    depends: list[tuple[JsonPath, list[str]]] = field(default_factory=list)
    """Rules that would accept the packet if the source device had posture attributes the tailnet file
    does not give: each with the attributes its answer depends on."""
    caps: list[tuple[JsonPath, list[str]]] = field(default_factory=list)
    """App grants from the source to the destination: each rule with the capabilities it grants."""

    @property
    def allowed(self) -> bool:
        """Whether a rule accepts the packet."""
        return bool(self.rules)


@dataclass
class Explanation:
    """The answer of :func:`explain`."""

    src: str
    dst: str
    proto: str
    port: int
    pairs: list[PairVerdict]

    @property
    def allowed(self) -> bool:
        """Allowed when every source address may reach every destination address."""
        return bool(self.pairs) and all(p.allowed for p in self.pairs)

    def to_json(self, source: PolicySource | None = None) -> dict[str, Any]:
        """``{"src", "dst", "proto", "allowed", "pairs": [{"src", "dst", "allowed", "rules"}]}``."""

        def rule(path: JsonPath) -> dict[str, Any]:
            out: dict[str, Any] = {"rule": f"{path[0]}[{path[1]}]" if len(path) > 1 else "default"}
            if source is not None and path:
                out["file"] = source.file
                out["line"] = source.lines.get(tuple(path[:2]))
            return out

        return {
            "src": self.src,
            "dst": self.dst,
            "proto": self.proto,
            "allowed": self.allowed,
            "pairs": [
                {"src": p.src, "dst": p.dst, "allowed": p.allowed, "rules": [rule(r) for r in p.rules]}
                | ({"depends_on": [rule(r) | {"attributes": a} for r, a in p.depends]} if p.depends else {})
                | ({"app": [rule(r) | {"caps": c} for r, c in p.caps]} if p.caps else {})
                for p in self.pairs
            ],
        } | ({"depends_on": self.depends_on} if self.depends_on else {})

    @property
    def depends_on(self) -> list[str]:
        """Posture attributes, missing from the tailnet file, that could turn a denied pair into an allowed one."""
        return sorted({a for p in self.pairs if not p.allowed for _, attrs in p.depends for a in attrs})


def explain(compiled: Compiled, src: str, dst: str, proto: str = "tcp") -> Explanation:
    """Which rules let *src* reach *dst* (``HOST:PORT``) over *proto*; raises :class:`UsageError`."""
    number = protocol_number(proto)
    if number is None:
        raise UsageError(f"--proto {proto!r}: use a protocol name (tcp, udp, icmp, ...) or number")
    split = split_host_ports(dst)
    if split is None or not split[1].isdigit() or int(split[1]) > 65535:
        raise UsageError(f"--dst {dst!r}: give HOST:PORT with one port number")
    host, port = split[0], int(split[1])
    runner = TestRunner(compiled)
    src_ips = runner.source_ips(src)
    if not src_ips:
        raise UsageError(f"--src {src!r} is no node, user, tag, group or address of the tailnet")
    dst_ips = runner.dest_ips(host)
    if not dst_ips:
        nodes = compiled.resolver.nodes(host) if host.startswith("tag:") else []
        dst_ips = [n.ips[0] for n in nodes] or None
    if not dst_ips:
        raise UsageError(f"--dst host {host!r} is no node, host alias, tag or address of the tailnet")
    gate = PostureGate(compiled.policy, compiled.tailnet)
    optimistic = (
        compile_rules(
            compiled.policy,
            compiled.tailnet,
            compiled.resolver,
            PostureGate(compiled.policy, compiled.tailnet, unknown_passes=True),
        ).rules
        if compiled.policy.get("postures")
        else []
    )
    pairs = []
    for s in src_ips:
        for d in dst_ips:
            if (s >= V6) != (d >= V6):
                continue  # a packet stays in its address family
            verdict = PairVerdict(addr_text(s), addr_text(d))
            for rule in compiled.rules.rules:
                if rule.cap_grants is not None or not rule.src.contains(s) or not proto_allows(rule.protos, number):
                    continue
                for entry in rule.dst_ports:
                    hit = entry.lo <= d <= entry.hi and entry.ports[0] <= port <= entry.ports[1]
                    if hit and entry.origin[:2] not in verdict.rules:
                        verdict.rules.append(entry.origin[:2])
            _app_caps(compiled.rules.rules, s, d, verdict)
            if optimistic and not verdict.allowed:
                _posture_dependence(compiled, gate, optimistic, s, d, number, port, verdict)
            pairs.append(verdict)
    return Explanation(src, dst, proto, port, pairs)


def _app_caps(rules: list[Rule], s: int, d: int, verdict: PairVerdict) -> None:
    """Record the app grants (``CapGrant`` rules) from *s* to *d* and the capabilities each grants."""
    for rule in rules:
        if rule.cap_grants is None or not rule.src.contains(s):
            continue
        names = sorted({c for g in rule.cap_grants if any(lo <= d <= hi for lo, hi, _ in g.dsts) for c in g.cap_map})
        for origin in rule.origins:
            if names and origin:
                verdict.caps.append((origin[:2], names))


def _posture_dependence(
    compiled: Compiled,
    gate: PostureGate,
    optimistic: list[Rule],
    s: int,
    d: int,
    number: int,
    port: int,
    verdict: PairVerdict,
) -> None:
    """Rules that accept the packet only if the source's unknown posture attributes meet their postures."""
    node = compiled.tailnet.node_at(s)
    if node is None:
        return
    for rule in optimistic:
        if rule.cap_grants is not None or not rule.src.contains(s) or not proto_allows(rule.protos, number):
            continue
        for entry in rule.dst_ports:
            if not (entry.lo <= d <= entry.hi and entry.ports[0] <= port <= entry.ports[1]):
                continue
            origin = entry.origin[:2]
            raw = _rule_at(compiled.policy, origin)
            attrs = gate.unknown_attributes(node, required_postures(compiled.policy, raw)) if raw else []
            if attrs and all(o != origin for o, _ in verdict.depends):
                verdict.depends.append((origin, attrs))


def _rule_at(policy: Mapping[str, Any], origin: JsonPath) -> Mapping[str, Any] | None:
    if len(origin) < 2 or not isinstance(origin[1], int):
        return None
    section = policy.get(str(origin[0]))
    if isinstance(section, list) and origin[1] < len(section) and isinstance(section[origin[1]], Mapping):
        return section[origin[1]]  # type: ignore[no-any-return]
    return None


__all__ = ["Explanation", "PairVerdict", "explain"]
