"""``derptool.policy.engine.diff`` as a library: each kind of change on a small tailnet, checked by hand."""

from __future__ import annotations

from typing import Any

from derptool.policy.engine import compile_policy
from derptool.policy.engine.diff import PolicyDiff, diff_policies
from derptool.policy.engine.diff.view import EngineView
from tests.policy.diff_tailnet import NET

BASE: dict[str, Any] = {
    "tagOwners": {"tag:web": [], "tag:router": [], "tag:exit": []},
    "acls": [{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:web:443"]}],
}


def _diff(old: dict[str, Any], new: dict[str, Any]) -> PolicyDiff:
    return diff_policies(compile_policy(old, NET), compile_policy(new, NET))


def test_a_widened_port_is_one_row_per_protocol_and_range() -> None:
    new = {**BASE, "acls": [{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:web:440-450"]}]}
    d = _diff(BASE, new)
    assert [(r.src, r.dst, r.proto, r.ports) for r in d.access.gained if r.proto == "tcp"] == [
        ("laptop", "web", "tcp", "440-442"),
        ("laptop", "web", "tcp", "444-450"),
    ]
    assert {r.proto for r in d.access.gained} == {"tcp", "udp", "icmp", "icmpv6"}
    assert d.access.lost == []
    assert d.origin(d.access.gained[0], gained=True) == ("acls", 0)


def test_subnet_access_is_named_by_cidr_and_icmp_by_family() -> None:
    new = {**BASE, "acls": [*BASE["acls"], {"action": "accept", "src": ["bob@example.com"], "dst": ["10.1.2.0/24:22"]}]}
    rows = {(r.src, r.dst, r.proto, r.ports) for r in _diff(BASE, new).access.gained}
    assert rows == {("phone", "10.1.2.0/24", p, "22") for p in ("tcp", "udp", "icmp")}


def test_internet_through_an_exit_node_and_egress() -> None:
    new = {
        **BASE,
        "acls": [*BASE["acls"], {"action": "accept", "src": ["bob@example.com"], "dst": ["autogroup:internet:*"]}],
    }
    d = _diff(BASE, new)
    assert [(e.src, e.via, e.route) for e in d.egress_gained] == [
        ("phone", "exit", "0.0.0.0/0"),
        ("phone", "exit", "::/0"),
    ]
    dsts = {r.dst for r in d.access.gained}
    assert "8.0.0.0/7" in dsts and "10.0.0.0/8" not in dsts and "100.64.0.0/10" not in dsts
    assert {r.src for r in d.access.gained} == {"phone"}


def test_app_capabilities_gained_and_changed() -> None:
    grant = {"src": ["alice@example.com"], "dst": ["tag:web"], "app": {"example.com/cap/admin": [{"level": 1}]}}
    old = {**BASE, "grants": [grant]}
    new = {**BASE, "grants": [{**grant, "app": {"example.com/cap/admin": [{"level": 2}]}}]}
    d = _diff(old, new)
    assert [r.to_json() for r in d.caps_gained] == [
        {"src": "laptop", "dst": "web", "capability": "example.com/cap/admin", "value": [{"level": 2}]}
    ]
    assert [r.to_json()["value"] for r in d.caps_lost] == [[{"level": 1}]]
    assert d.access.gained == d.access.lost == []


def test_ssh_first_matching_rule_decides() -> None:
    check = {"action": "check", "src": ["alice@example.com"], "dst": ["tag:web"], "users": ["root"]}
    accept = {"action": "accept", "src": ["autogroup:member"], "dst": ["tag:web"], "users": ["root", "deploy"]}
    d = _diff({**BASE, "ssh": [accept]}, {**BASE, "ssh": [check, accept]})
    assert [r.to_json() for r in d.ssh_gained] == [{"src": "laptop", "dst": "web", "user": "root", "action": "check"}]
    assert [r.to_json() for r in d.ssh_lost] == [{"src": "laptop", "dst": "web", "user": "root", "action": "accept"}]


def test_a_deleted_test_still_shows_what_the_change_breaks() -> None:
    test = {"src": "alice@example.com", "accept": ["tag:web:443"]}
    old = {**BASE, "tests": [test]}
    new = {**BASE, "acls": [{"action": "accept", "src": ["bob@example.com"], "dst": ["tag:web:443"]}]}
    d = _diff(old, new)
    assert [(t.name, t.side) for t in d.newly_failing] == [("tests[0]", "old")]
    assert "tests[0] of the old file" in d.newly_failing[0].message
    back = _diff(new, old)
    assert [(t.name, t.side) for t in back.newly_passing] == [("tests[0]", "new")]


def test_derp_regions_from_the_policies_own_maps() -> None:
    from derptool.derpmap.sources import load_snapshot

    new = {**BASE, "derpMap": {"OmitDefaultRegions": False, "Regions": {"4": None}}}
    d = diff_policies(
        compile_policy(BASE, NET), compile_policy(new, NET), base_map=lambda: load_snapshot().derp_map, raw=(BASE, new)
    )
    assert d.to_json()["derp"] == {
        "removed": [{"id": 4, "code": "fra", "name": "Frankfurt"}],
        "added": [],
        "changed": [],
        "sites": None,
    }
    assert d.derp.removed[0].place == "Frankfurt, DE"
    assert d.present == {"derp"}


def test_the_view_reads_what_nodes_receive() -> None:
    view = EngineView(compile_policy(BASE, NET))
    web = NET.by_name["web"]
    entries = view.filter(web)
    assert {(e.first, e.last, e.origin) for e in entries} == {(443, 443, ("acls", 0))}
    assert view.filter(NET.by_name["phone"]) == []
