"""Conformance: the policy engine against recordings of Tailscale's control plane.

``tests/data/tailscale-captures/`` (BSD-3 data from headscale's compatibility captures, see its NOTICE)
holds, per category, policies Tailscale accepted with what it sent each node. For every accepted case the
engine compiles the policy for the recorded tailnet and is compared as headscale compares itself: packet
filter rules in order, with SrcIPs, DstPorts, IPProto and CapGrant Dsts sorted and capability values as
JSON; SSH rules in order with principals sorted; each node's set of peers with their AllowedIPs and
PrimaryRoutes sorted. Route primaries are an input (the control plane elects the router that advertised
first, which a tailnet file cannot know), so each node's recorded primary routes go into the tailnet, as
headscale's comparison also takes them from the recording. Users' roles are an input too (the recorded
tailnet has an owner and admins that its topology does not name): a user whose devices carry ``is-owner``
is the owner, ``is-admin`` an admin, none a member. Capability maps are compared without the capabilities
that come from tailnet settings rather than the policy (:data:`TAILNET_SETTING_CAPS`), peers' capability
names as sets. policytest and sshtest cases compare the verdict: accepted, or rejected with ``test(s) failed``.

The figures are printed (``pytest -s``); the test fails when a case outside the listed disagreements stops
agreeing, so a regression cannot hide behind a percentage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest

from derptool.policy import validate_bytes
from derptool.policy.engine import compile_policy
from derptool.policy.engine.stream import node_texts
from derptool.policy.engine.tailnet import Tailnet, from_topology
from tests.support import repo

DATA = repo.DATA / "tailscale-captures"
COMPILE_CATEGORIES = ("acl", "grant", "ssh", "routes", "nodeattrs", "policytest", "sshtest")
KNOWN_DISAGREEMENTS: set[str] = set()
TAILNET_SETTING_CAPS = {
    "default-auto-update",
    "tailnet-display-name",
    "probe-udp-lifetime",
    "ssh-behavior-v1",
    "ssh-env-vars",
    "store-appc-routes",
    "https://tailscale.com/cap/file-sharing",
    "https://tailscale.com/cap/ssh",
    "https://tailscale.com/cap/tailnet-lock",
}
"""Capabilities the recording tailnet's settings give every node; derptool leaves them out."""


@cache
def cases(category: str) -> list[dict[str, Any]]:
    doc = json.loads((DATA / f"{category}.json").read_text(encoding="utf-8"))
    return list(doc["cases"])


def _policy(case: dict[str, Any]) -> dict[str, Any]:
    p = case["policy"]
    return p if isinstance(p, dict) else dict(json.loads(p))


def _tailnet(case: dict[str, Any]) -> Tailnet:
    """The recorded tailnet, with each node's recorded primary routes and users' roles (inputs, see the
    module doc)."""
    topology = json.loads(json.dumps(case["topology"]))
    for user in topology["users"]:
        owned = [
            set((case.get("nodes") or {}).get(name, {}).get("self", {}).get("cap_map") or {})
            for name, n in topology["nodes"].items()
            if n.get("user") in (user["name"], user["email"]) and not n.get("tags")
        ]
        if any("https://tailscale.com/cap/is-owner" in caps for caps in owned):
            user["role"] = "owner"
        elif any("https://tailscale.com/cap/is-admin" in caps for caps in owned):
            user["role"] = "admin"
        elif owned and all(owned):
            user["role"] = "member"
    for seen in (case.get("nodes") or {}).values():
        for peer in seen.get("peers") or []:
            prim = topology["nodes"][peer["name"]].setdefault("primary_routes", [])
            prim.extend(r for r in peer.get("primary_routes") or [] if r not in prim)
    return from_topology(topology)


def norm_filter(rules: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for r in rules or []:
        out.append(
            {
                "SrcIPs": sorted(r.get("SrcIPs") or []),
                "DstPorts": sorted((p["IP"], p["Ports"]["First"], p["Ports"]["Last"]) for p in r.get("DstPorts") or []),
                "IPProto": sorted(r.get("IPProto") or []),
                "CapGrant": [
                    (sorted(g.get("Dsts") or []), json.dumps(g.get("CapMap"), sort_keys=True))
                    for g in r.get("CapGrant") or []
                ],
            }
        )
    return out


def norm_ssh(policy: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [
        {
            "principals": sorted(p["nodeIP"] for p in r.get("principals") or []),
            "sshUsers": r.get("sshUsers"),
            "action": r.get("action"),
            "acceptEnv": r.get("acceptEnv") or [],
        }
        for r in (policy or {}).get("rules") or []
    ]


def norm_peers(peers: list[dict[str, Any]] | None) -> dict[str, tuple[list[str], list[str]]]:
    return {p["name"]: (sorted(p.get("allowed_ips") or []), sorted(p.get("primary_routes") or [])) for p in peers or []}


def norm_caps(cap_map: dict[str, Any] | None, peers: list[dict[str, Any]] | None) -> tuple[str, dict[str, list[str]]]:
    """The node's capability map without tailnet settings (values as JSON) and its peers' capability names."""
    own = {k: v for k, v in (cap_map or {}).items() if k not in TAILNET_SETTING_CAPS}
    return json.dumps(own, sort_keys=True), {p["name"]: sorted(p.get("cap_map") or []) for p in peers or []}


@dataclass
class Tally:
    cases: int = 0
    filters: int = 0
    ssh: int = 0
    peers: int = 0
    caps: int = 0
    all_agree: int = 0
    disagreeing: list[str] = field(default_factory=list)


def compare(case: dict[str, Any]) -> tuple[bool, bool, bool, bool]:
    """(packet filters, SSH policies, peers, capabilities) agree for every node of an accepted case."""
    compiled = compile_policy(_policy(case), _tailnet(case), control_url="https://unused")
    streamed = {name: json.loads(text) for name, text in node_texts(compiled)}
    filters = ssh = peers = caps = True
    for name, want in case["nodes"].items():
        got = compiled.node_json(compiled.node(name))
        assert streamed[name] == got, f"{case['id']}: {name}: the streamed answer differs from node_json"
        filters &= norm_filter(got["packet_filter_rules"]) == norm_filter(want["packet_filter_rules"])
        ssh &= norm_ssh(got["ssh_policy"]) == norm_ssh(want["ssh_policy"])
        peers &= norm_peers(got["peers"]) == norm_peers(want["peers"])
        caps &= norm_caps(got["cap_map"], got["peers"]) == norm_caps(want["self"]["cap_map"], want["peers"])
    return filters, ssh, peers, caps


@pytest.fixture(scope="module")
def tallies() -> dict[str, Tally]:
    out: dict[str, Tally] = {}
    for category in COMPILE_CATEGORIES:
        t = out[category] = Tally()
        for case in cases(category):
            if case["code"] != 200:
                continue
            t.cases += 1
            f, s, p, c = compare(case)
            t.filters += f
            t.ssh += s
            t.peers += p
            t.caps += c
            if f and s and p and c:
                t.all_agree += 1
            else:
                t.disagreeing.append(case["id"])
    lines = ["policy engine vs Tailscale's control plane (accepted cases; cases agreeing / cases)"]
    lines.append("  category   packet filters, SSH, peers, capabilities; all four")
    for category, t in out.items():
        lines.append(
            f"  {category:10s} packet filters {t.filters}/{t.cases}, SSH {t.ssh}/{t.cases}, "
            f"peers {t.peers}/{t.cases}, caps {t.caps}/{t.cases}; all four {t.all_agree}/{t.cases}"
            + (f"; disagree: {', '.join(t.disagreeing)}" if t.disagreeing else "")
        )
    print("\n" + "\n".join(lines))
    return out


@pytest.mark.parametrize("category", COMPILE_CATEGORIES)
def test_compile_agrees_with_recordings(tallies: dict[str, Tally], category: str) -> None:
    t = tallies[category]
    assert t.cases > 0
    unexpected = [c for c in t.disagreeing if c not in KNOWN_DISAGREEMENTS]
    assert not unexpected, f"{category}: new disagreements with Tailscale: {unexpected}"


@pytest.mark.parametrize("category", ["policytest", "sshtest"])
def test_policy_tests_verdicts(category: str) -> None:
    """validate --tailnet rejects exactly the policies whose tests Tailscale failed."""
    agree = 0
    wrong = []
    for case in cases(category):
        src = json.dumps(_policy(case), indent=2).encode()
        errors = [p.message for p in validate_bytes(src, case["id"], _tailnet(case)) if p.severity == "error"]
        rejected = bool(errors) and any(e.startswith(case["message"] or "") for e in errors)
        ok = not errors if case["code"] == 200 else rejected
        agree += ok
        if not ok:
            wrong.append(f"{case['id']}: Tailscale {case['code']} {case['message']!r}, derptool {errors[:1]}")
    print(f"\n{category}: verdicts agreeing {agree}/{len(cases(category))}")
    assert not wrong, "\n".join(wrong)
