"""What a policy selector means in a tailnet: the addresses of users, groups, tags, autogroups, hosts, ipsets.

:class:`Resolver` answers ``resolve(selector) -> IPSet | None`` (``None`` when the selector names nothing
the tailnet can resolve, such as ``autogroup:self``, which depends on the destination node) and caches
every answer, so each selector is resolved once per policy however many rules use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from derptool.policy.engine.addresses import (
    ALL_TAILNET,
    ALL_V4,
    ALL_V6,
    EMPTY,
    INTERNET,
    IPSet,
    Range,
    parse_range,
)
from derptool.policy.engine.roles import ROLE_GROUPS, role_nodes
from derptool.policy.engine.tailnet import Node, Tailnet, User

WILDCARD = "*"
SELF = "autogroup:self"
INTERNET_GROUP = "autogroup:internet"
DANGER_ALL = "autogroup:danger-all"


def str_list(value: Any) -> list[str]:
    """The strings of a policy list (each trimmed; anything else in it, or a value that is no list, dropped)."""
    return [v.strip() for v in value if isinstance(v, str)] if isinstance(value, list) else []


class Resolver:
    """Resolves selectors of one policy against one tailnet."""

    def __init__(self, policy: Mapping[str, Any], tailnet: Tailnet) -> None:
        self.policy = policy
        self.tailnet = tailnet
        groups = policy.get("groups")
        self.groups: dict[str, list[str]] = (
            {k: str_list(v) for k, v in groups.items()} if isinstance(groups, Mapping) else {}
        )
        hosts = policy.get("hosts")
        self.hosts: dict[str, str] = (
            {k: v.strip() for k, v in hosts.items() if isinstance(v, str)} if isinstance(hosts, Mapping) else {}
        )
        ipsets = policy.get("ipsets")
        self.ipsets: dict[str, list[str]] = (
            {k: str_list(v) for k, v in ipsets.items()} if isinstance(ipsets, Mapping) else {}
        )
        self._cache: dict[str, IPSet | None] = {}
        self._items: dict[str, list[Range] | None] = {}
        self._nodes_cache: dict[str, list[Node]] = {}

    # -- nodes ------------------------------------------------------------------------------------

    def users_of(self, selector: str) -> list[User]:
        """The users a user, ``user:*@domain`` or group selector names (tags and others name none)."""
        if selector.startswith("group:"):
            out: dict[int, User] = {}
            for member in self.groups.get(selector, []):
                for u in self.users_of(member):
                    out.setdefault(u.id, u)
            return list(out.values())
        if selector.startswith("user:*@"):
            domain = selector[len("user:*@") :].lower()
            return [u for u in self.tailnet.users if u.email.lower().rpartition("@")[2] == domain]
        if "@" in selector or self.tailnet.user(selector) is not None:
            user = self.tailnet.user(selector)
            return [user] if user is not None else []
        return []

    def nodes(self, selector: str) -> list[Node]:
        """The nodes whose addresses a selector covers (for users, groups, tags and node autogroups)."""
        cached = self._nodes_cache.get(selector)
        if cached is not None:
            return cached
        tn = self.tailnet
        if selector == WILDCARD:
            out = list(tn.nodes)
        elif selector.startswith("tag:"):
            out = list(tn.by_tag.get(selector, []))
        elif selector == "autogroup:member" or selector == "autogroup:members":
            out = [n for n in tn.nodes if not n.tagged]
        elif selector == "autogroup:tagged":
            out = [n for n in tn.nodes if n.tagged]
        elif selector in ROLE_GROUPS:
            out = role_nodes(tn, selector)
        elif selector.startswith(("group:", "user:*@")) or "@" in selector:
            out = [n for u in self.users_of(selector) for n in tn.by_user.get(u.id, [])]
            out.sort(key=lambda n: n.index)
        else:
            ips = self.resolve(selector)
            out = [n for n in tn.nodes if ips is not None and any(ips.contains(ip) for ip in n.ips)]
        self._nodes_cache[selector] = out
        return out

    # -- addresses --------------------------------------------------------------------------------

    def resolve(self, selector: str) -> IPSet | None:
        """The addresses *selector* stands for, or None when it cannot be resolved here."""
        selector = selector.strip()
        if selector in self._cache:
            return self._cache[selector]
        result = self._resolve(selector)
        self._cache[selector] = result
        return result

    def items(self, selector: str) -> list[Range] | None:
        """The parts of *selector* as Tailscale lists them, unmerged: each node address on its own, a
        prefix or range as written, ``*`` as the tailnet ranges; None when it cannot be resolved."""
        selector = selector.strip()
        if selector in self._items:
            return self._items[selector]
        ips = self.resolve(selector)
        out: list[Range] | None
        if ips is None:
            out = None
        elif _by_nodes(selector) or (self.tailnet.user(selector) is not None and selector not in self.hosts):
            out = sorted({(ip, ip) for n in self.nodes(selector) for ip in n.ips})
        else:
            out = list(ips.ranges)
        self._items[selector] = out
        return out

    def _resolve(self, s: str) -> IPSet | None:
        if s == WILDCARD:
            return ALL_TAILNET
        if s == INTERNET_GROUP:
            return INTERNET
        if s == DANGER_ALL:
            return ALL_V4.union(ALL_V6)
        if s == SELF:
            return None
        if s in ROLE_GROUPS:
            return _node_set(role_nodes(self.tailnet, s))
        if s.startswith("autogroup:") and s not in ("autogroup:member", "autogroup:members", "autogroup:tagged"):
            return EMPTY  # shared devices are not in the tailnet file
        if s.startswith(("tag:", "group:", "user:*@", "autogroup:")) or "@" in s:
            return _node_set(self.nodes(s))
        if s.startswith("ipset:"):
            return self._ipset(s, set())
        if s in self.hosts:
            try:
                return IPSet.of([parse_range(self.hosts[s])])
            except ValueError:
                return None
        try:
            return IPSet.of([parse_range(s)])
        except ValueError:
            pass
        if self.tailnet.user(s) is not None:
            return _node_set(self.nodes(s))
        return None

    def _ipset(self, name: str, seen: set[str]) -> IPSet | None:
        if name not in self.ipsets or name in seen:
            return None
        seen = seen | {name}
        acc = EMPTY
        for entry in self.ipsets[name]:
            op, _, target = entry.partition(" ")
            if op not in ("add", "remove"):
                op, target = "add", entry
            target = target.strip()
            part: IPSet | None
            if target.startswith("host:"):
                part = self.resolve(target[5:])
            elif target.startswith("ipset:"):
                part = self._ipset(target, seen)
            else:
                part = self.resolve(target)
            if part is None:
                continue
            acc = acc.union(part) if op == "add" else acc.minus(part)
        return acc

    def resolve_all(self, selectors: Iterable[str]) -> IPSet:
        """The union of several selectors' addresses (unresolvable ones add nothing)."""
        sets = [s for s in (self.resolve(x) for x in selectors) if s is not None]
        return EMPTY.union(*sets) if sets else EMPTY


def _by_nodes(s: str) -> bool:
    return (
        s.startswith(("tag:", "group:", "user:*@"))
        or s in ("autogroup:member", "autogroup:members", "autogroup:tagged")
        or s in ROLE_GROUPS
        or ("@" in s and not s.startswith(("autogroup:", "ipset:")))
    )


def _node_set(nodes: Iterable[Node]) -> IPSet:
    return IPSet.of((ip, ip) for n in nodes for ip in n.ips)


def node_set(nodes: Iterable[Node]) -> IPSet:
    """The addresses of *nodes*."""
    return _node_set(nodes)


__all__ = ["DANGER_ALL", "INTERNET_GROUP", "SELF", "WILDCARD", "Resolver", "node_set"]
