"""The geofence a home DERP region is judged against: regions a selector or a policy file removes.

* From selectors (``--omitted us``): resolved against the client's DERP map and the bundled snapshot of
  Tailscale's map, so a region the geofence already removed from the client's map is still recognised.
  A bare ID (``900`` or ``id:900``) counts even when no map has it.
* From a file (``--policy FILE``): a policy's ``derpMap`` (null regions are removed; with
  ``OmitDefaultRegions`` only the regions it defines stay), a DERP map overlay such as
  ``derptool omit --format headscale-yaml`` writes (its null regions), or a full DERP map (only its regions stay).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from derptool.derpmap import DERPMap, parse_derpmap
from derptool.derpmap.geo import resolve_one
from derptool.derpmap.sources import classify, decode_document
from derptool.errors import MapError, SelectorError
from derptool.fileio import read_file


@dataclass(frozen=True)
class Geofence:
    """Regions removed (``omitted``), or the only regions kept (``allowed``, when the source says so)."""

    omitted: frozenset[int]
    source: str
    allowed: frozenset[int] | None = None

    def removes(self, region_id: int) -> bool:
        """True when the geofence takes *region_id* away."""
        return region_id in self.omitted or (self.allowed is not None and region_id not in self.allowed)


def _bare_id(selector: str) -> int | None:
    text = selector.strip().lower().removeprefix("id:")
    return int(text) if text.isdigit() else None


def geofence_from_selectors(selectors: Sequence[str], maps: Sequence[DERPMap]) -> Geofence:
    """Regions of *maps* (the first that has an ID wins) that *selectors* match."""
    regions = {}
    for dmap in reversed(maps):
        regions.update({k: r for k, r in dmap.regions.items() if r is not None})
    union = DERPMap(Regions=dict(sorted(regions.items())))
    ids: set[int] = set()
    for part in (p.strip() for s in selectors for p in s.split(",")):
        if not part:
            continue
        try:
            found, _ = resolve_one(part, union)
        except SelectorError:
            bare = _bare_id(part)
            if bare is None:
                raise
            found = [bare]
        ids.update(found)
    return Geofence(frozenset(ids), "--omitted " + ",".join(selectors))


def geofence_from_file(path: str) -> Geofence:
    """The geofence a policy file, DERP map overlay or DERP map file describes (see the module docstring)."""
    snap = read_file(path)
    doc = decode_document(snap.data, path)
    kind = classify(doc)
    if kind == "unknown":
        raise MapError(f"{path}: neither a policy file with a derpMap nor a DERP map")
    if kind == "policy":
        member = next((v for k, v in doc.items() if str(k).lower() == "derpmap"), None)
        if member is None:
            return Geofence(frozenset(), f"{path} (no derpMap: nothing removed)")
        dmap = parse_derpmap(member, source=f"{path}: derpMap")
        nulls = frozenset(k for k, r in dmap.regions.items() if r is None)
        if dmap.omit_default_regions:
            kept = frozenset(k for k, r in dmap.regions.items() if r is not None)
            return Geofence(nulls, f"{path} derpMap (OmitDefaultRegions)", kept)
        return Geofence(nulls, f"{path} derpMap")
    dmap = parse_derpmap(doc, source=path)
    if dmap.is_overlay:
        nulls = frozenset(k for k, r in dmap.regions.items() if r is None)
        kept = frozenset(k for k, r in dmap.regions.items() if r is not None)
        return Geofence(nulls, path, kept if dmap.omit_default_regions else None)
    return Geofence(frozenset(), f"{path} (only its regions)", frozenset(dmap.regions))
