"""Properties of ``policy diff`` over random policies on a small tailnet with subnet routes and exit nodes.

* diff(A, A) is empty;
* what A -> B gains is what B -> A loses (access, SSH, egress, capabilities);
* A's access with the rows gained added and the rows lost taken away is B's access (as sets of points).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derptool.policy.engine import compile_policy
from derptool.policy.engine.compile import Compiled
from derptool.policy.engine.diff import AccessRow, PolicyDiff, diff_policies
from tests.policy.diff_tailnet import NET
from tests.policy.recorded_access import _explode, _pieces, _port_sets, cut, span, union

SOURCES = ["*", "group:dev", "alice@example.com", "tag:web", "autogroup:member", "10.1.2.0/24", "tag:router"]
DESTS = [
    "*:*",
    "tag:web:22",
    "websrv:80-90",
    "10.1.0.0/16:*",
    "10.1.3.0/24:443",
    "autogroup:internet:443",
    "tag:router:22,80",
    "lan:*",
    "autogroup:member:*",
    "autogroup:self:22",
]
PROTOS = [None, "tcp", "udp", "icmp", "sctp"]

acl = st.fixed_dictionaries(
    {
        "action": st.just("accept"),
        "src": st.lists(st.sampled_from(SOURCES), min_size=1, max_size=2, unique=True),
        "dst": st.lists(st.sampled_from(DESTS), min_size=1, max_size=3, unique=True),
    },
    optional={"proto": st.sampled_from(PROTOS[1:])},
)
ssh_rule = st.fixed_dictionaries(
    {
        "action": st.sampled_from(["accept", "check"]),
        "src": st.lists(
            st.sampled_from(["group:dev", "alice@example.com", "autogroup:member"]), min_size=1, max_size=2
        ),
        "dst": st.lists(st.sampled_from(["tag:web", "autogroup:self", "tag:router"]), min_size=1, max_size=2),
        "users": st.lists(st.sampled_from(["root", "autogroup:nonroot", "deploy"]), min_size=1, max_size=2),
    }
)
grant = st.fixed_dictionaries(
    {
        "src": st.lists(st.sampled_from(SOURCES), min_size=1, max_size=2, unique=True),
        "dst": st.lists(st.sampled_from(["tag:web", "tag:router", "10.1.0.0/16", "autogroup:internet"]), min_size=1),
        "app": st.just({"example.com/cap/admin": [{"level": 1}]}),
    }
)
policies = st.fixed_dictionaries(
    {
        "groups": st.just({"group:dev": ["alice@example.com"]}),
        "hosts": st.just({"websrv": "100.64.0.3", "lan": "10.1.4.0/22"}),
        "tagOwners": st.just({"tag:web": [], "tag:router": [], "tag:exit": []}),
        "acls": st.lists(acl, max_size=4),
        "ssh": st.lists(ssh_rule, max_size=2),
        "grants": st.lists(grant, max_size=1),
    },
    optional={"autoApprovers": st.just({"routes": {"10.0.0.0/8": ["tag:router"]}})},
)
EMPTY: dict[str, Any] = {"acls": []}
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _compile(policy: dict[str, Any]) -> Compiled:
    return compile_policy(policy, NET)


def _rows(d: PolicyDiff) -> dict[str, tuple[list[Any], list[Any]]]:
    return {
        "access": (d.access.gained, d.access.lost),
        "ssh": (d.ssh_gained, d.ssh_lost),
        "egress": (d.egress_gained, d.egress_lost),
        "capabilities": (d.caps_gained, d.caps_lost),
    }


@SETTINGS
@given(policies)
def test_a_policy_against_itself_changes_nothing(a: dict[str, Any]) -> None:
    c = _compile(a)
    d = diff_policies(c, _compile(json.loads(json.dumps(a))))
    assert d.empty
    assert d.to_json()["access"] == {"gained": [], "lost": []}


@SETTINGS
@given(policies, policies)
def test_gained_one_way_is_lost_the_other(a: dict[str, Any], b: dict[str, Any]) -> None:
    ca, cb = _compile(a), _compile(b)
    forward, backward = _rows(diff_policies(ca, cb)), _rows(diff_policies(cb, ca))
    for kind in forward:
        assert forward[kind][0] == backward[kind][1], kind
        assert forward[kind][1] == backward[kind][0], kind


def _boxes(rows: list[AccessRow]) -> list[tuple[Any, Any, Any, tuple[int, int]]]:
    names = {n.name for n in NET.nodes}
    out = []
    for r in rows:
        first, _, last = r.ports.partition("-")
        ports = (0, 65535) if first == "*" else (int(first), int(last or first))
        src = r.src if r.src in names else span(r.src)
        dst = r.dst if r.dst in names else span(r.dst)
        out.append((src, dst, r.proto, ports))
    return out


@SETTINGS
@given(policies, policies)
def test_applying_the_rows_to_the_old_access_gives_the_new(a: dict[str, Any], b: dict[str, Any]) -> None:
    empty, ca, cb = _compile(EMPTY), _compile(a), _compile(b)
    have_a = diff_policies(empty, ca).access.gained
    have_b = diff_policies(empty, cb).access.gained
    change = diff_policies(ca, cb).access
    everything = _boxes(have_a + have_b + change.gained + change.lost)
    src_pieces = _pieces([s for s, _, _, _ in everything if not isinstance(s, str)])
    dst_pieces = _pieces([d for _, d, _, _ in everything if not isinstance(d, str)])

    def cells(rows: list[AccessRow]) -> dict[Any, list[tuple[int, int]]]:
        return _port_sets(_explode(_boxes(rows), src_pieces, dst_pieces))

    pa, pb, gained, lost = cells(have_a), cells(have_b), cells(change.gained), cells(change.lost)
    applied = {}
    for key in pa.keys() | gained.keys():
        ports = cut(union(pa.get(key, []) + gained.get(key, [])), lost.get(key, []))
        if ports:
            applied[key] = ports
    assert applied == {k: v for k, v in pb.items() if v}
    assert all(not cut(v, cut(v, pa.get(k, []))) for k, v in gained.items())  # nothing gained was there
    assert all(not cut(v, pa.get(k, [])) for k, v in lost.items())  # everything lost was there
