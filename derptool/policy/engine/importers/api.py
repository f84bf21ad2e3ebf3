"""Tailscale's API device list: ``GET /api/v2/tailnet/-/devices?fields=all`` saved to a file.

The answer is ``{"devices": [{"name", "hostname", "user", "addresses", "tags", "advertisedRoutes",
"enabledRoutes", ...}]}``. A device is named by the first label of its ``name`` (its MagicDNS name);
``user`` is the owner's login; ``advertisedRoutes`` are the routes it announces and ``enabledRoutes``
those an admin approved. Users are the owners' logins (the list gives no user IDs: they are numbered in
order of appearance).
"""

from __future__ import annotations

from typing import Any

from derptool.policy.engine.importers._fields import Doc

KIND = "the API's device list (GET /api/v2/tailnet/-/devices?fields=all)"


def looks_like(data: Any) -> bool:
    """Whether *data* has the shape of the API's device list."""
    return isinstance(data, dict) and "devices" in data and "nodes" not in data


def to_topology(data: Any, file: str) -> dict[str, Any]:
    """The canonical tailnet data of the API's device list (errors name the field)."""
    doc = Doc(file, KIND)
    root = doc.root(data)
    extra = sorted(set(root.object()) - {"devices"})
    if extra:
        raise doc.error(f'unknown member {extra[0]!r} beside "devices"')
    users: dict[str, dict[str, Any]] = {}
    nodes: dict[str, Any] = {}
    for entry in root.member("devices").elements():
        entry.object()
        full = entry.member("name").text()
        hostname = entry.member("hostname").text()
        name = full.split(".", 1)[0] or hostname
        if not name:
            raise doc.error(f'{entry.path} has neither "name" nor "hostname"')
        if name in nodes:
            raise doc.error(f"{entry.path}: device name {name!r} appears twice")
        ips = entry.member("addresses").addresses()
        v4 = next((t for v, _, t in ips if v == 4), None)
        v6 = next((t for v, _, t in ips if v == 6), None)
        if v4 is None and v6 is None:
            raise doc.error(f"{entry.path}.addresses holds no address (device {name!r})")
        tags = list(entry.member("tags").texts())
        for i, tag in enumerate(tags):
            if not tag.startswith("tag:"):
                raise doc.error(f"{entry.path}.tags[{i}]: {tag!r} does not start with 'tag:'")
        node: dict[str, Any] = {
            "hostname": hostname or name,
            "tags": tags,
            "routable_ips": list(entry.member("advertisedRoutes").prefixes()),
            "approved_routes": list(entry.member("enabledRoutes").prefixes()),
        }
        if v4 is not None:
            node["ipv4"] = v4
        if v6 is not None:
            node["ipv6"] = v6
        login = entry.member("user").text()
        if not tags:
            if not login:
                raise doc.error(f'{entry.path} (device {name!r}) has no "user" and no tags')
            key = login.lower()
            if key not in users:
                users[key] = {"id": len(users) + 1, "name": login.split("@", 1)[0], "email": login}
            node["user"] = users[key]["email"]
        nodes[name] = node
    return {"users": list(users.values()), "nodes": nodes}


__all__ = ["KIND", "looks_like", "to_topology"]
