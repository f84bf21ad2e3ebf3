"""Which regions a jurisdiction should keep so that no site's latency grows by more than a budget.

``derptool impact --keep eu --suggest --max-increase 30`` asks: of the regions the geofence allows, which few must
stay so that every site still has a home within 30 ms of its current one, and which sites cannot be served at
all. It is a set cover: a region *serves* a site when the site measured it at most ``budget`` ms slower than its
current home. Greedy cover (the region serving most unserved sites first; ties to the lower total latency to those
sites, then the lower ID) gives a small set, not always the smallest; the result is then checked with
:func:`assess` under netcheck's home rule, and a site whose chosen home still misses the budget gets its fastest
serving region added.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from derptool.derpmap import DERPMap
from derptool.fleet.impact import Impact, assess, home_region
from derptool.fleet.reports import SiteReport


@dataclass(frozen=True)
class Suggestion:
    """The regions to keep, the sites no allowed region can serve within the budget, and the resulting impact."""

    keep: list[int]
    """Region IDs to keep (a subset of the allowed ones), sorted."""
    unmet: list[str]
    """Sites that no allowed region serves within the budget (they are over it whatever is kept)."""
    impact: Impact
    """The impact of keeping exactly :attr:`keep` (every other region of the map removed)."""


def suggest(reports: Sequence[SiteReport], dmap: DERPMap, allowed: Iterable[int], max_increase_ms: float) -> Suggestion:
    """The regions among *allowed* to keep so that no site's home latency grows by more than *max_increase_ms*."""
    allowed_ids = set(allowed)
    homeable = {
        rid for rid in allowed_ids if (r := dmap.regions.get(rid)) is not None and not (r.avoid or r.no_measure_no_home)
    }
    serves: dict[int, set[str]] = {rid: set() for rid in homeable}
    fastest: dict[str, int] = {}
    unmet: list[str] = []
    for report in reports:
        before = home_region(report.latencies_ms, dmap, previous=report.preferred)
        if before is None:
            continue  # assess() leaves it out with a note
        limit = before.latency_ms + max_increase_ms
        good = [(ms, rid) for rid, ms in report.latencies_ms.items() if rid in homeable and ms <= limit]
        if not good:
            unmet.append(report.site)
            continue
        for _, rid in good:
            serves[rid].add(report.site)
        fastest[report.site] = min(good)[1]
    latency = {r.site: r.latencies_ms for r in reports}
    keep: set[int] = set()
    unserved = set(fastest)

    def rank(rid: int) -> tuple[int, float, int]:
        covered = serves[rid] & unserved
        return -len(covered), sum(latency[site][rid] for site in covered), rid

    while unserved:
        best = min(serves, key=rank)
        keep.add(best)
        unserved -= serves[best]
    while True:  # netcheck's rule may pick another kept region than the one that serves a site: repair
        impact = assess(reports, dmap, [rid for rid in dmap.regions if rid not in keep])
        missing = {fastest[s.site] for s in impact.over_budget(max_increase_ms) if s.site in fastest} - keep
        if not missing:
            return Suggestion(sorted(keep), sorted(unmet), impact)
        keep |= missing
