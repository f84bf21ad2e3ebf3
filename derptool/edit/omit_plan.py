"""What ``derptool omit`` removes (the plan) and the policy fragment that removes it, without touching a file.

The fragment sets each omitted region to ``null``: ``"<id>": null, // <code> (region <id>): <city>, <country>``.
Applying it to a policy file is :mod:`derptool.edit.omit`'s job; this half needs no HuJSON parser, so that
``derptool omit`` without ``--apply`` starts fast.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from derptool.derpmap import DERPMap, DERPRegion
from derptool.derpmap.geo import resolve
from derptool.derpmap.geography import geo_for
from derptool.derpmap.headscale import render_headscale_yaml
from derptool.derpmap.resilience import single_points
from derptool.errors import UsageError

SELECTOR_MARKER = "derptool: omit"
"""How the comment line that records an applied geofence begins (see :mod:`.geofence`)."""


def selector_args(omit: list[str], keep: list[str], *, replace: bool = False, allow_empty: bool = False) -> str:
    """The options of an omit as one shell-quoted line: ``--region us --keep eu --replace``."""
    parts = [*(f"--region {shlex.quote(s)}" for s in omit), *(f"--keep {shlex.quote(s)}" for s in keep)]
    if replace:
        parts.append("--replace")
    if allow_empty:
        parts.append("--allow-empty")
    return " ".join(parts)


@dataclass(frozen=True)
class OmitPlan:
    """Which regions of a map an ``omit`` removes, and why."""

    omitted: list[DERPRegion]
    kept: list[DERPRegion]
    notes: list[str] = field(default_factory=list)
    unknown_kept: list[DERPRegion] = field(default_factory=list)
    """Regions of unknown location that a geographic deny-list left in (``--strict`` fails on them)."""
    warnings: list[str] = field(default_factory=list)
    """Single points of failure of the regions kept (:func:`~derptool.derpmap.resilience.single_points`)."""

    @property
    def omitted_ids(self) -> list[int]:
        """IDs of the removed regions, sorted."""
        return [r.region_id for r in self.omitted]


def plan_omit(
    dmap: DERPMap, *, omit: list[str] | None = None, keep: list[str] | None = None, allow_empty: bool = False
) -> OmitPlan:
    """Decide which regions to remove: those matching *omit*, plus (with *keep*) every region not kept.

    Refuses (:class:`UsageError`) a result that removes every region unless *allow_empty*, because clients
    left without any DERP region cannot relay at all.
    """
    omit = list(omit or [])
    keep = list(keep or [])
    if not omit and not keep:
        raise UsageError("nothing to omit: give --region SEL (regions to remove) or --keep SEL (regions to keep)")
    notes: list[str] = []
    removed: set[int] = set()
    geographic = False
    if omit:
        res = resolve(omit, dmap)
        removed.update(res.region_ids)
        notes.extend(res.notes)
        geographic = res.geographic
    regions = dmap.region_list()
    if keep:
        res = resolve(keep, dmap)
        notes.extend(res.notes)
        kept_ids = set(res.region_ids)
        removed.update(r.region_id for r in regions if r.region_id not in kept_ids)
        dropped = [r for r in regions if r.region_id not in kept_ids and geo_for(r).country is None]
        if dropped:
            notes.append(
                f"--keep removes {len(dropped)} region(s) of unknown location "
                f"({_names(dropped)}); add --keep unknown, or their IDs, to keep them"
            )
    omitted = [r for r in regions if r.region_id in removed]
    kept = [r for r in regions if r.region_id not in removed]
    unknown_kept = [r for r in kept if geo_for(r).country is None] if geographic and not keep else []
    for r in unknown_kept:
        notes.append(
            f"region {r.region_code} (region {r.region_id}) is left in: its location is unknown "
            f"({geo_for(r).how_placed.removeprefix('country unknown: ')}), so no country, continent or eu "
            "selector matches it; name it by ID or code, or use --keep"
        )
    if not kept and not allow_empty:
        raise UsageError(
            f"this would remove all {len(regions)} regions of the map, leaving clients no DERP relay at all "
            "(no connection where a direct one fails); pass --allow-empty if that is really what you want"
        )
    warnings = single_points(DERPMap(Regions={r.region_id: r for r in kept}))
    return OmitPlan(omitted, kept, notes, unknown_kept, warnings)


def _names(regions: list[DERPRegion]) -> str:
    shown = ", ".join(f"{r.region_code} ({r.region_id})" for r in regions[:8])
    return shown + (f" and {len(regions) - 8} more" if len(regions) > 8 else "")


def region_label(region: DERPRegion) -> str:
    """``nyc (region 1): New York City, United States``; country unknown for regions not in the table."""
    geo = geo_for(region)
    city = geo.city or region.region_name
    country = geo.country_name or "country unknown"
    return f"{region.region_code} (region {region.region_id}): {city}, {country}"


def omit_fragment(plan: OmitPlan) -> dict[str, Any]:
    """The policy fragment as data: ``{"derpMap": {"Regions": {"<id>": None, ...}}}``."""
    return {"derpMap": {"Regions": {str(r.region_id): None for r in plan.omitted}}}


def render_omit_json(plan: OmitPlan) -> str:
    """The fragment as plain JSON text (newline-terminated)."""
    return json.dumps(omit_fragment(plan), indent=2) + "\n"


def render_omit_hujson(plan: OmitPlan, *, header: list[str] | None = None) -> str:
    """The fragment as HuJSON in ``hujson.Format`` layout, a comment naming each removed region."""
    lines = [f"// {h}" if h else "//" for h in header or []]
    regions = plan.omitted
    width = max((len(str(r.region_id)) for r in regions), default=0)
    lines.append("{")
    lines.append('\t"derpMap": {')
    if regions:
        lines.append('\t\t"Regions": {')
        for r in regions:
            key = f'"{r.region_id}":'
            pad = " " * (width - len(str(r.region_id)) + 1)
            lines.append(f"\t\t\t{key}{pad}null, // {region_label(r)}")
        lines.append("\t\t},")
    else:
        lines.append('\t\t"Regions": {},')
    lines.append("\t},")
    lines.append("}")
    return "\n".join(lines) + "\n"


def omit_overlay(plan: OmitPlan) -> DERPMap:
    """The plan as a DERP map overlay: every omitted region set to ``None``, which removes it where the overlay
    is merged over a map (headscale's ``derp.paths`` after its ``derp.urls``)."""
    return DERPMap(Regions={r.region_id: None for r in plan.omitted})


def render_omit_headscale_yaml(plan: OmitPlan, *, header: list[str] | None = None) -> str:
    """:func:`omit_overlay` as a headscale DERP map file for ``derp.paths``, a comment naming each removed region."""
    labels = {r.region_id: region_label(r) for r in plan.omitted}
    return render_headscale_yaml(omit_overlay(plan), header=header, labels=labels)
