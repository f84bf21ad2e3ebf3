"""Each node's netmap parts as compact JSON text, one node at a time, for tailnets of tens of thousands of nodes.

:func:`node_texts` yields ``(name, JSON text)`` per node as it is computed, so a caller can write it and
forget it: memory holds the compiled policy and one node's answer, never the whole output. The text is
what :meth:`~derptool.policy.engine.compile.Compiled.node_json` gives (``cap_map`` last), encoded by the C
encoder, with the
parts many nodes share encoded once:

- a packet filter is encoded once per distinct list of (rule, kept entries) and reused by every node
  receiving the same list (``*`` -> ``*:*`` on 10 000 nodes encodes one filter);
- a peer without routes looks the same to every viewer: its JSON is encoded once; a node's peer list is
  encoded once per distinct peer set and each node cuts itself out of it.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Iterator
from typing import Any

from derptool.policy.engine.compile import Compiled
from derptool.policy.engine.nodeattrs import NodeAttrs
from derptool.policy.engine.peers import Peer, bit_indexes, peer_for, routes_vary, viewer_primaries
from derptool.policy.engine.ssh import ssh_policy_json
from derptool.policy.engine.tailnet import Node

_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
CACHE_BYTES = 64 << 20
"""How much encoded text the shared-part caches may hold in all."""
NO_SSH = '{"rules":[]}'


class _PeerLists:
    """The peer lists of one compiled policy as JSON text, sharing what viewers have in common."""

    def __init__(self, compiled: Compiled) -> None:
        self.c = compiled
        self.pm = compiled.peers
        self.attrs = compiled.attrs or NodeAttrs(compiled.policy, compiled.tailnet, compiled.resolver)
        nodes = compiled.tailnet.nodes
        self.static: list[str | None] = [
            None
            if routes_vary(n, compiled.primaries) or (compiled.vias and n.subnet_routes)
            else _ENCODE(self.attrs.peer_view(Peer(n, list(n.addresses), []).to_json(), n, None))
            for n in nodes
        ]
        self.lists: dict[int, tuple[list[int], str, list[int]]] = {}
        self.bytes = 0

    def text(self, node: Node) -> str:
        seen = self.pm.seen[node.index]
        cached = self.lists.get(seen)
        if not self.attrs.sees_v4(node):
            return self._one(node, bit_indexes(seen))
        if cached is None:
            order = bit_indexes(seen)
            if any(self.static[i] is None for i in order) or self.bytes > CACHE_BYTES:
                return self._one(node, order)
            parts = [self.static[i] or "" for i in order]
            starts = []
            at = 1
            for part in parts:
                starts.append(at)
                at += len(part) + 1
            text = "[" + ",".join(parts) + "]"
            cached = (order, text, starts)
            self.lists[seen] = cached
            self.bytes += len(text)
        order, text, starts = cached
        k = bisect.bisect_left(order, node.index)
        if k == len(order) or order[k] != node.index:
            return text
        if len(order) == 1:
            return "[]"
        if k == len(order) - 1:
            return text[: starts[k] - 1] + "]"
        return text[: starts[k]] + text[starts[k + 1] :]

    def _one(self, node: Node, order: list[int]) -> str:
        nodes = self.c.tailnet.nodes
        primaries = viewer_primaries(node, self.c.tailnet, self.c.primaries, self.c.vias)
        v4 = self.attrs.sees_v4(node)
        parts = []
        for i in order:
            if i == node.index:
                continue
            fixed = self.static[i] if v4 else None
            if fixed is None:
                peer = peer_for(node, nodes[i], self.pm, primaries, self.c.vias)
                fixed = _ENCODE(self.attrs.peer_view(peer.to_json(), nodes[i], node))
            parts.append(fixed)
        return "[" + ",".join(parts) + "]"


def node_texts(
    compiled: Compiled, nodes: Iterable[Node] | None = None, *, peers: bool = True
) -> Iterator[tuple[str, str]]:
    """``(name, '{"packet_filter_rules":...,"ssh_policy":...,"peers":...}')`` for every node (or *nodes*),
    in order; without *peers* the ``peers`` member is left out (and never computed)."""
    rules = compiled.rules
    filters: dict[tuple[tuple[int, tuple[int, ...]], ...], str] = {}
    size = 0
    lists = _PeerLists(compiled) if peers else None
    attrs = compiled.attrs or NodeAttrs(compiled.policy, compiled.tailnet, compiled.resolver)
    for node in compiled.tailnet.nodes if nodes is None else nodes:
        handed = rules.per_node[node.index]
        if any(rules.rules[r].cap_grants is not None for r, _ in handed):
            filter_text = _ENCODE(rules.node_json(node))  # CapGrant destinations depend on the node
        else:
            key = tuple((r, tuple(parts)) for r, parts in handed)
            cached = filters.get(key)
            if cached is None:
                cached = _ENCODE(rules.node_json(node))
                if size < CACHE_BYTES:
                    filters[key] = cached
                    size += len(cached)
            filter_text = cached
        ssh_rules = compiled.ssh_rules(node)
        ssh_text = _ENCODE(ssh_policy_json(ssh_rules, compiled.control_url)) if ssh_rules else NO_SSH
        text = f'{{"packet_filter_rules":{filter_text},"ssh_policy":{ssh_text}'
        if lists is not None:
            text += f',"peers":{lists.text(node)}'
        yield node.name, text + f',"cap_map":{_ENCODE(attrs.cap_map(node))}}}'


def encode(value: Any) -> str:
    """Compact JSON text (C encoder, UTF-8 kept)."""
    return _ENCODE(value)


__all__ = ["CACHE_BYTES", "encode", "node_texts"]
