"""A compiled rule's source set is exactly what its ``SrcIPs`` say.

The engine answers ``explain``, the policy ``tests``, peers and egress from a rule's source set, while
nodes receive its ``SrcIPs`` strings; the two must never disagree. A ``via`` grant from ``*`` is where
they did: its ``SrcIPs`` list every approved subnet route (as Tailscale records them), so traffic from a
subnet behind another router reaches the via router's subnet, and the engine has to say so too.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from derptool.policy import validate_bytes
from derptool.policy.engine import compile_policy, explain
from derptool.policy.engine.addresses import V6, IPSet
from derptool.policy.engine.compile import Compiled
from derptool.policy.engine.semantics import HEADSCALE, TAILSCALE, Semantics
from derptool.policy.engine.tailnet import from_topology
from tests.policy.engine.test_conformance import COMPILE_CATEGORIES, _policy, _tailnet, cases


def said(src_ips: list[str] | tuple[str, ...]) -> IPSet:
    """The addresses of ``SrcIPs`` strings, read with :mod:`ipaddress` alone: ``*`` is every address."""
    ranges: list[tuple[int, int]] = []
    for text in src_ips:
        if text == "*":
            ranges += [(0, V6 - 1), (V6, V6 + (1 << 128) - 1)]
            continue
        if "-" in text:
            first, last = (ipaddress.ip_address(t) for t in text.split("-"))
        else:
            net = ipaddress.ip_network(text)
            first, last = net.network_address, net.broadcast_address
        base = 0 if first.version == 4 else V6
        ranges.append((base + int(first), base + int(last)))
    return IPSet.of(ranges)


def disagreements(compiled: Compiled) -> list[str]:
    """Rules whose source set differs from their ``SrcIPs``, described."""
    out = []
    for rule in compiled.rules.rules:
        want = said(rule.src_ips)
        if rule.src != want:
            missing = want.minus(rule.src).strings()
            extra = rule.src.minus(want).strings()
            out.append(f"{rule.origins}: SrcIPs {list(rule.src_ips)}; set lacks {missing}, has more {extra}")
    return out


@pytest.mark.parametrize("control", [TAILSCALE, HEADSCALE], ids=lambda s: s.name)
def test_every_rule_compiled_for_the_recordings_has_the_sources_its_src_ips_say(control: Semantics) -> None:
    checked = with_routes = 0
    wrong = []
    tailnet_ranges = said(["100.64.0.0/10", "fd7a:115c:a1e0::/48"])
    for category in COMPILE_CATEGORIES:
        for case in cases(category):
            policy = _policy(case)
            if case["code"] != 200 or (policy.get("grants") and not control.supports_grants):
                continue
            compiled = compile_policy(policy, _tailnet(case), control_url="https://unused", semantics=control)
            wrong += [f"{case['id']}: {d}" for d in disagreements(compiled)]
            checked += len(compiled.rules.rules)
            with_routes += sum(
                any(not said([t]).subset_of(tailnet_ranges) for t in r.src_ips) for r in compiled.rules.rules
            )
    assert checked > 300 and with_routes > 0  # the recordings hold rules whose SrcIPs name subnets
    assert not wrong, "\n".join(wrong)


# -- a tailnet with two subnets, one behind a via router ---------------------------------------------

TOPOLOGY: dict[str, Any] = {
    "users": [
        {"id": 1, "name": "alice", "email": "alice@example.com"},
        {"id": 2, "name": "bob", "email": "bob@example.com"},
    ],
    "nodes": {
        "laptop": {"user": "alice", "ipv4": "100.64.0.1", "ipv6": "fd7a:115c:a1e0::1", "posture": {"node:os": "linux"}},
        "phone": {"user": "bob", "ipv4": "100.64.0.2", "ipv6": "fd7a:115c:a1e0::2", "posture": {"node:os": "ios"}},
        "office": {
            "tags": ["tag:office"],
            "ipv4": "100.64.0.3",
            "ipv6": "fd7a:115c:a1e0::3",
            "routable_ips": ["192.168.1.0/24"],
            "approved_routes": ["192.168.1.0/24"],
        },
        "lab": {
            "tags": ["tag:lab"],
            "ipv4": "100.64.0.4",
            "ipv6": "fd7a:115c:a1e0::4",
            "routable_ips": ["10.33.0.0/16"],
            "approved_routes": ["10.33.0.0/16"],
        },
    },
}
TAGS = {"tag:office": ["alice@example.com"], "tag:lab": ["alice@example.com"]}
VIA = {
    "tagOwners": TAGS,
    "grants": [{"src": ["*"], "dst": ["192.168.1.0/24"], "ip": ["tcp:80"], "via": ["tag:office"]}],
}
POSTURES = {"posture:linux": ["node:os == 'linux'"]}


def _compiled(policy: dict[str, Any]) -> Compiled:
    return compile_policy(policy, from_topology(TOPOLOGY))


def test_the_via_router_receives_the_other_subnet_among_the_sources() -> None:
    compiled = _compiled(VIA)
    rules = compiled.node_json(compiled.node("office"))["packet_filter_rules"]
    assert len(rules) == 1 and "10.33.0.0/16" in rules[0]["SrcIPs"]


def test_explain_from_a_subnet_behind_a_via_grant() -> None:
    compiled = _compiled(VIA)
    answer = explain(compiled, "10.33.0.5", "192.168.1.10:80")
    assert answer.allowed
    assert [p.rules for p in answer.pairs] == [[("grants", 0)]]
    assert not explain(compiled, "10.33.0.5", "192.168.1.10:22").allowed  # only tcp:80 is granted
    assert not explain(compiled, "172.16.0.1", "192.168.1.10:80").allowed  # no subnet of the tailnet


def _test_errors(tests: list[dict[str, Any]]) -> list[str]:
    src = json.dumps({**VIA, "tests": tests}, indent=2).encode()
    return [p.message for p in validate_bytes(src, "policy.json", from_topology(TOPOLOGY)) if p.severity == "error"]


def test_policy_tests_from_a_subnet_behind_a_via_grant() -> None:
    assert _test_errors([{"src": "10.33.0.5", "accept": ["192.168.1.10:80"], "deny": ["192.168.1.10:443"]}]) == []
    [failure] = _test_errors([{"src": "10.33.0.5", "deny": ["192.168.1.10:80"]}])
    assert failure.startswith("test(s) failed") and "grants[0]" in failure


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(VIA, id="via-from-everyone"),
        pytest.param(
            {"grants": [{"src": ["autogroup:member"], "dst": ["*"], "app": {"tailscale.com/cap/drive": [{}]}}]},
            id="drive-to-everyone-and-its-sharer-companion",
        ),
        pytest.param(
            {"grants": [{"src": ["*"], "dst": ["autogroup:self"], "app": {"tailscale.com/cap/relay": [{}]}}]},
            id="relay-to-self-and-its-companion",
        ),
        pytest.param(
            {"acls": [{"action": "accept", "src": ["autogroup:danger-all"], "dst": ["tag:office:*"]}]},
            id="danger-all",
        ),
        pytest.param(
            {
                "postures": POSTURES,
                "grants": [
                    {
                        "src": ["autogroup:danger-all"],
                        "dst": ["tag:office"],
                        "ip": ["*"],
                        "srcPosture": ["posture:linux"],
                    }
                ],
            },
            id="danger-all-gated-by-a-posture",
        ),
        pytest.param(
            {
                "postures": POSTURES,
                "tagOwners": TAGS,
                "grants": [
                    {
                        "src": ["*", "10.33.0.0/16"],
                        "dst": ["192.168.1.0/24"],
                        "ip": ["*"],
                        "via": ["tag:office"],
                        "srcPosture": ["posture:linux"],
                    }
                ],
            },
            id="via-gated-by-a-posture",
        ),
        pytest.param(
            {"grants": [{"src": ["*"], "dst": ["*"], "ip": ["*"], "app": {"tailscale.com/cap/drive": [{}]}}]},
            id="everyone-to-everyone-with-an-app",
        ),
    ],
)
def test_every_kind_of_rule_has_the_sources_its_src_ips_say(policy: dict[str, Any]) -> None:
    compiled = _compiled(policy)
    assert compiled.rules.rules
    assert disagreements(compiled) == []


def test_a_posture_gated_danger_all_rule_lists_only_the_satisfying_devices() -> None:
    policy = {
        "postures": POSTURES,
        "grants": [
            {"src": ["autogroup:danger-all"], "dst": ["tag:office"], "ip": ["*"], "srcPosture": ["posture:linux"]}
        ],
    }
    compiled = _compiled(policy)
    [rule] = compiled.node_json(compiled.node("office"))["packet_filter_rules"]
    assert rule["SrcIPs"] == ["100.64.0.1", "fd7a:115c:a1e0::1"]  # laptop runs Linux; the phone does not
    assert explain(compiled, "laptop", "office:22").allowed
    assert not explain(compiled, "phone", "office:22").allowed
