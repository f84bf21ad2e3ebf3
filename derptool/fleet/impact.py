"""What a geofence costs each site: its home region before and after removing regions, and the increase.

Pure: give it the sites' reports, the DERP map and the region IDs the geofence removes
(:func:`derptool.edit.omit.plan_omit` decides those, so ``impact`` and ``omit`` remove the same regions).

The home region follows netcheck's rule, through :func:`derptool.net.netcheck.report.preferred_region`: the
lowest latency, each first multiplied by its ``HomeParams.RegionScore`` when positive; regions flagged ``Avoid``
or ``NoMeasureNoHome`` in the map are never home; the current home is kept unless the best is at least 10 ms
and a third better. *Before* starts from the home the site reported (netcheck would keep it on its next run);
*after* starts from the before home when it survives the geofence, so a site whose home stays keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from derptool.derpmap import DERPMap
from derptool.fleet.reports import SiteReport
from derptool.net.netcheck.report import RegionResult, preferred_region


@dataclass(frozen=True)
class Home:
    """A site's home region and its measured latency (not multiplied by a RegionScore)."""

    region: int
    code: str
    latency_ms: float

    def to_data(self) -> dict[str, Any]:
        """``{"region": id, "latency_ms": float}`` as in the JSON contract."""
        return {"region": self.region, "latency_ms": round(self.latency_ms, 3)}


@dataclass(frozen=True)
class SiteImpact:
    """One site: its home before and after the geofence (``after`` None: no measured region is left)."""

    site: str
    before: Home
    after: Home | None
    source: str = ""

    @property
    def increase_ms(self) -> float | None:
        """How much longer the round trip to the new home is (negative when faster); None when no home is left."""
        return None if self.after is None else self.after.latency_ms - self.before.latency_ms

    @property
    def moved(self) -> bool:
        """True when the site's home region changes."""
        return self.after is None or self.after.region != self.before.region

    def to_data(self) -> dict[str, Any]:
        """The site as in ``derptool impact --format json``."""
        inc = self.increase_ms
        return {
            "site": self.site,
            "before": self.before.to_data(),
            "after": None if self.after is None else self.after.to_data(),
            "increase_ms": None if inc is None else round(inc, 3),
        }


@dataclass
class Impact:
    """The cost of one geofence over many sites; ``sites`` sorted worst first (no home left, then by increase)."""

    omitted: list[int]
    sites: list[SiteImpact]
    notes: list[str] = field(default_factory=list)
    """Sites left out (no region of the map can be their home) and other remarks, one line each."""

    @property
    def stranded(self) -> list[SiteImpact]:
        """Sites left with no measured region after the geofence."""
        return [s for s in self.sites if s.after is None]

    @property
    def worst(self) -> SiteImpact | None:
        """The site with the largest increase among those that keep a home (None when no site does)."""
        kept = [s for s in self.sites if s.increase_ms is not None]
        return max(kept, key=lambda s: (s.increase_ms, s.site)) if kept else None

    @property
    def worst_increase_ms(self) -> float | None:
        """The largest increase of a site that keeps a home."""
        worst = self.worst
        return None if worst is None else worst.increase_ms

    def over_budget(self, max_increase_ms: float) -> list[SiteImpact]:
        """Sites whose increase exceeds *max_increase_ms*, and sites left without any home."""
        return [s for s in self.sites if s.increase_ms is None or s.increase_ms > max_increase_ms]

    def to_data(self) -> dict[str, Any]:
        """The JSON contract of ``derptool impact --format json`` (DESIGN.md)."""
        worst = self.worst_increase_ms
        return {
            "omitted": list(self.omitted),
            "sites": [s.to_data() for s in self.sites],
            "worst_increase_ms": None if worst is None else round(worst, 3),
        }


def home_region(
    latencies_ms: dict[int, float], dmap: DERPMap, *, previous: int | None = None, exclude: Iterable[int] = ()
) -> Home | None:
    """The home region netcheck would choose from *latencies_ms* over the regions of *dmap* (minus *exclude*).

    Regions the site measured that are not in the map are ignored; so are ``Avoid`` and ``NoMeasureNoHome``
    regions (measured perhaps, never home).
    """
    excluded = set(exclude)
    scores = dmap.home_params.region_score if dmap.home_params is not None else {}
    candidates = []
    for rid, ms in latencies_ms.items():
        region = dmap.regions.get(rid)
        if region is None or rid in excluded:
            continue
        candidates.append(
            RegionResult(
                id=rid,
                code=region.region_code,
                name=region.region_name,
                latency_ms=ms,
                avoid=region.avoid or region.no_measure_no_home,
                score=scores.get(rid),
            )
        )
    chosen = preferred_region(candidates, previous)
    if chosen is None:
        return None
    result = next(r for r in candidates if r.id == chosen)
    assert result.latency_ms is not None
    return Home(chosen, result.code, result.latency_ms)


def _order(s: SiteImpact) -> tuple[bool, float, str]:
    inc = s.increase_ms
    return (inc is not None, -(inc or 0.0), s.site)


def assess(reports: Iterable[SiteReport], dmap: DERPMap, omitted: Iterable[int]) -> Impact:
    """The impact of removing the regions *omitted* from *dmap* on each site of *reports*."""
    removed = sorted(set(omitted))
    sites: list[SiteImpact] = []
    notes: list[str] = []
    for report in reports:
        before = home_region(report.latencies_ms, dmap, previous=report.preferred)
        if before is None:
            unknown = sorted(set(report.latencies_ms) - set(dmap.regions))
            why = (
                f"measured only regions this map does not have ({', '.join(map(str, unknown[:6]))}"
                f"{' ...' if len(unknown) > 6 else ''}); pass the map it measured with --map"
                if len(unknown) == len(report.latencies_ms)
                else "none of the regions it measured may be home (Avoid or NoMeasureNoHome)"
            )
            notes.append(f"site {report.site} ({report.source}) left out: {why}")
            continue
        after = home_region(report.latencies_ms, dmap, previous=before.region, exclude=removed)
        sites.append(SiteImpact(report.site, before, after, report.source))
    sites.sort(key=_order)
    return Impact(removed, sites, notes)


def assess_change(reports: Iterable[SiteReport], old: DERPMap, new: DERPMap) -> Impact:
    """Each site's home under the map *old* and then under *new* (e.g. two versions of a policy's derpMap).

    ``omitted`` lists the regions of *old* that *new* lacks. A region only *new* has was never measured by
    the sites, so it cannot become a home here.
    """
    removed = sorted(set(old.regions) - {rid for rid, r in new.regions.items() if r is not None})
    sites: list[SiteImpact] = []
    notes: list[str] = []
    for report in reports:
        before = home_region(report.latencies_ms, old, previous=report.preferred)
        if before is None:
            notes.append(f"site {report.site} ({report.source}) left out: no region it measured may be home")
            continue
        after = home_region(report.latencies_ms, new, previous=before.region)
        sites.append(SiteImpact(report.site, before, after, report.source))
    sites.sort(key=_order)
    return Impact(removed, sites, notes)
