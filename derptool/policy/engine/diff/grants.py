"""Egress and app capabilities gained and lost.

Egress: per node, the ``(peer, route)`` pairs of the subnet and exit routes its peers offer it (what
``derptool policy egress`` lists). Capabilities: per node, the ``CapGrant`` capabilities it receives, as
``(source, destination, name, value)``; a node whose grants are identical on both sides is skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from derptool.policy.engine.addresses import IPSet
from derptool.policy.engine.diff.access import TAILNET_RANGES, intersect
from derptool.policy.engine.diff.view import CapEntry, PolicyView
from derptool.policy.engine.tailnet import Node


@dataclass(frozen=True, order=True)
class EgressRow:
    """A node may send traffic for *route* through the peer *via* (an exit node or a subnet router)."""

    src: str
    via: str
    route: str

    def to_json(self) -> dict[str, str]:
        """``{"src", "via", "route"}``."""
        return {"src": self.src, "via": self.via, "route": self.route}


@dataclass(frozen=True, order=True)
class CapRow:
    """*src* holds the app capability *capability* (with *value*, JSON text) on *dst*."""

    src: str
    dst: str
    capability: str
    value: str

    def to_json(self) -> dict[str, Any]:
        """``{"src", "dst", "capability", "value"}`` (the value as JSON data)."""
        return {"src": self.src, "dst": self.dst, "capability": self.capability, "value": json.loads(self.value)}


def _routes(view: PolicyView) -> bool:
    return any(n.subnet_routes or n.exit_routes for n in view.tailnet.nodes)


def diff_egress(old: PolicyView, new: PolicyView) -> tuple[list[EgressRow], list[EgressRow]]:
    """Routes gained and lost per node (nothing to compute when no node serves a route on either side)."""
    if not _routes(old) and not _routes(new):
        return [], []
    gained: set[EgressRow] = set()
    lost: set[EgressRow] = set()
    for node in old.tailnet.nodes:
        a = {EgressRow(node.name, via, r) for via, r in old.egress(node)}
        b = {EgressRow(node.name, via, r) for via, r in new.egress(new.tailnet.nodes[node.index])}
        gained |= b - a
        lost |= a - b
    return sorted(gained), sorted(lost)


def _cap_rows(view: PolicyView, node: Node, entries: list[CapEntry]) -> set[CapRow]:
    tailnet = view.tailnet
    subnets = IPSet.parse(tailnet.subnet_routes).minus(TAILNET_RANGES)
    routes = [(r, IPSet.parse([r]).ranges[0]) for r in node.subnet_routes]
    out: set[CapRow] = set()
    for e in entries:
        dsts = [node.name] if any(lo <= ip <= hi for lo, hi in e.dsts for ip in node.ips) else []
        dsts += [r for r, (a, b) in routes if any(lo <= b and a <= hi for lo, hi in e.dsts)]
        if not dsts:
            continue
        srcs = [n.name for n in tailnet.nodes if any(e.src.contains(ip) for ip in n.ips)]
        srcs += [
            str(r) for lo, hi in e.src.ranges for r in IPSet.of(intersect(lo, hi, subnets.ranges)).prefix_strings_full()
        ]
        out.update(CapRow(s, d, e.name, e.value) for s in srcs for d in dsts)
    return out


def diff_caps(old: PolicyView, new: PolicyView) -> tuple[list[CapRow], list[CapRow]]:
    """App capabilities gained and lost."""
    gained: set[CapRow] = set()
    lost: set[CapRow] = set()
    for node in old.tailnet.nodes:
        ea, eb = list(old.caps(node)), list(new.caps(new.tailnet.nodes[node.index]))
        if ea == eb:
            continue
        a, b = _cap_rows(old, node, ea), _cap_rows(new, new.tailnet.nodes[node.index], eb)
        gained |= b - a
        lost |= a - b
    return sorted(gained), sorted(lost)


__all__ = ["CapRow", "EgressRow", "diff_caps", "diff_egress"]
