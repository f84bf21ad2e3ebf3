"""DERP regions a policy's ``derpMap`` change removes, adds or changes, and what that costs each site.

Both policies' ``derpMap`` overlays are merged over the same base map (Tailscale's default map) and the
two maps compared (:func:`derptool.derpmap.diff.diff_maps`). The two maps are kept, so that a caller with
latency reports can set ``impact`` from :func:`derptool.fleet.impact.assess_change` (the fleet code, with
its report readers, is loaded only by callers that have reports).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from derptool.derpmap import DERPMap, DERPRegion
from derptool.derpmap.diff import diff_maps
from derptool.derpmap.geography import geo_for
from derptool.derpmap.model import merge
from derptool.derpmap.overlay import derpmap_member, policy_overlay

if TYPE_CHECKING:
    from derptool.fleet.impact import Impact


@dataclass(frozen=True)
class RegionRow:
    """A region as the diff names it: ID, code, name; city and country when known."""

    id: int
    code: str
    name: str
    city: str | None = None
    country: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"id", "code", "name"}``."""
        return {"id": self.id, "code": self.code, "name": self.name}

    @property
    def place(self) -> str:
        """``Frankfurt, DE`` (what is known of it)."""
        return ", ".join(p for p in (self.city, self.country.upper() if self.country else None) if p)


@dataclass
class DerpDiff:
    """Regions removed, added and changed; the sites' latency cost when reports were given."""

    removed: list[RegionRow] = field(default_factory=list)
    added: list[RegionRow] = field(default_factory=list)
    changed: list[RegionRow] = field(default_factory=list)
    old_map: DERPMap | None = None
    new_map: DERPMap | None = None
    impact: Impact | None = None
    """Each site's home before and after, when the caller had latency reports."""

    @property
    def changes(self) -> bool:
        """Whether the region set or a region differs."""
        return bool(self.removed or self.added or self.changed)

    def to_json(self) -> dict[str, Any]:
        """``{"removed", "added", "changed", "sites"}`` (``sites`` null without reports)."""
        return {
            "removed": [r.to_json() for r in self.removed],
            "added": [r.to_json() for r in self.added],
            "changed": [r.to_json() for r in self.changed],
            "sites": None if self.impact is None else [s.to_data() for s in self.impact.sites],
        }


def _row(region: DERPRegion) -> RegionRow:
    geo = geo_for(region)
    return RegionRow(region.region_id, region.region_code, region.region_name, geo.city, geo.country)


def policy_map(policy: Mapping[str, Any], base: DERPMap, *, source: str) -> DERPMap:
    """The DERP map a client gets under *policy*: its ``derpMap`` merged over *base*."""
    overlay = policy_overlay(policy, source=source)
    return base if overlay is None else merge(base, overlay)


def has_derpmap(policy: Mapping[str, Any]) -> bool:
    """Whether the policy has a (non-null) ``derpMap``."""
    found = derpmap_member(policy)
    return found is not None and found[1] is not None


def diff_derp(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    base: Callable[[], DERPMap],
    *,
    always: bool = False,
    old_name: str = "OLD",
    new_name: str = "NEW",
) -> DerpDiff:
    """The DERP change from *old* to *new*; *base* gives the default map, called only when a policy has a
    ``derpMap`` or *always* (the maps are then kept even when nothing changes)."""
    if not has_derpmap(old) and not has_derpmap(new) and not always:
        return DerpDiff()
    base_map = base()
    old_map = policy_map(old, base_map, source=old_name)
    new_map = policy_map(new, base_map, source=new_name)
    md = diff_maps(old_map, new_map)
    return DerpDiff(
        removed=[_row(r) for r in md.regions_removed],
        added=[_row(r) for r in md.regions_added],
        changed=[_row(new_map.regions[c.region_id]) for c in md.regions_changed],  # type: ignore[arg-type]
        old_map=old_map,
        new_map=new_map,
    )


__all__ = ["DerpDiff", "RegionRow", "diff_derp", "has_derpmap", "policy_map"]
