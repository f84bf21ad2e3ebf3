"""What the control plane sends each node: packet filter, SSH policy and peers, from a policy and a tailnet.

:func:`compile_policy` resolves and compiles everything once and returns a :class:`Compiled` whose
per-node views are cheap; :meth:`Compiled.node_json` gives one node's netmap parts in Tailscale's JSON
shapes and :meth:`Compiled.to_json` the ``derptool policy compile --format json`` document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from derptool.policy.engine.aliases import Resolver
from derptool.policy.engine.filter import RuleSet, compile_rules
from derptool.policy.engine.nodeattrs import NodeAttrs
from derptool.policy.engine.peers import Peer, PeerMap, ViaGrant, auto_approve, peers_for, primary_routes, via_grants
from derptool.policy.engine.peracl import AclPeerMap, AclRuleSet, AclSSHCompiler, with_user_aliases
from derptool.policy.engine.semantics import TAILSCALE, Semantics
from derptool.policy.engine.ssh import DEFAULT_CONTROL_URL, SSHCompiler, SSHRule, ssh_policy_json
from derptool.policy.engine.tailnet import Node, Tailnet


@dataclass
class Compiled:
    """A policy compiled for a tailnet (routes already auto-approved)."""

    policy: Mapping[str, Any]
    tailnet: Tailnet
    resolver: Resolver
    rules: RuleSet
    ssh: SSHCompiler
    primaries: dict[str, int]
    control_url: str = DEFAULT_CONTROL_URL
    vias: list[ViaGrant] | None = None
    attrs: NodeAttrs | None = None
    semantics: Semantics = TAILSCALE

    @cached_property
    def peers(self) -> PeerMap:
        """Who sees whom (computed when first asked for: ``--no-peers`` never pays for it)."""
        return AclPeerMap(self.rules) if self.semantics.one_rule_per_acl else PeerMap(self.rules)

    def node(self, name: str) -> Node:
        """The node called *name* (raises ``KeyError``)."""
        node = self.tailnet.node(name)
        if node is None:
            raise KeyError(name)
        return node

    def packet_filter(self, node: Node) -> list[dict[str, Any]]:
        """The node's ``PacketFilter`` rules."""
        return self.rules.node_json(node)

    def ssh_rules(self, node: Node) -> list[SSHRule]:
        """The node's SSH rules."""
        return self.ssh.for_node(node)

    def peer_list(self, node: Node) -> list[Peer]:
        """The peers the node sees."""
        return peers_for(node, self.peers, self.primaries, self.vias)

    def node_json(self, node: Node) -> dict[str, Any]:
        """``{"packet_filter_rules", "ssh_policy", "peers", "cap_map"}`` of one node."""
        attrs = self.attrs or NodeAttrs(self.policy, self.tailnet, self.resolver)
        return {
            "packet_filter_rules": self.packet_filter(node),
            "ssh_policy": ssh_policy_json(self.ssh_rules(node), self.control_url),
            "peers": [attrs.peer_view(p.to_json(), p.node, node) for p in self.peer_list(node)],
            "cap_map": attrs.cap_map(node),
        }

    def to_json(self, names: list[str] | None = None) -> dict[str, Any]:
        """The ``derptool policy compile --format json`` document (every node, or those named)."""
        nodes = [self.node(n) for n in names] if names else self.tailnet.nodes
        return {"nodes": {n.name: self.node_json(n) for n in nodes}}


def compile_policy(
    policy: Mapping[str, Any],
    tailnet: Tailnet,
    *,
    control_url: str | None = None,
    semantics: Semantics = TAILSCALE,
) -> Compiled:
    """Compile canonical *policy* data for *tailnet*.

    Advertised routes that ``autoApprovers`` cover count as approved, as they are once the control plane
    has seen them advertised. SSH ``check`` actions point at *control_url*, else the tailnet's
    ``control_url``, else Tailscale's (``https://login.tailscale.com``). *semantics* says whose control
    plane to imitate where they differ (:mod:`.semantics`: Tailscale's, or headscale's).
    """
    control_url = control_url or tailnet.control_url or DEFAULT_CONTROL_URL
    tailnet = auto_approve(policy, tailnet)
    if semantics.one_rule_per_acl:
        tailnet = with_user_aliases(tailnet) if semantics.user_at_suffix else tailnet
        resolver = Resolver(policy, tailnet)
        rules: RuleSet = AclRuleSet(policy, tailnet, resolver, semantics)
        ssh: SSHCompiler = AclSSHCompiler(policy, tailnet, resolver, semantics)
    else:
        resolver = Resolver(policy, tailnet)
        rules = compile_rules(policy, tailnet, resolver)
        ssh = SSHCompiler(policy, tailnet, resolver)
    return Compiled(
        policy,
        tailnet,
        resolver,
        rules,
        ssh,
        primary_routes(tailnet),
        control_url,
        via_grants(policy, resolver),
        NodeAttrs(policy, tailnet, resolver),
        semantics,
    )


__all__ = ["Compiled", "compile_policy"]
