"""Egress: the exit nodes and subnet routes each node's traffic may leave through.

A node may use an exit node when that peer's ``AllowedIPs`` (as the node receives them) hold
``0.0.0.0/0`` or ``::/0``, and a subnet route when a peer's ``AllowedIPs`` hold it. ``via`` grants
already narrow both. :func:`via_violations` lists the nodes that may leave through an exit node that
does not carry a required tag: the check behind ``derptool policy egress --require-via TAG``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from derptool.policy.engine.addresses import is_exit_route
from derptool.policy.engine.compile import Compiled
from derptool.policy.engine.tailnet import Node


@dataclass
class NodeEgress:
    """Where one node's traffic may go beyond the tailnet."""

    node: Node
    exit_nodes: list[Node] = field(default_factory=list)
    subnet_routes: list[tuple[str, Node]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"node", "exit_nodes": [{"name", "tags"}], "subnet_routes": [{"route", "via"}]}``."""
        return {
            "node": self.node.name,
            "exit_nodes": [{"name": n.name, "tags": list(n.tags)} for n in self.exit_nodes],
            "subnet_routes": [{"route": r, "via": n.name} for r, n in self.subnet_routes],
        }


def egress(compiled: Compiled, names: list[str] | None = None) -> list[NodeEgress]:
    """The egress of every node (or those named)."""
    nodes = [compiled.node(n) for n in names] if names else compiled.tailnet.nodes
    out = []
    for node in nodes:
        e = NodeEgress(node)
        for peer in compiled.peer_list(node):
            own = set(peer.node.addresses)
            routes = [r for r in peer.allowed_ips if r not in own]
            if any(is_exit_route(r) for r in routes):
                e.exit_nodes.append(peer.node)
            e.subnet_routes.extend((r, peer.node) for r in routes if not is_exit_route(r))
        out.append(e)
    return out


def via_violations(report: list[NodeEgress], tag: str) -> list[tuple[Node, Node]]:
    """``(node, exit node)`` pairs where the exit node does not carry *tag*."""
    return [(e.node, x) for e in report for x in e.exit_nodes if not x.has_tag(tag)]


__all__ = ["NodeEgress", "egress", "via_violations"]
