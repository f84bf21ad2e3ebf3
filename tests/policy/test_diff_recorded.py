"""``policy diff`` against Tailscale itself: access gained and lost between two recorded policies.

The recordings (tests/data/tailscale-captures, BSD-3 data from headscale's compatibility captures, see its
NOTICE) hold many policies over one tailnet per category (same nodes, users, tags and routes; addresses may
differ, so nodes are matched by name). For pairs of them, the access each device has before and after comes
straight from Tailscale's recorded packet filters (:mod:`tests.policy.recorded_access`, interval arithmetic
written without derptool's engine); the diff of derptool's two compiled policies must report exactly that
difference, row for row. The count of agreeing pairs is printed (``pytest -s``).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from derptool.policy.engine import compile_policy
from derptool.policy.engine.compile import Compiled
from derptool.policy.engine.diff import diff_policies
from derptool.policy.engine.tailnet import from_topology
from tests.policy.recorded_access import Recording, expected_rows

DATA = Path(__file__).parent.parent / "data" / "tailscale-captures"
CATEGORIES = ("acl", "grant", "routes", "ssh", "nodeattrs", "policytest", "sshtest")
STRIDES = (1, 5)
"""Pairs: each accepted case with the next one and the fifth next one of the same tailnet."""
KNOWN: set[tuple[str, str]] = set()
"""Pairs allowed to disagree (none today)."""

Row = tuple[str, str, str | int, str]


@cache
def _cases() -> list[dict[str, Any]]:
    out = []
    for category in CATEGORIES:
        doc = json.loads((DATA / f"{category}.json").read_text(encoding="utf-8"))
        out += [
            c
            for c in doc["cases"]
            if c.get("code") == 200 and c.get("nodes") and set(c["nodes"]) == set(c["topology"]["nodes"])
        ]
    return out


def _shape(case: dict[str, Any]) -> str:
    """The tailnet without its addresses: cases with the same shape form pairs."""
    topo = case["topology"]
    nodes = {k: {kk: vv for kk, vv in v.items() if kk not in ("ipv4", "ipv6")} for k, v in topo["nodes"].items()}
    return json.dumps({"users": topo["users"], "nodes": nodes}, sort_keys=True)


def pairs() -> list[tuple[str, str]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in _cases():
        groups.setdefault(_shape(c), []).append(c)
    out = []
    for members in groups.values():
        for stride in STRIDES:
            out += [(members[i]["id"], members[i + stride]["id"]) for i in range(len(members) - stride)]
    return out


@cache
def _by_id() -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in _cases()}


def _policy(case: dict[str, Any]) -> dict[str, Any]:
    p = case["policy"]
    return p if isinstance(p, dict) else dict(json.loads(p))


@cache
def _compiled(case_id: str, names_from: str) -> Compiled:
    """*case_id*'s policy compiled for the tailnet of *names_from* with *case_id*'s addresses."""
    case = _by_id()[case_id]
    topology = json.loads(json.dumps(case["topology"]))
    for seen in case["nodes"].values():
        for peer in seen.get("peers") or []:
            prim = topology["nodes"][peer["name"]].setdefault("primary_routes", [])
            prim.extend(r for r in peer.get("primary_routes") or [] if r not in prim)
    order = list(_by_id()[names_from]["topology"]["nodes"])
    topology["nodes"] = {name: topology["nodes"][name] for name in order}
    return compile_policy(_policy(case), from_topology(topology))


def _readdress(compiled: Compiled, like: Compiled) -> None:
    """Nothing to do: diff matches nodes by position, and both tailnets list the same names in one order."""
    assert [n.name for n in compiled.tailnet.nodes] == [n.name for n in like.tailnet.nodes]


def diff_rows(old_id: str, new_id: str) -> tuple[set[Row], set[Row]]:
    old, new = _compiled(old_id, old_id), _compiled(new_id, old_id)
    _readdress(new, old)
    d = diff_policies(old, new)
    return (
        {(r.src, r.dst, r.proto, r.ports) for r in d.access.gained},
        {(r.src, r.dst, r.proto, r.ports) for r in d.access.lost},
    )


def test_pairs_of_recorded_policies_agree_row_for_row() -> None:
    agree, total, wrong = 0, 0, []
    for old_id, new_id in pairs():
        total += 1
        want = expected_rows(Recording(_by_id()[old_id]), Recording(_by_id()[new_id]))
        got = diff_rows(old_id, new_id)
        if got == want:
            agree += 1
        elif (old_id, new_id) not in KNOWN:
            wrong.append((old_id, new_id, sorted(got[0] ^ want[0])[:3], sorted(got[1] ^ want[1])[:3]))
    print(f"\npolicy diff vs Tailscale's recorded filters: {agree} of {total} pairs agree row for row")
    assert total > 500
    assert not wrong, wrong[:5]


@pytest.mark.parametrize("stride", STRIDES)
def test_pairs_change_something(stride: int) -> None:
    """The comparison is not vacuous: most pairs differ in access."""
    chosen = [p for p in pairs()][: 200 // stride]
    changed = sum(1 for old_id, new_id in chosen if any(diff_rows(old_id, new_id)))
    assert changed > len(chosen) // 2
