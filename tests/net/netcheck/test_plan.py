"""The probe plan is data computed from the map; the preferred region is a pure choice."""

from __future__ import annotations

import json
from typing import Any

import pytest

from derptool.derpmap import parse_derpmap
from derptool.net.netcheck import LastReport, Probe, RegionResult, Report, last_report, make_plan, preferred_region


def _node(name: str, rid: int, **kw: Any) -> dict[str, Any]:
    return {"Name": name, "RegionID": rid, "HostName": f"{name}.example.test", **kw}


def _map(*regions: dict[str, Any], **extra: Any) -> Any:
    return parse_derpmap({"Regions": {str(r["RegionID"]): r for r in regions}, **extra})


def _region(rid: int, nodes: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"RegionID": rid, "RegionCode": f"r{rid}", "RegionName": f"Region {rid}", "Nodes": nodes, **kw}


def test_three_probes_per_family_round_robin_staggered() -> None:
    dmap = _map(
        _region(
            1,
            [
                _node("1a", 1, IPv4="192.0.2.1", IPv6="2001:db8::1"),
                _node("1b", 1, IPv4="192.0.2.2", IPv6="2001:db8::2", STUNPort=3479),
            ],
        )
    )
    (rp,) = make_plan(dmap).regions
    assert rp.probes == (
        Probe(1, "1a", 4, 0.0, "192.0.2.1", 3478),
        Probe(1, "1b", 4, 0.1, "192.0.2.2", 3479),
        Probe(1, "1a", 4, 0.2, "192.0.2.1", 3478),
        Probe(1, "1a", 6, 0.0, "2001:db8::1", 3478),
        Probe(1, "1b", 6, 0.1, "2001:db8::2", 3479),
        Probe(1, "1a", 6, 0.2, "2001:db8::1", 3478),
    )
    assert rp.https_node is not None and rp.https_node.name == "1a"


def test_families_none_empty_and_switches() -> None:
    dmap = _map(_region(1, [_node("a", 1, IPv4="none", IPv6="")]), _region(2, [_node("b", 2, HostName="198.51.100.7")]))
    plan = make_plan(dmap)
    a, b = plan.regions
    # "none" disables IPv4; an empty IPv6 means "resolve HostName"
    assert {(p.family, p.host) for p in a.probes} == {(6, "a.example.test")}
    # a HostName that is an IPv4 literal gives no IPv6 probe
    assert {(p.family, p.host) for p in b.probes} == {(4, "198.51.100.7")}
    assert make_plan(dmap, ipv6=False).regions[0].probes == ()
    assert make_plan(dmap, ipv6=False).regions[0].stun_note == "no node has an address for the probed families"
    assert {p.family for p in make_plan(dmap, ipv4=False).probes} == {6}


def test_stun_disabled_nodes_skipped_and_stun_only_probed() -> None:
    dmap = _map(
        _region(
            1,
            [
                _node("off", 1, IPv4="192.0.2.1", IPv6="none", STUNPort=-1),
                _node("on", 1, IPv4="192.0.2.2", IPv6="none"),
            ],
        ),
        _region(2, [_node("x", 2, IPv4="192.0.2.3", IPv6="none", STUNPort=-1)]),
        _region(3, [_node("s", 3, IPv4="192.0.2.4", IPv6="none", STUNOnly=True)]),
    )
    r1, r2, r3 = make_plan(dmap).regions
    assert [(p.node, p.delay) for p in r1.probes] == [("on", 0.1)]
    assert r2.probes == () and r2.stun_note == "STUN is disabled on every node (STUNPort -1)"
    assert r2.https_node is not None  # measured over HTTPS instead
    assert len(r3.probes) == 3 and r3.https_node is None


def test_no_measure_no_home_and_empty_regions_are_not_measured_avoid_is() -> None:
    dmap = _map(
        _region(1, [_node("a", 1, IPv4="192.0.2.1")], NoMeasureNoHome=True),
        _region(2, []),
        _region(3, [_node("c", 3, IPv4="192.0.2.3", IPv6="none")], Avoid=True),
    )
    r1, r2, r3 = make_plan(dmap).regions
    assert r1.probes == () and r1.skip == "not measured: NoMeasureNoHome"
    assert r2.probes == () and r2.skip is not None
    assert len(r3.probes) == 3 and r3.skip is None


def test_stun_test_ip_overrides_the_address() -> None:
    dmap = _map(_region(1, [_node("a", 1, IPv4="192.0.2.1", IPv6="2001:db8::1", STUNTestIP="127.0.0.5")]))
    probes = make_plan(dmap).regions[0].probes
    assert {(p.family, p.host) for p in probes} == {(4, "127.0.0.5")}


def _res(rid: int, ms: float | None, *, avoid: bool = False, score: float | None = None) -> RegionResult:
    return RegionResult(id=rid, code=f"r{rid}", name="", latency_ms=ms, avoid=avoid, score=score)


def test_preferred_region_lowest_not_avoid_with_scores() -> None:
    assert preferred_region([_res(1, 30), _res(2, 10, avoid=True), _res(3, 20), _res(4, None)]) == 3
    # a RegionScore below 1 makes a region more attractive: 30 * 0.5 = 15 < 20
    assert preferred_region([_res(1, 30, score=0.5), _res(3, 20)]) == 1
    # scores of zero or below are ignored, like netcheck
    assert preferred_region([_res(1, 30, score=0.0), _res(3, 20)]) == 3
    assert preferred_region([_res(1, None), _res(2, 5, avoid=True)]) is None


def test_previous_home_is_kept_unless_clearly_better() -> None:
    regions = [_res(1, 30), _res(2, 25), _res(3, 100)]
    assert preferred_region(regions) == 2
    assert preferred_region(regions, previous=1) == 1  # 5 ms better: not enough
    assert preferred_region([_res(1, 60), _res(2, 45)], previous=1) == 1  # 15 ms but not a third better
    assert preferred_region([_res(1, 30), _res(2, 15)], previous=1) == 2  # 15 ms and half
    assert preferred_region(regions, previous=3) == 2  # 75 ms and a quarter
    assert preferred_region([_res(1, None), _res(2, 50)], previous=1) == 2  # the old home is gone
    assert preferred_region([_res(1, 30, avoid=True), _res(2, 35)], previous=1) == 2


# -- Go's TestMakeProbePlan, as our own table ----------------------------------------------------
# The map: regions 1..6, region N has N nodes "Na", "Nb", ... (IPv4 N.0.0.i, IPv6 N::i); region 6 is
# NoMeasureNoHome. Expected plans are written like Go's: "region-R-vF" -> [(node, delay in ms)].


def _go_basic_map() -> Any:
    regions = []
    for rid in range(1, 7):
        nodes = [
            {
                "Name": f"{rid}{chr(ord('a') + i)}",
                "RegionID": rid,
                "HostName": f"derp{rid}-{i}",
                "IPv4": f"{rid}.0.0.{i}",
                "IPv6": f"{rid}::{i}",
            }
            for i in range(rid)
        ]
        regions.append(_region(rid, nodes, NoMeasureNoHome=rid == 6))
    return _map(*regions)


def _initial(families: tuple[int, ...]) -> dict[str, list[tuple[str, float]]]:
    nodes = {1: "aaa", 2: "aba", 3: "abc", 4: "abc", 5: "abc"}
    return {
        f"region-{r}-v{f}": [(f"{r}{n}", i * 100.0) for i, n in enumerate(nodes[r])]
        for r in range(1, 6)
        for f in families
    }


def _ms(d: dict[int, int]) -> dict[str, int]:
    """Milliseconds as Go's JSON durations (nanoseconds, keys as strings)."""
    return {str(k): v * 1_000_000 for k, v in d.items()}


_LAT_10_40 = {1: 10, 2: 20, 3: 30, 4: 40}
GO_PLAN_CASES: list[tuple[str, bool, bool, dict[str, Any] | None, dict[str, list[tuple[str, float]]]]] = [
    # name, have IPv4, have IPv6, last report (Go JSON shape), wanted plan
    ("initial_v6", True, True, None, _initial((4, 6))),
    ("initial_no_v6", True, False, None, _initial((4,))),
    (
        "second_v4_no_6if",
        True,
        False,
        {"RegionLatency": _ms(_LAT_10_40), "RegionV4Latency": _ms(_LAT_10_40)},
        {"region-1-v4": [("1a", 0), ("1a", 12)], "region-2-v4": [("2a", 0), ("2b", 24)], "region-3-v4": [("3a", 0)]},
    ),
    (
        "second_v4_only_with_6if",
        True,
        True,
        {"RegionLatency": _ms(_LAT_10_40), "RegionV4Latency": _ms(_LAT_10_40)},
        {
            "region-1-v4": [("1a", 0), ("1a", 12)],
            "region-1-v6": [("1a", 0)],
            "region-2-v4": [("2a", 0), ("2b", 24)],
            "region-2-v6": [("2a", 0)],
            "region-3-v4": [("3a", 0)],
        },
    ),
    (
        "second_mixed",
        True,
        True,
        {
            "RegionLatency": _ms(_LAT_10_40),
            "RegionV4Latency": _ms({1: 10, 2: 20}),
            "RegionV6Latency": _ms({3: 30, 4: 40}),
        },
        {
            "region-1-v4": [("1a", 0), ("1a", 12)],
            "region-1-v6": [("1a", 0), ("1a", 12)],
            "region-2-v4": [("2a", 0), ("2b", 24)],
            "region-2-v6": [("2a", 0), ("2b", 24)],
            "region-3-v4": [("3a", 0)],
        },
    ),
    ("only_v6_initial", False, True, None, _initial((6,))),
    (
        "try_harder_for_preferred_derp",
        True,
        True,
        {
            "RegionLatency": _ms(_LAT_10_40),
            "RegionV4Latency": _ms({1: 10, 2: 20}),
            "RegionV6Latency": _ms({3: 30, 4: 40}),
            "PreferredDERP": 1,
        },
        {
            "region-1-v4": [("1a", 0), ("1a", 12), ("1a", 124), ("1a", 186)],
            "region-1-v6": [("1a", 0), ("1a", 12), ("1a", 124), ("1a", 186)],
            "region-2-v4": [("2a", 0), ("2b", 24)],
            "region-2-v6": [("2a", 0), ("2b", 24)],
            "region-3-v4": [("3a", 0)],
        },
    ),
    (
        "ensure_home_region_inclusion",
        True,
        True,
        {
            "RegionLatency": _ms({1: 50, 2: 20, 3: 30, 4: 40}),
            "RegionV4Latency": _ms({1: 50, 2: 20}),
            "RegionV6Latency": _ms({3: 30, 4: 40}),
            "PreferredDERP": 1,
        },
        {
            "region-1-v4": [("1a", 0), ("1a", 60), ("1a", 220), ("1a", 330)],
            "region-1-v6": [("1a", 0), ("1a", 60), ("1a", 220), ("1a", 330)],
            "region-2-v4": [("2a", 0), ("2b", 24)],
            "region-2-v6": [("2a", 0), ("2b", 24)],
            "region-3-v4": [("3a", 0), ("3b", 36)],
            "region-3-v6": [("3a", 0), ("3b", 36)],
            "region-4-v4": [("4a", 0)],
        },
    ),
]


def _as_go_plan(plan: Any) -> dict[str, list[tuple[str, float]]]:
    out: dict[str, list[tuple[str, float]]] = {}
    for p in plan.probes:
        out.setdefault(f"region-{p.region_id}-v{p.family}", []).append((p.node, round(p.delay * 1000, 3)))
    return out


@pytest.mark.parametrize(("name", "v4", "v6", "last", "want"), GO_PLAN_CASES, ids=[c[0] for c in GO_PLAN_CASES])
def test_go_make_probe_plan_cases(
    name: str, v4: bool, v6: bool, last: dict[str, Any] | None, want: dict[str, list[tuple[str, float]]]
) -> None:
    plan = make_plan(_go_basic_map(), ipv4=v4, ipv6=v6, last=last)
    assert _as_go_plan(plan) == want
    assert plan.incremental == (last is not None)
    # probes go to the node's address of their family
    for p in plan.probes:
        assert p.host == (
            f"{p.region_id}.0.0.{ord(p.node[1]) - 97}" if p.family == 4 else f"{p.region_id}::{ord(p.node[1]) - 97}"
        )


def test_go_sort_regions_case_fastest_first_unknown_last() -> None:
    # Go's TestSortRegions: latencies 5, 3, 6, 0 (none), 2 seconds -> regions 5, 2, 1, 3; region 4 last
    dmap = _map(*(_region(r, [_node(f"{r}a", r, IPv4=f"{r}.0.0.1", IPv6="none")]) for r in range(1, 6)))
    last = {"RegionLatency": {"1": 5e9, "2": 3e9, "3": 6e9, "4": 0, "5": 2e9}}
    plan = make_plan(dmap, ipv6=False, last=last)
    # the three fastest are probed: 5 and 2 twice (one node each, so both to "Na"), 1 once
    assert _as_go_plan(plan) == {
        "region-5-v4": [("5a", 0), ("5a", 2400)],
        "region-2-v4": [("2a", 0), ("2a", 3600)],
        "region-1-v4": [("1a", 0)],
    }


def _derptool_report(
    lat: dict[int, float], v4: dict[int, float], v6: dict[int, float], preferred: int | None
) -> Report:
    regions = [
        RegionResult(id=r, code=f"r{r}", name="", latency_ms=ms, v4_latency_ms=v4.get(r), v6_latency_ms=v6.get(r))
        for r, ms in lat.items()
    ]
    return Report(map_source="test", preferred_region=preferred, regions=regions)


def test_last_report_in_every_shape_gives_the_same_plan() -> None:
    dmap = _go_basic_map()
    go_last = {
        "RegionLatency": _ms({1: 50, 2: 20, 3: 30, 4: 40}),
        "RegionV4Latency": _ms({1: 50, 2: 20}),
        "RegionV6Latency": _ms({3: 30, 4: 40}),
        "PreferredDERP": 1,
    }
    ours = _derptool_report({1: 50, 2: 20, 3: 30, 4: 40}, {1: 50, 2: 20}, {3: 30, 4: 40}, 1)
    want = make_plan(dmap, last=go_last)
    assert make_plan(dmap, last=ours) == want
    assert make_plan(dmap, last=ours.to_data()) == want
    assert make_plan(dmap, last=json.loads(json.dumps(ours.to_data()))) == want
    # Go's decoder matches keys in any case
    assert make_plan(dmap, last={k.lower(): v for k, v in go_last.items()}) == want
    assert last_report(go_last) == LastReport(
        {1: 50.0, 2: 20.0, 3: 30.0, 4: 40.0}, {1: 50.0, 2: 20.0}, {3: 30.0, 4: 40.0}, 1
    )


def test_a_previous_report_without_latencies_gives_a_full_plan() -> None:
    dmap = _go_basic_map()
    full = make_plan(dmap)
    assert make_plan(dmap, last={"RegionLatency": {}, "PreferredDERP": 3}) == full
    assert make_plan(dmap, last=_derptool_report({}, {}, {}, None)) == full
    assert not full.incremental and len(full.regions) == 6  # every region, NoMeasureNoHome as skipped


@pytest.mark.parametrize(
    ("last", "message"),
    [
        ({"RegionLatency": [1, 2]}, "RegionLatency must be an object"),
        ({"RegionLatency": {"x": 1}}, "'x' is not a region ID"),
        ({"RegionLatency": {"1": "fast"}}, "not a duration in nanoseconds"),
        ({"RegionLatency": {"1": -5}}, "not a duration in nanoseconds"),
        ({"PreferredDERP": "1"}, "PreferredDERP"),
        ({"regions": [{"id": "1"}]}, "regions\\[0\\] has no integer id"),
        ({"regions": [{"id": 1, "latency_ms": True}]}, "not a latency"),
    ],
)
def test_bad_previous_reports_are_named(last: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_plan(_go_basic_map(), last=last)


def test_incremental_plan_skips_avoid_unless_home_and_never_no_measure() -> None:
    nodes = {r: [_node(f"{r}a", r, IPv4=f"192.0.2.{r}", IPv6="none")] for r in range(1, 6)}
    dmap = _map(
        _region(1, nodes[1], Avoid=True),
        _region(2, nodes[2], NoMeasureNoHome=True),
        *(_region(r, nodes[r]) for r in range(3, 6)),
    )
    lat = {"RegionLatency": _ms({1: 5, 2: 6, 3: 30, 4: 40, 5: 50}), "RegionV4Latency": _ms({1: 5, 3: 30})}
    assert [rp.region.region_id for rp in make_plan(dmap, ipv6=False, last=lat).regions] == [3, 4, 5]
    # the Avoid region is the home: it is probed, four times
    plan = make_plan(dmap, ipv6=False, last={**lat, "PreferredDERP": 1})
    assert [rp.region.region_id for rp in plan.regions] == [1, 3, 4]
    assert len(plan.regions[0].probes) == 4


def test_incremental_plan_default_spacing_without_a_latency_for_home() -> None:
    # the home region had no latency last time: 200 ms spacing, +50 ms per try from the third on
    dmap = _go_basic_map()
    last = {"RegionLatency": _ms({1: 10, 2: 20, 3: 30}), "RegionV4Latency": _ms({1: 10}), "PreferredDERP": 5}
    got = _as_go_plan(make_plan(dmap, ipv6=False, last=last))
    assert got["region-5-v4"] == [("5a", 0), ("5b", 200), ("5c", 500), ("5d", 750)]
    assert set(got) == {"region-1-v4", "region-2-v4", "region-3-v4", "region-5-v4"}
