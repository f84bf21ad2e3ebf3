"""The probe plan is data computed from the map; the preferred region is a pure choice."""

from __future__ import annotations

from typing import Any

from derptool.derpmap import parse_derpmap
from derptool.net.netcheck import Probe, RegionResult, make_plan, preferred_region


def _node(name: str, rid: int, **kw: Any) -> dict[str, Any]:
    return {"Name": name, "RegionID": rid, "HostName": f"{name}.example.test", **kw}


def _map(*regions: dict[str, Any], **extra: Any) -> Any:
    return parse_derpmap({"Regions": {str(r["RegionID"]): r for r in regions}, **extra})


def _region(rid: int, nodes: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"RegionID": rid, "RegionCode": f"r{rid}", "RegionName": f"Region {rid}", "Nodes": nodes, **kw}


def test_three_probes_per_family_round_robin_staggered() -> None:
    dmap = _map(_region(1, [_node("1a", 1, IPv4="192.0.2.1", IPv6="2001:db8::1"),
                            _node("1b", 1, IPv4="192.0.2.2", IPv6="2001:db8::2", STUNPort=3479)]))
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
    dmap = _map(_region(1, [_node("a", 1, IPv4="none", IPv6="")]),
                _region(2, [_node("b", 2, HostName="198.51.100.7")]))
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
        _region(1, [_node("off", 1, IPv4="192.0.2.1", IPv6="none", STUNPort=-1),
                    _node("on", 1, IPv4="192.0.2.2", IPv6="none")]),
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
