"""Sample documents of every tailnet source, in the shapes their tools print (shared by the importer tests)."""

from __future__ import annotations

from typing import Any


def status() -> dict[str, Any]:
    """``tailscale status --json`` of laptop (alice), seeing a tagged router that is also an exit node."""
    return {
        "Version": "1.102.5",
        "BackendState": "Running",
        "Self": {
            "ID": "n1",
            "HostName": "laptop",
            "DNSName": "laptop.tail1234.ts.net.",
            "TailscaleIPs": ["100.64.0.1", "fd7a:115c:a1e0::1"],
            "UserID": 10,
            "AllowedIPs": ["100.64.0.1/32", "fd7a:115c:a1e0::1/128"],
        },
        "Peer": {
            "nodekey:ab": {
                "ID": "n2",
                "HostName": "gw",
                "DNSName": "gw.tail1234.ts.net.",
                "TailscaleIPs": ["100.64.0.9", "fd7a:115c:a1e0::9"],
                "Tags": ["tag:router"],
                "UserID": 11,
                "PrimaryRoutes": ["10.9.0.0/16"],
                "AllowedIPs": ["100.64.0.9/32", "fd7a:115c:a1e0::9/128", "10.9.0.0/16", "0.0.0.0/0", "::/0"],
                "ExitNodeOption": True,
            }
        },
        "User": {
            "10": {"ID": 10, "LoginName": "alice@example.com", "DisplayName": "Alice"},
            "11": {"ID": 11, "LoginName": "tagged-devices", "DisplayName": "Tagged Devices"},
        },
    }


def headscale_users() -> list[dict[str, Any]]:
    """``headscale users list --output json`` (Go's encoding: empty members left out)."""
    return [
        {"id": 1, "name": "alice", "created_at": {"seconds": 1733000000}},
        {"id": 2, "name": "bob", "email": "bob@example.com", "created_at": {"seconds": 1733000001}},
        {"id": 3, "name": "carol", "created_at": {"seconds": 1733000002}},
    ]


def headscale_nodes() -> list[dict[str, Any]]:
    """``headscale nodes list --output json``: two user devices and a tagged subnet router."""
    return [
        {
            "id": 1,
            "machine_key": "mkey:01",
            "node_key": "nodekey:01",
            "ip_addresses": ["100.64.0.1", "fd7a:115c:a1e0::1"],
            "name": "alice-laptop",
            "user": {"id": 1, "name": "alice"},
            "given_name": "alice-laptop",
            "online": True,
        },
        {
            "id": 2,
            "ip_addresses": ["100.64.0.2", "fd7a:115c:a1e0::2"],
            "name": "bob-pc",
            "user": {"id": 2, "name": "bob", "email": "bob@example.com"},
            "given_name": "bobs-pc",
        },
        {
            "id": 3,
            "ip_addresses": ["100.64.0.3", "fd7a:115c:a1e0::3"],
            "name": "router",
            "user": {"id": 1, "name": "alice"},
            "given_name": "router",
            "forced_tags": ["tag:router"],
            "valid_tags": ["tag:router"],
            "available_routes": ["10.1.0.0/24", "0.0.0.0/0", "::/0"],
            "approved_routes": ["10.1.0.0/24"],
            "subnet_routes": ["10.1.0.0/24"],
        },
    ]


def api_devices() -> dict[str, Any]:
    """The API's device list (``GET /api/v2/tailnet/-/devices?fields=all``), trimmed to what matters."""
    return {
        "devices": [
            {
                "addresses": ["100.64.0.7", "fd7a:115c:a1e0::7"],
                "id": "9001",
                "nodeId": "nXYZ",
                "user": "amelie@example.com",
                "name": "pangolin.tailfe8c.ts.net",
                "hostname": "pangolin",
                "os": "linux",
                "authorized": True,
                "tags": [],
                "advertisedRoutes": [],
                "enabledRoutes": [],
            },
            {
                "addresses": ["100.64.0.8"],
                "user": "amelie@example.com",
                "name": "exit-fra.tailfe8c.ts.net",
                "hostname": "exit-fra",
                "tags": ["tag:exit"],
                "advertisedRoutes": ["0.0.0.0/0", "::/0", "192.168.5.0/24"],
                "enabledRoutes": ["0.0.0.0/0", "::/0"],
            },
        ]
    }
