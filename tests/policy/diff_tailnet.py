"""The small tailnet the policy diff tests compile against: two users' devices, a web server, a subnet
router (one route approved, one only advertised) and an exit node."""

from __future__ import annotations

import json

from derptool.policy.engine import parse_tailnet

TAILNET = json.dumps(
    {
        "users": [
            {"id": 1, "name": "alice", "email": "alice@example.com"},
            {"id": 2, "name": "bob", "email": "bob@example.com"},
        ],
        "nodes": {
            "laptop": {"user": "alice", "ipv4": "100.64.0.1", "ipv6": "fd7a:115c:a1e0::1"},
            "phone": {"user": "bob", "ipv4": "100.64.0.2", "ipv6": "fd7a:115c:a1e0::2"},
            "web": {"tags": ["tag:web"], "ipv4": "100.64.0.3", "ipv6": "fd7a:115c:a1e0::3"},
            "router": {
                "tags": ["tag:router"],
                "ipv4": "100.64.0.4",
                "ipv6": "fd7a:115c:a1e0::4",
                "routable_ips": ["10.1.0.0/16", "10.2.0.0/24"],
                "approved_routes": ["10.1.0.0/16"],
            },
            "exit": {
                "tags": ["tag:exit"],
                "ipv4": "100.64.0.5",
                "ipv6": "fd7a:115c:a1e0::5",
                "routable_ips": ["0.0.0.0/0", "::/0"],
                "approved_routes": ["0.0.0.0/0", "::/0"],
            },
        },
    }
).encode()
NET = parse_tailnet(TAILNET)
