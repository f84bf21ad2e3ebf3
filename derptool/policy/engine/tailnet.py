"""The tailnet a policy is compiled for: users and nodes (addresses, tags, advertised and approved routes).

The canonical file (``--tailnet FILE``, JSON or HuJSON) is the ``topology`` object of Tailscale's recorded
netmaps::

    {"users": [{"id": 1, "name": "odin", "email": "odin@example.com", "role": "admin"}],
     "nodes": {"web1": {"hostname": "web1", "user": "odin", "tags": [], "ipv4": "100.64.0.1",
                        "ipv6": "fd7a:115c:a1e0::1", "routable_ips": [], "approved_routes": [],
                        "posture": {"node:os": "linux", "node:tsVersion": "1.80.0"}}}}

A user's ``role`` (optional) is one of Tailscale's roles (see :mod:`~derptool.policy.engine.roles`).
A node's ``posture`` (optional) gives its device posture attributes: strings, numbers, booleans, or
null for an attribute known to be unset; an attribute it does not list is unknown.

A node may list ``primary_routes``: the subnet routes it is the elected (primary) router for; without
it the first node in the file serving a route is its primary. A node with tags is *tagged* and belongs
to no user in policy terms. An untagged node without ``user`` belongs to the first user. Node names and
addresses are unique; a file holds at most :data:`MAX_NODES` nodes.
Other sources (``tailscale status --json``, headscale's lists, the API's device list) are read by
:mod:`derptool.policy.engine.importers`, which turns each into this form.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from derptool._types import JsonPath
from derptool.errors import InputError, LimitError
from derptool.policy.engine.addresses import IPSet, is_exit_route, parse_addr, prefix_range
from derptool.policy.engine.control import check_control_url
from derptool.policy.posture import Value, attribute_values
from derptool.policy.problems import locate

MAX_NODES = 100_000
"""The most nodes a tailnet file may hold (a large company's tailnet has tens of thousands)."""


ROLES = ("owner", "admin", "member", "network-admin", "it-admin", "billing-admin", "auditor")
"""Tailscale's user roles, as a tailnet file names them."""


def role_error(value: object) -> str | None:
    """What is wrong with a user's ``role`` value, or None."""
    if value is None or (isinstance(value, str) and value in ROLES):
        return None
    return f"role {value!r} is not a Tailscale role (one of {', '.join(ROLES)})"


@dataclass(frozen=True)
class User:
    """A tailnet user: numeric id, short name and login (email)."""

    id: int
    name: str
    email: str
    role: str | None = field(default=None, compare=False)

    @property
    def login(self) -> str:
        """The login name policies use (the email, or the name when there is no email)."""
        return self.email or self.name


@dataclass(frozen=True)
class Node:
    """A device of the tailnet."""

    name: str
    hostname: str
    ipv4: str | None
    ipv6: str | None
    tags: tuple[str, ...] = ()
    user: User | None = None
    routable_ips: tuple[str, ...] = ()
    approved_routes: tuple[str, ...] = ()
    index: int = 0
    ips: tuple[int, ...] = field(default=(), compare=False)
    primary_routes: tuple[str, ...] | None = None
    posture: Mapping[str, Value | None] | None = field(default=None, compare=False)

    @property
    def tagged(self) -> bool:
        """Whether the node carries tags (it then has no user in policy terms)."""
        return bool(self.tags)

    @property
    def addresses(self) -> list[str]:
        """The node's own prefixes, ``/32`` and ``/128``."""
        out = []
        if self.ipv4:
            out.append(f"{self.ipv4}/32")
        if self.ipv6:
            out.append(f"{self.ipv6}/128")
        return out

    @property
    def address_set(self) -> IPSet:
        """The node's own addresses as a set."""
        return IPSet.of((n, n) for n in self.ips)

    def _served(self) -> list[str]:
        if not self.approved_routes or not self.routable_ips:
            return []
        advertised = {_canon(r) for r in self.routable_ips}
        return [r for r in (_canon(a) for a in self.approved_routes) if r in advertised]

    def __post_init__(self) -> None:
        if self.approved_routes and self.routable_ips:  # most nodes serve no route: nothing to store
            served = self._served()
            object.__setattr__(self, "_subnet_routes", [r for r in served if not is_exit_route(r)])
            object.__setattr__(self, "_exit_routes", [r for r in served if is_exit_route(r)])

    @property
    def subnet_routes(self) -> list[str]:
        """Approved and advertised routes that are not exit routes."""
        routes: list[str] = self.__dict__.get("_subnet_routes") or []
        return routes

    @property
    def exit_routes(self) -> list[str]:
        """Approved and advertised exit routes (``0.0.0.0/0``, ``::/0``)."""
        routes: list[str] = self.__dict__.get("_exit_routes") or []
        return routes

    @property
    def is_exit_node(self) -> bool:
        """Whether the node is an approved exit node."""
        return bool(self.exit_routes)

    def has_tag(self, tag: str) -> bool:
        """Whether the node carries *tag*."""
        return tag in self.tags


def _canon(route: str) -> str:
    try:
        return str(ipaddress.ip_network(route.strip(), strict=False))
    except ValueError:
        return route


@dataclass
class Tailnet:
    """Users and nodes, with indexes by login, tag and address."""

    users: list[User]
    nodes: list[Node]
    by_name: dict[str, Node] = field(default_factory=dict)
    by_login: dict[str, User] = field(default_factory=dict)
    by_tag: dict[str, list[Node]] = field(default_factory=dict)
    by_user: dict[int, list[Node]] = field(default_factory=dict)
    by_ip: dict[int, Node] = field(default_factory=dict)
    control_url: str | None = None
    """The control server's URL when the tailnet file names one (SSH ``check`` actions point at it)."""

    def __post_init__(self) -> None:
        self.by_name.update((n.name, n) for n in self.nodes)
        self.by_ip.update((ip, n) for n in self.nodes for ip in n.ips)
        for n in self.nodes:
            if n.tags:
                for tag in n.tags:
                    self.by_tag.setdefault(tag, []).append(n)
            elif n.user is not None:
                self.by_user.setdefault(n.user.id, []).append(n)
        for u in self.users:
            for key in (u.email, u.name):
                if key:
                    self.by_login.setdefault(key.lower(), u)

    def user(self, login: str) -> User | None:
        """The user with this login (email) or name, case-insensitively."""
        return self.by_login.get(login.lower())

    def node(self, name: str) -> Node | None:
        """The node named *name* (its key in the tailnet file), or with that hostname or address."""
        if name in self.by_name:
            return self.by_name[name]
        for n in self.nodes:
            if n.hostname == name or name in (n.ipv4, n.ipv6):
                return n
        return None

    def node_at(self, ip: int) -> Node | None:
        """The node owning the address number *ip*."""
        return self.by_ip.get(ip)

    @property
    def subnet_routes(self) -> list[str]:
        """Every approved non-exit route of the tailnet, once each, in node order."""
        seen: dict[str, None] = {}
        for n in self.nodes:
            for r in n.subnet_routes:
                seen.setdefault(r, None)
        return list(seen)


class TailnetError(InputError):
    """A tailnet file that cannot be used (exit 2)."""


def _err(message: str, file: str, where: JsonPath, src: bytes | None) -> TailnetError:
    line = col = None
    if src is not None:
        with contextlib.suppress(ValueError):
            line, col = locate(src, [where])[where]
    return TailnetError(message, file=file, line=line, column=col)


def _strs(value: Any, what: str, fail: Any, node: str) -> tuple[str, ...]:
    if not value:
        if value is None or value == []:
            return ()
        raise fail(f"{what} must be a list of strings", ("nodes", node, what))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(f"{what} must be a list of strings", ("nodes", node, what))
    return tuple(value)


def _routes(value: Any, key: str, node: str, fail: Any) -> tuple[str, ...]:
    """A node's list of CIDR prefixes under *key*."""
    if value is None or value == []:
        return ()
    routes = _strs(value, key, fail, node)
    for r in routes:
        try:
            prefix_range(r)
        except ValueError:
            raise fail(f"node {node!r}: {key}: {r!r} is not a CIDR prefix", ("nodes", node, key)) from None
    return routes


def _address(
    value: Any, version: int, key: str, node: str, owner_of_ip: dict[int, str], fail: Any
) -> tuple[str, int] | None:
    """``(canonical text, number)`` of a node's address under *key* (None when absent); each address is
    claimed in *owner_of_ip* by one node."""
    if value is None:
        return None
    try:
        parsed = parse_addr(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed[0] != version:
        raise fail(f"node {node!r}: {key} {value!r} is not an IPv{version} address", ("nodes", node, key))
    other = owner_of_ip.setdefault(parsed[1], node)
    if other != node:
        raise fail(f"node {node!r}: {key} {parsed[2]} is also the address of node {other!r}", ("nodes", node, key))
    return parsed[2], parsed[1]


def from_topology(data: Any, *, file: str = "<tailnet>", src: bytes | None = None) -> Tailnet:
    """A :class:`Tailnet` from decoded ``topology`` data; errors name *file*:line:col (from *src*)."""

    def fail(message: str, where: JsonPath) -> TailnetError:
        return _err(message, file, where, src)

    if not isinstance(data, Mapping):
        raise fail('a tailnet is an object {"users": [...], "nodes": {...}}', ())
    unknown = sorted(set(data) - {"users", "nodes", "control_url"})
    if unknown:
        raise fail(f'unknown member "{unknown[0]}" (a tailnet has "users", "nodes" and "control_url")', (unknown[0],))
    control_url = data.get("control_url")
    if control_url is not None:
        if not isinstance(control_url, str):
            raise fail('"control_url" must be a string (the control server\'s URL)', ("control_url",))
        try:
            control_url = check_control_url(control_url)
        except ValueError as err:
            raise fail(f"control_url: {err}", ("control_url",)) from None
    users: list[User] = []
    raw_users = data.get("users") or []
    if not isinstance(raw_users, list):
        raise fail('"users" must be a list of {"id", "name", "email"}', ("users",))
    for i, u in enumerate(raw_users):
        if not isinstance(u, Mapping):
            raise fail('a user is an object {"id", "name", "email"}', ("users", i))
        uid, name, email = u.get("id", i + 1), u.get("name", ""), u.get("email", "")
        if not isinstance(uid, int) or isinstance(uid, bool):
            raise fail("user id must be an integer", ("users", i, "id"))
        if not isinstance(name, str) or not isinstance(email, str) or not (name or email):
            raise fail('a user needs a "name" or an "email" string', ("users", i))
        rerr = role_error(u.get("role"))
        if rerr is not None:
            raise fail(f"user {name or email!r}: {rerr}", ("users", i, "role"))
        users.append(User(uid, name, email, u.get("role")))
    by_name = {u.name: u for u in users if u.name}
    by_name.update({u.email: u for u in users if u.email})
    raw_nodes = data.get("nodes") or {}
    if not isinstance(raw_nodes, Mapping):
        raise fail('"nodes" must be an object of node name to node', ("nodes",))
    if isinstance(raw_nodes, _Duplicated):
        name = raw_nodes.duplicates[0]
        raise fail(f'node {name!r} appears twice in "nodes": give each node its own name', ("nodes", name))
    if len(raw_nodes) > MAX_NODES:
        raise LimitError(
            f"{len(raw_nodes)} nodes, more than the {MAX_NODES} derptool compiles for; split the tailnet file",
            file=file,
        )
    nodes: list[Node] = []
    owner_of_ip: dict[int, str] = {}
    for index, (name, n) in enumerate(raw_nodes.items()):
        # one pass per node, the common shape (no routes, no posture) on the shortest path: 10 000 nodes load
        # in a fraction of a second; paths into the file are built only for an error
        if not isinstance(n, Mapping):
            raise fail(f"node {name!r} must be an object", ("nodes", name))
        get = n.get
        tags = _strs(get("tags"), "tags", fail, name)
        for t in tags:
            if not t.startswith("tag:"):
                raise fail(f"node {name!r}: tag {t!r} must start with 'tag:'", ("nodes", name, "tags"))
        v4 = _address(get("ipv4"), 4, "ipv4", name, owner_of_ip, fail)
        v6 = _address(get("ipv6"), 6, "ipv6", name, owner_of_ip, fail)
        if v4 is None and v6 is None:
            raise fail(f'node {name!r} needs an "ipv4" or "ipv6" address', ("nodes", name))
        ips = (v4[1], v6[1]) if v4 is not None and v6 is not None else ((v4 or v6)[1],)  # type: ignore[index]
        routable = _routes(get("routable_ips"), "routable_ips", name, fail)
        approved = _routes(get("approved_routes"), "approved_routes", name, fail)
        primary_raw = get("primary_routes")
        primary = _routes(primary_raw, "primary_routes", name, fail)
        user: User | None = None
        uname = get("user")
        if uname is not None:
            if not isinstance(uname, str) or uname not in by_name:
                raise fail(f'node {name!r}: user {uname!r} is not in "users"', ("nodes", name, "user"))
            user = by_name[uname]
        elif not tags and users:
            user = users[0]
        hostname = get("hostname", name)
        raw_posture = get("posture")
        posture = attribute_values(raw_posture) if raw_posture is not None else None
        if isinstance(posture, str):
            raise fail(f"node {name!r}: posture: {posture}", ("nodes", name, "posture"))
        nodes.append(
            Node(
                str(name),
                str(hostname),
                v4[0] if v4 is not None else None,
                v6[0] if v6 is not None else None,
                tags,
                user,
                routable,
                approved,
                index,
                ips,
                tuple(_canon(r) for r in primary) if primary_raw is not None else None,
                posture,
            )
        )
    return Tailnet(users, nodes, control_url=control_url)


class _Duplicated(dict[str, Any]):
    """A decoded JSON object whose members were not all unique (the last value of each is kept)."""

    duplicates: list[str]


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    dup = _Duplicated(out)
    seen: set[str] = set()
    dup.duplicates = [k for k, _ in pairs if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
    return dup


def to_topology(tailnet: Tailnet) -> dict[str, Any]:
    """The canonical tailnet-file data of *tailnet*."""
    nodes: dict[str, Any] = {}
    for n in tailnet.nodes:
        entry: dict[str, Any] = {"hostname": n.hostname, "tags": list(n.tags)}
        if n.ipv4:
            entry["ipv4"] = n.ipv4
        if n.ipv6:
            entry["ipv6"] = n.ipv6
        if n.user is not None and not n.tagged:
            entry["user"] = n.user.name or n.user.email
        entry["routable_ips"] = list(n.routable_ips)
        entry["approved_routes"] = list(n.approved_routes)
        if n.primary_routes is not None:
            entry["primary_routes"] = list(n.primary_routes)
        if n.posture is not None:
            entry["posture"] = dict(n.posture)
        nodes[n.name] = entry
    users = [
        {"id": u.id, "name": u.name, "email": u.email} | ({"role": u.role} if u.role else {}) for u in tailnet.users
    ]
    out: dict[str, Any] = {"users": users}
    out["nodes"] = nodes
    if tailnet.control_url is not None:
        out["control_url"] = tailnet.control_url
    return out


__all__ = [
    "Node",
    "Tailnet",
    "TailnetError",
    "User",
    "from_topology",
    "to_topology",
]
