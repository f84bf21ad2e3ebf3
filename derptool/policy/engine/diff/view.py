"""What the diff reads of a compiled policy: each node's received packet filter, capability grants, SSH rules
and the routes its peers offer it, as plain typed values.

:class:`PolicyView` is the whole interface between the diff and the engine: the diff never looks inside
:class:`~derptool.policy.engine.compile.Compiled`. :class:`EngineView` adapts the engine of today; an engine
that compiles differently only needs another adapter giving the same per-node values.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from dataclasses import replace
from typing import Any, NamedTuple, Protocol

from derptool._types import JsonPath
from derptool.policy.engine.addresses import IPSet, addr_int
from derptool.policy.engine.compile import Compiled
from derptool.policy.engine.peers import PeerMap, peers_for
from derptool.policy.engine.ports import DEFAULT_PROTOS
from derptool.policy.engine.tailnet import Node, Tailnet
from derptool.policy.engine.tests import run_tests


class FilterEntry(NamedTuple):
    """One ``DstPorts`` entry a node receives: sources, protocols, destination range and ports, and its rule."""

    src: IPSet
    protos: tuple[int, ...]
    lo: int
    hi: int
    first: int
    last: int
    origin: JsonPath


class CapEntry(NamedTuple):
    """One capability a node's ``CapGrant`` gives: sources, destination ranges, name and value (JSON text)."""

    src: IPSet
    dsts: tuple[tuple[int, int], ...]
    name: str
    value: str
    origin: JsonPath


class SSHEntry(NamedTuple):
    """One SSH rule a node receives: principal addresses, login-to-local-user map, action, and its rule."""

    principals: frozenset[int]
    users: tuple[tuple[str, str], ...]
    action: str
    origin: JsonPath


class PolicyView(Protocol):
    """A compiled policy as the diff sees it (per node, in Tailscale's terms)."""

    @property
    def tailnet(self) -> Tailnet:
        """The tailnet as compiled (routes auto-approved); same nodes, in the same order, on both sides."""
        ...

    def filter(self, node: Node) -> Sequence[FilterEntry]:
        """The node's packet filter, one entry per destination and port range."""
        ...

    def filter_key(self, node: Node) -> Hashable:
        """A cheap key of the node's filter: equal keys (of two views sharing a :class:`Keys`) mean equal filters."""
        ...

    def caps(self, node: Node) -> Sequence[CapEntry]:
        """The capabilities the node's ``CapGrant`` rules give."""
        ...

    def ssh(self, node: Node) -> Sequence[SSHEntry]:
        """The node's SSH rules, in the order Tailscale evaluates them."""
        ...

    def egress(self, node: Node) -> Sequence[tuple[str, str]]:
        """``(peer name, route)`` for every subnet or exit route a peer offers the node."""
        ...

    def failing_tests(self, tests: list[Any], ssh_tests: list[Any]) -> dict[tuple[str, int], str]:
        """Run these ``tests`` and ``sshTests`` on the compiled policy: ``(section, index)`` -> first failure."""
        ...


class _Routers:
    """A :class:`PeerMap` that shows only the peers serving a subnet or exit route."""

    def __init__(self, peers: PeerMap) -> None:
        self.peers = peers
        self.tailnet = peers.tailnet
        self.nodes = peers.tailnet.nodes
        self.mask = sum(1 << n.index for n in self.nodes if n.subnet_routes or n.exit_routes)

    def peers_of(self, node: Node) -> list[Node]:
        mask = self.peers.peers[node.index] & self.mask
        out = []
        while mask:
            low = mask & -mask
            out.append(self.nodes[low.bit_length() - 1])
            mask ^= low
        return out

    def can_access_route(self, viewer: Node, route: str) -> bool:
        return self.peers.can_access_route(viewer, route)


class Keys:
    """Numbers for rule contents, shared by the views being compared (equal content, equal number)."""

    def __init__(self) -> None:
        self.numbers: dict[Hashable, int] = {}

    def number(self, content: Hashable) -> int:
        """The number of *content*."""
        return self.numbers.setdefault(content, len(self.numbers))


class EngineView:
    """:class:`PolicyView` over derptool's engine (:class:`Compiled`)."""

    def __init__(self, compiled: Compiled, keys: Keys | None = None) -> None:
        self.compiled = compiled
        self.keys = keys or Keys()
        self._rule_keys: dict[int, int] = {}
        self._ips: dict[str, int] = {}
        self._routers: _Routers | None = None

    @property
    def tailnet(self) -> Tailnet:
        """The compiled tailnet."""
        return self.compiled.tailnet

    def filter(self, node: Node) -> list[FilterEntry]:
        """The node's ``DstPorts`` entries, default protocols spelled out."""
        out = []
        for rule, parts in self.compiled.rules.for_node(node):
            if rule.cap_grants is not None:
                continue
            src = rule.src
            protos = tuple(rule.protos) if rule.protos is not None else DEFAULT_PROTOS
            for i in parts:
                d = rule.dst_ports[i]
                out.append(FilterEntry(src, protos, d.lo, d.hi, d.ports[0], d.ports[1], d.origin[:2]))
        return out

    def filter_key(self, node: Node) -> tuple[tuple[int, tuple[int, ...]], ...]:
        """``(rule content number, destination parts)`` of every rule the node receives."""
        out = []
        for rule, parts in self.compiled.rules.for_node(node):
            number = self._rule_keys.get(id(rule))
            if number is None:
                content = (
                    tuple(rule.src_ips),
                    None if rule.protos is None else tuple(rule.protos),
                    tuple((d.lo, d.hi, d.ports, d.origin) for d in rule.dst_ports),
                    None if rule.cap_grants is None else repr(rule.cap_grants),
                )
                number = self._rule_keys[id(rule)] = self.keys.number(content)
            out.append((number, tuple(parts)))
        return tuple(out)

    def caps(self, node: Node) -> list[CapEntry]:
        """The node's ``CapGrant`` capabilities, one entry per capability name."""
        out = []
        for rule, parts in self.compiled.rules.for_node(node):
            if rule.cap_grants is None:
                continue
            src = rule.src
            origin = rule.origins[0][:2] if rule.origins else ()
            for i in parts:
                g = rule.cap_grants[i]
                dsts = tuple((lo, hi) for lo, hi, _ in g.dsts)
                for name, value in g.cap_map.items():
                    out.append(CapEntry(src, dsts, name, json.dumps(value, sort_keys=True), origin))
        return out

    def _ip(self, text: str) -> int:
        found = self._ips.get(text)
        if found is None:
            found = self._ips[text] = addr_int(text)
        return found

    def ssh(self, node: Node) -> list[SSHEntry]:
        """The node's SSH rules."""
        return [
            SSHEntry(
                frozenset(self._ip(p) for p in r.principals),
                tuple(sorted(r.ssh_users.items())),
                r.action,
                r.origin[:2],
            )
            for r in self.compiled.ssh_rules(node)
        ]

    def egress(self, node: Node) -> list[tuple[str, str]]:
        """Routes beyond the peers' own addresses in the ``AllowedIPs`` the node receives (the engine's
        :func:`peers_for`, asked about the peers that serve routes only)."""
        c = self.compiled
        if self._routers is None:
            self._routers = _Routers(c.peers)
        out: list[tuple[str, str]] = []
        for peer in peers_for(node, self._routers, c.primaries, c.vias):  # type: ignore[arg-type]
            own = set(peer.node.addresses)
            out.extend((peer.node.name, r) for r in peer.allowed_ips if r not in own)
        return out

    def failing_tests(self, tests: list[Any], ssh_tests: list[Any]) -> dict[tuple[str, int], str]:
        """Run the given tests with the engine's runner on this compiled policy."""
        policy = {**self.compiled.policy, "tests": tests, "sshTests": ssh_tests}
        report = run_tests(replace(self.compiled, policy=policy))
        out: dict[tuple[str, int], str] = {}
        for f in report.failures:
            key = (str(f.path[0]), int(f.path[1])) if len(f.path) > 1 else (str(f.path[0]), 0)
            out.setdefault(key, f.message)
        return out


__all__ = ["CapEntry", "EngineView", "FilterEntry", "PolicyView", "SSHEntry"]
