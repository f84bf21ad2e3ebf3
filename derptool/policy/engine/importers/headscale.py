"""headscale's ``headscale nodes list --output json`` and ``headscale users list --output json``.

Both are JSON lists (Go's encoding of headscale's API messages, empty members left out). A node is
``{"id", "given_name", "name", "user": {...}, "ip_addresses", "forced_tags", "valid_tags",
"available_routes", "approved_routes", "subnet_routes"}``: it is named by its ``given_name`` (the name
headscale gives it in MagicDNS), its tags are ``valid_tags`` (which hold the forced ones),
``available_routes`` are the routes it announces and ``subnet_routes`` those it is primary for. A user is
``{"id", "name", "email", "display_name", ...}``; a node's user must be one of the users list.
"""

from __future__ import annotations

from typing import Any

from derptool.policy.engine.importers._fields import Doc, Field

NODES_KIND = "`headscale nodes list --output json`"
USERS_KIND = "`headscale users list --output json`"
EXIT_ROUTES = ("0.0.0.0/0", "::/0")


def _items(data: Any) -> list[Any] | None:
    return data if isinstance(data, list) and data and all(isinstance(d, dict) for d in data) else None


def looks_like_nodes(data: Any) -> bool:
    """Whether *data* has the shape of headscale's nodes list."""
    items = _items(data)
    return items is not None and any(
        "ip_addresses" in d or "given_name" in d or "machine_key" in d or "node_key" in d for d in items
    )


def looks_like_users(data: Any) -> bool:
    """Whether *data* has the shape of headscale's users list (and not its nodes list)."""
    items = _items(data)
    return (
        items is not None
        and not looks_like_nodes(data)
        and all("id" in d or "name" in d or "email" in d or "provider" in d for d in items)
    )


def _users(doc: Doc, data: Any) -> tuple[list[dict[str, Any]], dict[int, str]]:
    users: list[dict[str, Any]] = []
    ref_of: dict[int, str] = {}
    seen_name: dict[str, int] = {}
    for entry in doc.root(data).elements():
        uid = entry.member("id").integer(low=1)
        name = entry.member("name").text()
        email = entry.member("email").text()
        if not name and not email:
            raise doc.error(f'{entry.path} has neither "name" nor "email"')
        if uid in ref_of:
            raise doc.error(f"{entry.path}.id {uid} appears twice in the users list")
        for key in {name.lower(), email.lower()} - {""}:
            other = seen_name.setdefault(key, uid)
            if other != uid:
                raise doc.error(f"{entry.path}: {key!r} is also the name or email of user {other}")
        ref_of[uid] = name or email
        users.append({"id": uid, "name": name, "email": email})
    return users, ref_of


def _node(entry: Field, ref_of: dict[int, str], users_file: str) -> tuple[str, dict[str, Any]]:
    doc = entry.doc
    entry.object()
    node_id = entry.member("id").integer(low=1)
    name = entry.member("given_name").text() or entry.member("name").text()
    if not name:
        raise doc.error(f'{entry.path} has neither "given_name" nor "name"')
    ips = entry.member("ip_addresses").addresses()
    v4 = next((t for v, _, t in ips if v == 4), None)
    v6 = next((t for v, _, t in ips if v == 6), None)
    if v4 is None and v6 is None:
        raise doc.error(f"{entry.path}.ip_addresses holds no address (node {name!r}, id {node_id})")
    tags: list[str] = []
    for key in ("valid_tags", "forced_tags"):
        for i, tag in enumerate(entry.member(key).texts()):
            if not tag.startswith("tag:"):
                raise doc.error(f"{entry.path}.{key}[{i}]: {tag!r} does not start with 'tag:'")
            if tag not in tags:
                tags.append(tag)
    node: dict[str, Any] = {
        "hostname": entry.member("name").text() or name,
        "tags": tags,
        "routable_ips": list(entry.member("available_routes").prefixes()),
        "approved_routes": list(entry.member("approved_routes").prefixes()),
        "primary_routes": [r for r in entry.member("subnet_routes").prefixes() if r not in EXIT_ROUTES],
    }
    if v4 is not None:
        node["ipv4"] = v4
    if v6 is not None:
        node["ipv6"] = v6
    user = entry.member("user")
    if user.value is not None:
        uid = user.member("id").integer(low=1)
        if uid not in ref_of:
            raise doc.error(f"{user.path}.id {uid} (node {name!r}) is not in the users list {users_file}")
        node["user"] = ref_of[uid]
    elif not tags:
        raise doc.error(f'{entry.path} (node {name!r}) has no "user" and no tags')
    return name, node


def to_topology(nodes: Any, nodes_file: str, users: Any, users_file: str) -> dict[str, Any]:
    """The canonical tailnet data of headscale's nodes list and users list (errors name file and field)."""
    user_list, ref_of = _users(Doc(users_file, USERS_KIND), users)
    doc = Doc(nodes_file, NODES_KIND)
    out: dict[str, Any] = {}
    ids: dict[int, str] = {}
    for entry in doc.root(nodes).elements():
        name, node = _node(entry, ref_of, users_file)
        node_id = entry.member("id").integer(low=1)
        if node_id in ids:
            raise doc.error(f"{entry.path}.id {node_id} is also the id of node {ids[node_id]!r}")
        if name in out:
            raise doc.error(f"{entry.path}: node name {name!r} appears twice in the nodes list")
        ids[node_id] = name
        out[name] = node
    return {"users": user_list, "nodes": out}


__all__ = ["NODES_KIND", "USERS_KIND", "looks_like_nodes", "looks_like_users", "to_topology"]
