"""Single points of failure of a (geofenced) DERP map: what is left when a geofence leaves too little.

A client relays through its home region when a direct path fails, and falls back to another region when that
one is down; a map of one region, one node in total, or regions of one country only has no such fallback
against an outage or a legal order in that place.
"""

from __future__ import annotations

from derptool.derpmap import DERPMap
from derptool.derpmap.geography import geo_for


def single_points(dmap: DERPMap) -> list[str]:
    """Warnings for *dmap*'s single points of failure, each naming what remains (empty when there are none)."""
    regions = [r for r in dmap.region_list() if not r.stun_only]
    if not regions:
        return []
    names = ", ".join(f"{r.region_code} (region {r.region_id})" for r in regions[:8])
    names += f" and {len(regions) - 8} more" if len(regions) > 8 else ""
    out = []
    if len(regions) == 1:
        out.append(f"only one DERP region is left ({names}): when it is down, relayed connections fail")
    nodes = [n for r in regions for n in r.nodes if not n.stun_only]
    if len(nodes) == 1:
        out.append(f"only one DERP node is left in total ({nodes[0].host_name}): it is a single point of failure")
    countries = {geo_for(r).country for r in regions}
    if len(regions) > 1 and len(countries) == 1 and None not in countries:
        (country,) = countries
        out.append(f"every DERP region left is in one country ({country}: {names})")
    return out
