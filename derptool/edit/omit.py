"""``derptool omit``: which regions to remove (the plan), the policy fragment, and the edit of a policy file.

* The fragment sets each omitted region to ``null``: ``"<id>": null, // <code> (region <id>): <city>, <country>``.
* Applied to a file, existing ``null`` entries are kept (``replace`` removes those not omitted now), and regions
  the policy defines itself are never replaced by ``null`` (a note says so). When the policy sets
  ``OmitDefaultRegions``, Tailscale's regions are gone already and nothing is added.

Pure: callers pass a map they loaded and print or write what comes back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from derptool.derpmap import DERPMap, DERPRegion
from derptool.derpmap.geo import geo_for, resolve
from derptool.edit.document import (
    ApplyResult,
    NewMember,
    check_derpmap,
    data_of,
    derp_parts,
    finish,
    member_name,
    object_text,
    open_document,
    pointer,
    policy_overlay,
)
from derptool.errors import UsageError


@dataclass(frozen=True)
class OmitPlan:
    """Which regions of a map an ``omit`` removes, and why."""

    omitted: list[DERPRegion]
    kept: list[DERPRegion]
    notes: list[str] = field(default_factory=list)

    @property
    def omitted_ids(self) -> list[int]:
        """IDs of the removed regions, sorted."""
        return [r.region_id for r in self.omitted]


def plan_omit(dmap: DERPMap, *, omit: list[str] | None = None, keep: list[str] | None = None,
              allow_empty: bool = False) -> OmitPlan:
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
    if omit:
        res = resolve(omit, dmap)
        removed.update(res.region_ids)
        notes.extend(res.notes)
    if keep:
        res = resolve(keep, dmap)
        notes.extend(res.notes)
        kept_ids = set(res.region_ids)
        removed.update(r.region_id for r in dmap.region_list() if r.region_id not in kept_ids)
    regions = dmap.region_list()
    omitted = [r for r in regions if r.region_id in removed]
    kept = [r for r in regions if r.region_id not in removed]
    if not kept and not allow_empty:
        raise UsageError(
            f"this would remove all {len(regions)} regions of the map, leaving clients no DERP relay at all "
            "(no connection where a direct one fails); pass --allow-empty if that is really what you want"
        )
    return OmitPlan(omitted, kept, notes)


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


# -- applying to a policy file ----------------------------------------------------------------------


def omit_universe(base: DERPMap, src: bytes, *, file: str = "<policy>") -> DERPMap:
    """The map to select regions from when omitting into *src*: *base* plus the regions the policy defines.

    Regions the policy sets to ``null`` stay in (they are still regions of the base map, so ``--keep`` and
    ``--replace`` see them); regions the policy defines in full replace the base's.
    """
    from derptool.derpmap import DERPMap as _Map

    overlay = policy_overlay(src, file=file)
    regions = {k: r for k, r in base.regions.items() if r is not None}
    if overlay is not None:
        regions.update({k: r for k, r in overlay.regions.items() if r is not None})
    return _Map(HomeParams=base.home_params, Regions=dict(sorted(regions.items())))


def _region_list(ids: list[int], labels: dict[int, str]) -> str:
    shown = ", ".join(labels.get(i, str(i)).split(":")[0] for i in ids[:8])
    return shown + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")


def apply_omit(src: bytes, plan: OmitPlan, *, replace: bool = False, file: str = "<policy>") -> ApplyResult:
    """Set the plan's omitted regions to ``null`` in the policy's ``derpMap`` (see the module docstring)."""
    doc = open_document(src, file)
    dname, dval, rname, rval = derp_parts(doc)
    notes: list[str] = []
    labels = {r.region_id: region_label(r) for r in plan.omitted}
    existing: dict[str, Any] = {}
    omit_default = False
    if dval is not None:
        data = data_of(dval)
        omit_default = any(k.lower() == "omitdefaultregions" and v is True for k, v in data.items())
    if rval is not None:
        existing = {}
        for m in rval.value.members:  # type: ignore[union-attr]
            existing.setdefault(member_name(m.name), data_of(m.value))
    if omit_default:
        notes.append(f"{file} sets OmitDefaultRegions: Tailscale's regions are all dropped already, "
                     "so no region is set to null")
        return ApplyResult(src, False, f"{file}: unchanged (OmitDefaultRegions is set)", notes)
    defined = [r.region_id for r in plan.omitted if existing.get(str(r.region_id)) is not None]
    if defined:
        notes.append(f"left {len(defined)} region(s) the policy defines itself as they are "
                     f"({', '.join(map(str, defined))}): omit does not replace a definition with null")
    to_null = [r.region_id for r in plan.omitted if str(r.region_id) not in existing]
    already = [r.region_id for r in plan.omitted if str(r.region_id) in existing and existing[str(r.region_id)] is None]
    wanted = {str(r.region_id) for r in plan.omitted}
    to_drop = [k for k, v in existing.items() if v is None and k not in wanted] if replace else []
    unit = doc.unit
    if dval is None:
        members = [(str(i), "null", labels[i]) for i in to_null]
        regions_text = object_text(members, unit, 2) if members else "{}"
        doc.add("/derpMap", object_text([("Regions", regions_text, None)], unit, 1),
                lead=["DERP relays: regions set to null are removed from Tailscale's map (derptool omit)."],
                new=NewMember("", "derpMap", 0, top_blank=True))
    elif rval is None:
        assert dname is not None
        members = [(str(i), "null", labels[i]) for i in to_null]
        doc.add(pointer(dname, "Regions"), object_text(members, unit, 2) if members else "{}",
                new=NewMember(pointer(dname), "Regions", 1))
    else:
        assert dname is not None and rname is not None
        for key in to_drop:
            doc.remove(pointer(dname, rname, key))
        for i in to_null:
            doc.add(pointer(dname, rname, str(i)), "null", trail=labels[i],
                    new=NewMember(pointer(dname, rname), str(i), 2))
    parts = []
    if to_null:
        parts.append(f"{len(to_null)} region(s) set to null ({_region_list(to_null, labels)})")
    if to_drop:
        parts.append(f"{len(to_drop)} null entr{'y' if len(to_drop) == 1 else 'ies'} removed "
                     f"({', '.join(to_drop)}): those regions come back")
    if already:
        parts.append(f"{len(already)} already null")
    summary = f"{file}: derpMap: " + "; ".join(parts) if parts else f"{file}: derpMap unchanged"
    unchanged = f"{file}: already up to date" + (f" ({len(already)} region(s) already null)" if already else "")
    result = finish(doc, summary, notes, unchanged=unchanged)
    check_derpmap(result, file)
    return result
