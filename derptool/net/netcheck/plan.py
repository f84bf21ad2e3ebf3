"""The probe plan: which STUN probes a full netcheck report sends, computed from the map as data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from derptool.derpmap import DERPMap, DERPNode, DERPRegion

PROBES_PER_FAMILY = 3
PROBE_SPACING = 0.100
"""Seconds between the start of a region's successive probes (netcheck's initial retransmit time)."""

Family = Literal[4, 6]


@dataclass(frozen=True)
class Probe:
    """One STUN probe: which node, which family, when (seconds after the start) and where to."""

    region_id: int
    node: str
    family: Family
    delay: float
    host: str
    """An IP address, or a host name to resolve for *family*."""
    port: int


@dataclass(frozen=True)
class RegionPlan:
    """What to do for one region."""

    region: DERPRegion
    probes: tuple[Probe, ...]
    https_node: DERPNode | None
    """The node to measure over HTTPS (the first that serves DERP), if any."""
    skip: str | None = None
    """Why the region is not measured at all (``NoMeasureNoHome``, no nodes)."""
    stun_note: str | None = None
    """Why the region has no STUN probes although it is measured."""


@dataclass(frozen=True)
class ProbePlan:
    """The whole plan, one entry per region of the map (sorted by region ID)."""

    regions: tuple[RegionPlan, ...]

    @property
    def probes(self) -> list[Probe]:
        """Every STUN probe of the plan."""
        return [p for rp in self.regions for p in rp.probes]


def make_plan(dmap: DERPMap, *, ipv4: bool = True, ipv6: bool = True) -> ProbePlan:
    """The full-report probe plan for *dmap* (netcheck's initial plan), as data."""
    families: list[Family] = []
    if ipv4:
        families.append(4)
    if ipv6:
        families.append(6)
    out = []
    for region in dmap.region_list():
        https_node = next((n for n in region.nodes if not n.stun_only), None)
        if region.no_measure_no_home:
            out.append(RegionPlan(region, (), None, skip="not measured: NoMeasureNoHome"))
            continue
        if not region.nodes:
            out.append(RegionPlan(region, (), None, skip="not measured: the region has no nodes"))
            continue
        probes = []
        for family in families:
            for i in range(PROBES_PER_FAMILY):
                node = region.nodes[i % len(region.nodes)]
                port = node.effective_stun_port
                host = node.stun_host(family)
                if port is None or host is None:
                    continue
                probes.append(Probe(region.region_id, node.name, family, i * PROBE_SPACING, host, port))
        note = None
        if not probes:
            if all(n.effective_stun_port is None for n in region.nodes):
                note = "STUN is disabled on every node (STUNPort -1)"
            elif not families:
                note = "both IPv4 and IPv6 are turned off"
            else:
                note = "no node has an address for the probed families"
        out.append(RegionPlan(region, tuple(probes), https_node, stun_note=note))
    return ProbePlan(tuple(out))
