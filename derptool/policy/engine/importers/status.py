"""``tailscale status --json``: the tailnet as one client sees it.

Each ``Self`` and ``Peer`` entry is a node named by the first label of its ``DNSName`` (else its
``HostName``); ``User`` maps decimal user IDs to ``{"ID", "LoginName", "DisplayName"}``. Routes a peer
serves (``PrimaryRoutes`` and the ``AllowedIPs`` that are not its own addresses) count as advertised and
approved, and an ``ExitNodeOption`` peer as an approved exit node.

The status lists only the peers the client can reach or be reached by: nodes with no access either way
are missing (:data:`PARTIAL_NOTE`).
"""

from __future__ import annotations

from typing import Any

from derptool.policy.engine.importers._fields import Doc, Field

KIND = "`tailscale status --json` output"
PARTIAL_NOTE = (
    "`tailscale status --json` lists only the peers this client can reach or be reached by: nodes with no "
    "access either way are missing; give headscale's `nodes list`/`users list` or the API's device list for "
    "the whole tailnet"
)
EXIT_ROUTES = ("0.0.0.0/0", "::/0")


def looks_like(data: Any) -> bool:
    """Whether *data* has the shape of ``tailscale status --json`` output."""
    return isinstance(data, dict) and ("Peer" in data or "Self" in data or "BackendState" in data)


def _users(root: Field) -> tuple[list[dict[str, Any]], dict[int, str]]:
    users: list[dict[str, Any]] = []
    login_of: dict[int, str] = {}
    owner_of_login: dict[str, int] = {}
    for key, entry in root.member("User").items():
        if not key.isdigit() or not key.isascii():
            raise root.doc.error(f'User: key {key!r} must be a decimal user ID (as "User" maps them)')
        uid = entry.member("ID").integer() if entry.has("ID") else int(key)
        if uid != int(key):
            raise root.doc.error(f"{entry.path}.ID is {uid}, not the {key} it is listed under")
        login = entry.member("LoginName").text()
        display = entry.member("DisplayName").text()
        name = login.split("@", 1)[0] or display or str(uid)
        ref = login or name
        other = owner_of_login.setdefault(ref.lower(), uid)
        if other != uid:
            raise root.doc.error(f"{entry.path}.LoginName {ref!r} is also the login of user {other}")
        login_of[uid] = ref
        users.append({"id": uid, "name": name, "email": login})
    return users, login_of


def _node(entry: Field, login_of: dict[int, str]) -> dict[str, Any]:
    ips = entry.member("TailscaleIPs").addresses()
    v4 = next((t for v, _, t in ips if v == 4), None)
    v6 = next((t for v, _, t in ips if v == 6), None)
    if v4 is None and v6 is None:
        raise entry.doc.error(f"{entry.path}.TailscaleIPs holds no address")
    own = {f"{v4}/32", f"{v6}/128"}
    primary = list(entry.member("PrimaryRoutes").prefixes())
    routes = list(primary)
    routes += [r for r in entry.member("AllowedIPs").prefixes() if r not in own and r not in routes]
    if entry.member("ExitNodeOption").flag():
        routes += [r for r in EXIT_ROUTES if r not in routes]
    tags = list(entry.member("Tags").texts())
    for i, tag in enumerate(tags):
        if not tag.startswith("tag:"):
            raise entry.doc.error(f"{entry.path}.Tags[{i}]: {tag!r} does not start with 'tag:'")
    node: dict[str, Any] = {
        "hostname": entry.member("HostName").text(),
        "tags": tags,
        "routable_ips": routes,
        "approved_routes": routes,
        "primary_routes": primary,
    }
    if v4 is not None:
        node["ipv4"] = v4
    if v6 is not None:
        node["ipv6"] = v6
    if not tags:
        if not entry.has("UserID"):
            raise entry.doc.error(f"{entry.path}.UserID is missing (an untagged node belongs to a user)")
        uid = entry.member("UserID").integer()
        if uid not in login_of:
            raise entry.doc.error(f'{entry.path}.UserID {uid} is not in "User"')
        node["user"] = login_of[uid]
    return node


def to_topology(data: Any, file: str) -> dict[str, Any]:
    """The canonical tailnet data of ``tailscale status --json`` output *data* (errors name the field)."""
    root = Doc(file, KIND).root(data)
    root.object()
    users, login_of = _users(root)
    entries: list[Field] = []
    if root.has("Self"):
        self_entry = root.member("Self")
        self_entry.object()
        entries.append(self_entry)
    entries.extend(e for _, e in root.member("Peer").items())
    if not entries:
        raise root.doc.error('no "Self" and no "Peer" entries')
    nodes: dict[str, Any] = {}
    for entry in entries:
        entry.object()
        dns = entry.member("DNSName").text()
        base = dns.split(".", 1)[0] or entry.member("HostName").text() or f"node{len(nodes) + 1}"
        name, n = base, 1
        while name in nodes:
            n += 1
            name = f"{base}-{n}"
        nodes[name] = _node(entry, login_of)
        nodes[name].setdefault("hostname", base)
        if not nodes[name]["hostname"]:
            nodes[name]["hostname"] = base
    return {"users": users, "nodes": nodes}


__all__ = ["KIND", "PARTIAL_NOTE", "looks_like", "to_topology"]
