"""``derptool omit``: which regions to remove (the plan), the policy fragment, and the edit of a policy file.

* The fragment sets each omitted region to ``null``: ``"<id>": null, // <code> (region <id>): <city>, <country>``.
* Applied to a file (:func:`omit_policy`, the whole of ``omit --apply``), regions are chosen from the map plus
  the regions the policy defines itself; existing ``null`` entries are kept (``replace`` removes those not
  omitted now), and regions the policy defines are never replaced by ``null`` (a note says so). When the
  policy sets ``OmitDefaultRegions``, Tailscale's regions are gone already and nothing is added.

The plan and the fragment live in :mod:`.omit_plan` (no HuJSON parser needed) and are importable from here too.
Pure: callers pass a map they loaded and print or write what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass

from derptool.derpmap import DERPMap
from derptool.derpmap.overlay import overlay_entries
from derptool.edit._derpmap import derp_members, overlay_of
from derptool.edit.document import ApplyResult, Document
from derptool.edit.omit_plan import (
    SELECTOR_MARKER,
    OmitPlan,
    omit_fragment,
    plan_omit,
    region_label,
    render_omit_hujson,
    render_omit_json,
    selector_args,
)

# -- applying to a policy file ----------------------------------------------------------------------


@dataclass(frozen=True)
class OmitEdit:
    """What ``omit --apply`` did to a policy file: the regions chosen and the patched file."""

    plan: OmitPlan
    result: ApplyResult


def omit_policy(
    src: bytes,
    base: DERPMap,
    *,
    omit: list[str] | None = None,
    keep: list[str] | None = None,
    allow_empty: bool = False,
    replace: bool = False,
    file: str = "<policy>",
) -> OmitEdit:
    """Omit regions in the policy *src*: choose them (:func:`plan_omit`) among *base* plus the regions the
    policy defines itself (:func:`omit_universe`), then set them to ``null`` (:func:`apply_omit`).

    The file is read once for both steps. Raises :class:`UsageError` for selectors that select nothing
    usable, :class:`~derptool.errors.InputError`/:class:`~derptool.errors.ApplyError` for a file that cannot
    be edited and :class:`~derptool.errors.MapError` for a ``derpMap`` that is not a valid map.
    """
    doc = Document.open(src, file)
    plan = plan_omit(omit_universe(base, doc), omit=omit, keep=keep, allow_empty=allow_empty)
    record = f"{SELECTOR_MARKER} " + selector_args(
        list(omit or []), list(keep or []), replace=replace, allow_empty=allow_empty
    )
    return OmitEdit(plan, apply_omit(doc, plan, replace=replace, record=record))


def omit_universe(base: DERPMap, src: bytes | Document, *, file: str = "<policy>") -> DERPMap:
    """The map to select regions from when omitting into *src*: *base* plus the regions the policy defines.

    Regions the policy sets to ``null`` stay in (they are still regions of the base map, so ``--keep`` and
    ``--replace`` see them); regions the policy defines in full replace the base's. *src* is the policy's
    bytes or the :class:`Document` already opened on them.
    """
    doc = src if isinstance(src, Document) else Document.open(src, file)
    overlay = overlay_of(doc)
    regions = {k: r for k, r in base.regions.items() if r is not None}
    if overlay is not None:
        regions.update({k: r for k, r in overlay.regions.items() if r is not None})
    return DERPMap(HomeParams=base.home_params, Regions=dict(sorted(regions.items())))


def _region_list(ids: list[int], labels: dict[int, str]) -> str:
    shown = ", ".join(labels.get(i, str(i)).split(":")[0] for i in ids[:8])
    return shown + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")


def apply_omit(
    src: bytes | Document,
    plan: OmitPlan,
    *,
    replace: bool = False,
    file: str = "<policy>",
    record: str | None = None,
) -> ApplyResult:
    """Set the plan's omitted regions to ``null`` in the policy's ``derpMap`` (see the module docstring).

    *src* is the policy's bytes or the :class:`Document` already opened on them (then *file* is its own).
    *record* (``derptool: omit --keep eu``) becomes the comment line just before ``derpMap`` that records the
    selectors (:mod:`.geofence` checks the policy against them later).
    """
    doc = src if isinstance(src, Document) else Document.open(src, file)
    file = doc.file
    dmap, regions = derp_members(doc)
    notes: list[str] = []
    labels = {r.region_id: region_label(r) for r in plan.omitted}
    entries = overlay_entries(dmap.data() if dmap is not None else None)
    existing = entries.regions if regions is not None else {}
    if entries.omit_default:
        notes.append(
            f"{file} sets OmitDefaultRegions: Tailscale's regions are all dropped already, so no region is set to null"
        )
        return doc.finish(summary="", notes=notes, unchanged=f"{file}: unchanged (OmitDefaultRegions is set)")
    defined = [r.region_id for r in plan.omitted if existing.get(str(r.region_id)) is not None]
    if defined:
        notes.append(
            f"left {len(defined)} region(s) the policy defines itself as they are "
            f"({', '.join(map(str, defined))}): omit does not replace a definition with null"
        )
    to_null = [r.region_id for r in plan.omitted if str(r.region_id) not in existing]
    already = [r.region_id for r in plan.omitted if str(r.region_id) in existing and existing[str(r.region_id)] is None]
    wanted = {str(r.region_id) for r in plan.omitted}
    to_drop = [k for k in entries.removed if k not in wanted] if replace else []
    if dmap is None:
        members = [(str(i), "null", labels[i]) for i in to_null]
        regions_text = doc.object_text(members, 2) if members else "{}"
        doc.add(
            ("derpMap",),
            doc.object_text([("Regions", regions_text, None)], 1),
            lead=[
                "DERP relays: regions set to null are removed from Tailscale's map (derptool omit).",
                *([record] if record else []),
            ],
        )
    elif regions is None:
        members = [(str(i), "null", labels[i]) for i in to_null]
        doc.add((*dmap.path, "Regions"), doc.object_text(members, 2) if members else "{}")
    else:
        for key in to_drop:
            doc.remove((*regions.path, key))
        for i in to_null:
            doc.add((*regions.path, str(i)), "null", trail=labels[i])
    if dmap is not None and record:
        doc.set_comment_line(dmap.name, SELECTOR_MARKER, record)
    parts = []
    if to_null:
        parts.append(f"{len(to_null)} region(s) set to null ({_region_list(to_null, labels)})")
    if to_drop:
        parts.append(
            f"{len(to_drop)} null entr{'y' if len(to_drop) == 1 else 'ies'} removed "
            f"({', '.join(to_drop)}): those regions come back"
        )
    if already:
        parts.append(f"{len(already)} already null")
    summary = f"{file}: derpMap: " + "; ".join(parts) if parts else f"{file}: derpMap unchanged"
    unchanged = f"{file}: already up to date" + (f" ({len(already)} region(s) already null)" if already else "")
    result = doc.finish(summary=summary, notes=notes, unchanged=unchanged)
    if result.changed:
        overlay_of(doc)  # the edited derpMap must still be a valid map (a failure is reported, never written)
    return result


__all__ = [
    "OmitEdit",
    "OmitPlan",
    "apply_omit",
    "omit_fragment",
    "omit_policy",
    "omit_universe",
    "plan_omit",
    "region_label",
    "render_omit_hujson",
    "render_omit_json",
]
