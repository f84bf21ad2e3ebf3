"""The probe plan: which STUN probes a netcheck report sends, computed from the map as data.

Two kinds of plan, as Tailscale's netcheck makes them:

* a **full** plan (no usable previous report): every region that is not ``NoMeasureNoHome`` and has nodes
  gets three probes per address family, probe *i* to node *i mod len(nodes)*, starting *i* × 100 ms in;
* an **incremental** plan (given the previous report): only the three fastest regions of that report plus
  the home region (``PreferredDERP``). The fastest two get two tries, the home region four, the third one
  try; try *t* starts *t* × (1.2 × the region's last latency, or 200 ms without one), plus *t* × 50 ms from
  the third try on. IPv6 is probed in the incremental plan only where the last report had IPv6 answers;
  on dual-stack machines the slower regions alternate between IPv4 and IPv6. ``Avoid`` regions are left
  out unless they are the home region.

The previous report may be derptool's own :class:`~derptool.net.netcheck.report.Report`, its JSON form
(``derptool latency --format json``), or a dict in the JSON shape of Go's netcheck ``Report``
(``RegionLatency``, ``RegionV4Latency``, ``RegionV6Latency`` in nanoseconds, ``PreferredDERP``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from derptool.derpmap import DERPMap, DERPNode, DERPRegion

PROBES_PER_FAMILY = 3
PROBE_SPACING = 0.100
"""Seconds between the start of a region's successive probes in a full plan (netcheck's initial retransmit
time)."""
ACTIVE_RETRANSMIT = 0.200
"""Retry spacing of an incremental plan for a region without a previous latency (seconds)."""
INCREMENTAL_REGIONS = 3
"""How many of the fastest regions an incremental plan probes (besides the home region)."""

Family = Literal[4, 6]


class RegionLatencies(Protocol):
    """What a plan reads of one region of a previous report (:class:`~.report.RegionResult` has it)."""

    @property
    def id(self) -> int: ...
    @property
    def latency_ms(self) -> float | None: ...
    @property
    def v4_latency_ms(self) -> float | None: ...
    @property
    def v6_latency_ms(self) -> float | None: ...


class ReportLatencies(Protocol):
    """What a plan reads of a previous report (:class:`~.report.Report` has it; the plan does not import it)."""

    @property
    def regions(self) -> Sequence[RegionLatencies]: ...
    @property
    def preferred_region(self) -> int | None: ...


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
    """The whole plan, sorted by region ID: every region of the map for a full plan, only the probed ones
    for an incremental plan."""

    regions: tuple[RegionPlan, ...]
    incremental: bool = False

    @property
    def probes(self) -> list[Probe]:
        """Every STUN probe of the plan."""
        return [p for rp in self.regions for p in rp.probes]


@dataclass(frozen=True)
class LastReport:
    """What a plan needs from the previous report: latencies in milliseconds and the home region."""

    region_latency: Mapping[int, float] = field(default_factory=dict)
    v4_latency: Mapping[int, float] = field(default_factory=dict)
    v6_latency: Mapping[int, float] = field(default_factory=dict)
    preferred: int | None = None


def last_report(last: ReportLatencies | Mapping[str, Any] | LastReport) -> LastReport:
    """Read a previous report in any of the accepted shapes (see the module docstring).

    Raises :class:`ValueError` naming the field when a dict has the wrong shape.
    """
    if isinstance(last, LastReport):
        return last
    if isinstance(last, Mapping):
        keys = {k.lower(): k for k in last if isinstance(k, str)}
        if "regions" in keys or "preferred_region" in keys:
            return _from_derptool_data(last)
        return _from_go_data(last, keys)
    regions = last.regions
    return LastReport(
        region_latency={r.id: r.latency_ms for r in regions if r.latency_ms is not None},
        v4_latency={r.id: r.v4_latency_ms for r in regions if r.v4_latency_ms is not None},
        v6_latency={r.id: r.v6_latency_ms for r in regions if r.v6_latency_ms is not None},
        preferred=last.preferred_region,
    )


def _go_durations(data: Mapping[str, Any], keys: Mapping[str, str], name: str) -> dict[int, float]:
    raw = data.get(keys.get(name.lower(), name))
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{name} must be an object of region ID to nanoseconds")
    out: dict[int, float] = {}
    for key, ns in raw.items():
        try:
            rid = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: {key!r} is not a region ID") from None
        if isinstance(ns, bool) or not isinstance(ns, int | float) or ns < 0:
            raise ValueError(f"{name}[{key}]: {ns!r} is not a duration in nanoseconds")
        out[rid] = ns / 1e6
    return out


def _from_go_data(data: Mapping[str, Any], keys: Mapping[str, str]) -> LastReport:
    preferred = data.get(keys.get("preferredderp", "PreferredDERP"))
    if preferred is not None and (isinstance(preferred, bool) or not isinstance(preferred, int)):
        raise ValueError(f"PreferredDERP: {preferred!r} is not a region ID")
    return LastReport(
        region_latency=_go_durations(data, keys, "RegionLatency"),
        v4_latency=_go_durations(data, keys, "RegionV4Latency"),
        v6_latency=_go_durations(data, keys, "RegionV6Latency"),
        preferred=preferred or None,
    )


def _from_derptool_data(data: Mapping[str, Any]) -> LastReport:
    regions = data.get("regions") or []
    if not isinstance(regions, list):
        raise ValueError("regions must be a list")
    out: dict[str, dict[int, float]] = {"latency_ms": {}, "v4_latency_ms": {}, "v6_latency_ms": {}}
    for i, region in enumerate(regions):
        if (
            not isinstance(region, Mapping)
            or isinstance(region.get("id"), bool)
            or not isinstance(region.get("id"), int)
        ):
            raise ValueError(f"regions[{i}] has no integer id")
        for name, into in out.items():
            ms = region.get(name)
            if ms is None:
                continue
            if isinstance(ms, bool) or not isinstance(ms, int | float) or ms < 0:
                raise ValueError(f"regions[{i}].{name}: {ms!r} is not a latency in milliseconds")
            into[region["id"]] = float(ms)
    preferred = data.get("preferred_region")
    if preferred is not None and (isinstance(preferred, bool) or not isinstance(preferred, int)):
        raise ValueError(f"preferred_region: {preferred!r} is not a region ID")
    return LastReport(out["latency_ms"], out["v4_latency_ms"], out["v6_latency_ms"], preferred or None)


def make_plan(
    dmap: DERPMap,
    *,
    ipv4: bool = True,
    ipv6: bool = True,
    last: ReportLatencies | Mapping[str, Any] | LastReport | None = None,
) -> ProbePlan:
    """The probe plan for *dmap*: incremental after a *last* report with latencies, else full.

    *ipv4*/*ipv6* say whether this machine can use (and should probe) each family.
    """
    prev = None if last is None else last_report(last)
    if prev is None or not prev.region_latency:
        return _full_plan(dmap, ipv4=ipv4, ipv6=ipv6)
    return _incremental_plan(dmap, prev, ipv4=ipv4, ipv6=ipv6)


def _families(ipv4: bool, ipv6: bool) -> list[Family]:
    out: list[Family] = []
    if ipv4:
        out.append(4)
    if ipv6:
        out.append(6)
    return out


def _probe(region: DERPRegion, node: DERPNode, family: Family, delay: float) -> Probe | None:
    port = node.effective_stun_port
    host = node.stun_host(family)
    if port is None or host is None:
        return None
    return Probe(region.region_id, node.name, family, round(delay, 6), host, port)


def _region_plan(region: DERPRegion, probes: list[Probe], families: list[Family]) -> RegionPlan:
    https_node = next((n for n in region.nodes if not n.stun_only), None)
    note = None
    if not probes:
        if all(n.effective_stun_port is None for n in region.nodes):
            note = "STUN is disabled on every node (STUNPort -1)"
        elif not families:
            note = "both IPv4 and IPv6 are turned off"
        else:
            note = "no node has an address for the probed families"
    # probes of one family together, in start order (the engine groups them by family)
    probes.sort(key=lambda p: (p.family, p.delay))
    return RegionPlan(region, tuple(probes), https_node, stun_note=note)


def _full_plan(dmap: DERPMap, *, ipv4: bool, ipv6: bool) -> ProbePlan:
    families = _families(ipv4, ipv6)
    out = []
    for region in dmap.region_list():
        if region.no_measure_no_home:
            out.append(RegionPlan(region, (), None, skip="not measured: NoMeasureNoHome"))
            continue
        if not region.nodes:
            out.append(RegionPlan(region, (), None, skip="not measured: the region has no nodes"))
            continue
        probes = []
        for family in families:
            for i in range(PROBES_PER_FAMILY):
                p = _probe(region, region.nodes[i % len(region.nodes)], family, i * PROBE_SPACING)
                if p is not None:
                    probes.append(p)
        out.append(_region_plan(region, probes, families))
    return ProbePlan(tuple(out))


def _by_last_latency(dmap: DERPMap, prev: LastReport) -> list[DERPRegion]:
    """The measurable regions, fastest in *prev* first, those without a latency last (then by ID)."""
    regions = [
        r for r in dmap.region_list() if not r.no_measure_no_home and (not r.avoid or r.region_id == prev.preferred)
    ]

    def key(r: DERPRegion) -> tuple[bool, float, int]:
        ms = prev.region_latency.get(r.region_id) or 0.0
        return (ms == 0.0, ms, r.region_id)

    return sorted(regions, key=key)


def _incremental_plan(dmap: DERPMap, prev: LastReport, *, ipv4: bool, ipv6: bool) -> ProbePlan:
    had4 = bool(prev.v4_latency)
    had6 = bool(prev.v6_latency)
    had_both = ipv6 and had4 and had6
    home = prev.preferred
    have_home = home is None
    out = []
    for rank, region in enumerate(_by_last_latency(dmap, prev)):
        is_home = region.region_id == home
        if rank >= INCREMENTAL_REGIONS:
            if have_home:
                break
            if not is_home:
                continue
        do4, do6 = ipv4, ipv6
        fastest_two = rank < 2
        tries = 1
        if fastest_two or is_home:
            tries = 2
        elif had_both:  # dual stack: the slower regions alternate between the families
            do4, do6 = rank % 2 == 0, rank % 2 == 1
        if not is_home and not fastest_two and not had6:
            do6 = False
        if is_home:
            tries = 4  # try hard to keep the home region, so the home does not flap
            have_home = True
        spacing = (prev.region_latency.get(region.region_id) or 0.0) * 1.2 / 1000 or ACTIVE_RETRANSMIT
        probes: list[Probe] = []
        for attempt in range(tries if region.nodes else 0):
            if attempt and not had6:
                do6 = False
            node = region.nodes[attempt % len(region.nodes)]
            delay = attempt * spacing + (attempt * 0.050 if attempt > 1 else 0.0)
            wanted: tuple[tuple[Family, bool], ...] = ((4, do4), (6, do6))
            for family, want in wanted:
                if want:
                    p = _probe(region, node, family, delay)
                    if p is not None:
                        probes.append(p)
        if probes:
            out.append(_region_plan(region, probes, _families(do4, do6)))
    out.sort(key=lambda rp: rp.region.region_id)
    return ProbePlan(tuple(out), incremental=True)
