"""Node capabilities: what ``nodeAttrs`` (and the users' roles) put in each node's capability map.

Each ``nodeAttrs`` entry gives its ``target`` nodes (users, groups, tags, autogroups, hosts, addresses,
``*``) its ``attr`` names, as capabilities without a value (``null``), and its ``app`` capabilities, whose
value lists are joined across entries in policy order. ``"randomizeClientPort": true`` at the top of the
policy gives every node ``randomize-client-port``. The users' roles add ``is-admin`` and ``is-owner``
(:func:`~derptool.policy.engine.roles.role_caps`). Capabilities that come from tailnet settings rather than
the policy (``default-auto-update``, ``tailnet-display-name``, the SSH and file-sharing defaults) are not
derptool's to know and are left out.

What a peer shows of another node (:meth:`NodeAttrs.peer_view`), as the recordings show it:

- ``cap_map``: the names ``suggest-exit-node`` on an exit node whose exit routes the viewer may use;
  once any node has ``suggest-exit-node`` from ``nodeAttrs``, only those exit nodes are suggested.
- ``disable-ipv4``: the node's IPv4 address leaves its addresses and ``AllowedIPs`` for every viewer, and
  the node itself sees its peers without their IPv4 addresses (it has none to talk to them from).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from derptool.policy.engine.addresses import is_exit_route
from derptool.policy.engine.aliases import WILDCARD, Resolver, str_list
from derptool.policy.engine.roles import role_caps
from derptool.policy.engine.tailnet import Node, Tailnet

SUGGEST_EXIT_NODE = "suggest-exit-node"
DISABLE_IPV4 = "disable-ipv4"
RANDOMIZE_CLIENT_PORT = "randomize-client-port"


class NodeAttrs:
    """The capability maps of every node of a tailnet under one policy, computed once."""

    def __init__(self, policy: Mapping[str, Any], tailnet: Tailnet, resolver: Resolver) -> None:
        self.tailnet = tailnet
        self.caps: list[dict[str, list[Any] | None]] = [dict(role_caps(n)) for n in tailnet.nodes]
        if policy.get("randomizeClientPort") is True:
            for caps in self.caps:
                caps[RANDOMIZE_CLIENT_PORT] = None
        entries = policy.get("nodeAttrs")
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, Mapping):
                continue
            targets = self._targets(str_list(entry.get("target")), resolver)
            attrs = str_list(entry.get("attr"))
            raw_app = entry.get("app")
            app: Mapping[str, Any] = raw_app if isinstance(raw_app, Mapping) else {}
            for idx in targets:
                caps = self.caps[idx]
                for a in attrs:
                    if a:
                        caps.setdefault(a, None)
                for name, values in app.items():
                    joined = caps.get(name) or []
                    caps[str(name)] = [*joined, *(values if isinstance(values, list) else [values])]
        self._suggested = {i for i, caps in enumerate(self.caps) if SUGGEST_EXIT_NODE in caps}

    def _targets(self, selectors: list[str], resolver: Resolver) -> list[int]:
        found: set[int] = set()
        for s in selectors:
            if s == WILDCARD:
                return list(range(len(self.tailnet.nodes)))
            found.update(n.index for n in resolver.nodes(s))
        return sorted(found)

    def cap_map(self, node: Node) -> dict[str, list[Any] | None]:
        """The node's capability map (``{name: [values] | null}``), names sorted."""
        return dict(sorted(self.caps[node.index].items()))

    def sees_v4(self, viewer: Node) -> bool:
        """Whether *viewer* sees its peers' IPv4 addresses (it has no ``disable-ipv4``)."""
        return DISABLE_IPV4 not in self.caps[viewer.index]

    def peer_view(self, peer: dict[str, Any], node: Node, viewer: Node | None) -> dict[str, Any]:
        """A peer's JSON (``{"name", "allowed_ips", "primary_routes"}``) as *viewer* sees it, with its
        ``cap_map`` names; *node* is the peer's node (*viewer* None: any viewer that sees IPv4)."""
        caps = self.caps[node.index]
        allowed = list(peer["allowed_ips"])
        no_v4 = DISABLE_IPV4 in caps or (viewer is not None and not self.sees_v4(viewer))
        if no_v4 and node.ipv4:
            allowed = [a for a in allowed if a != f"{node.ipv4}/32"]
        names = []
        offers_exit = any(is_exit_route(r) for r in allowed)
        if offers_exit and (not self._suggested or node.index in self._suggested):
            names.append(SUGGEST_EXIT_NODE)
        return {**peer, "allowed_ips": allowed, "cap_map": names}


__all__ = ["NodeAttrs"]
