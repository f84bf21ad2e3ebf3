"""The page of ``derptool policy diff``: the summary and the grouped rows as tables, the DERP change on the map.

It renders the diff's JSON contract (the object ``policy diff --format json`` prints), so any producer of
that object can draw it. Rows are grouped for people: rows that differ only in their source become one row
listing the sources and their count.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from derptool.derpmap import DERPMap, DERPRegion
from derptool.report.impact_page import SiteBar, sites_section
from derptool.report.page import Page, Section, paragraph, table
from derptool.report.worldmap import CountryShape, RegionMark, State, mark_region, shipped_countries, world_map_svg

_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("access", "gained", "lost"),
    ("ssh", "gained", "lost"),
    ("egress", "gained", "lost"),
    ("capabilities", "gained", "lost"),
    ("tests", "newly_failing", "newly_passing"),
)
_SOURCES_SHOWN = 8


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _part(diff: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    value = diff.get(kind)
    return value if isinstance(value, Mapping) else {}


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def group_rows(rows: Sequence[Any]) -> tuple[list[str], list[list[str]]]:
    """Headers and grouped rows: dict rows that differ only in ``src`` become one row (sources listed with
    their count); other values are one column each."""
    dicts = [r for r in rows if isinstance(r, Mapping)]
    if len(dicts) != len(rows):
        return ["VALUE"], [[_cell(r)] for r in rows]
    keys: list[str] = []
    for r in dicts:
        keys += [str(k) for k in r if str(k) not in keys]
    if "src" not in keys:
        return [k.upper() for k in keys], [[_cell(r.get(k, "")) for k in keys] for r in dicts]
    rest = [k for k in keys if k != "src"]
    groups: dict[tuple[str, ...], list[str]] = {}
    for r in dicts:
        groups.setdefault(tuple(_cell(r.get(k, "")) for k in rest), []).append(_cell(r.get("src", "")))
    out = []
    for values, sources in groups.items():
        shown = ", ".join(sources[:_SOURCES_SHOWN]) + (
            f" and {len(sources) - _SOURCES_SHOWN} more" if len(sources) > _SOURCES_SHOWN else ""
        )
        out.append([shown, str(len(sources)), *values])
    return ["SRC", "COUNT", *(k.upper() for k in rest)], out


def _region_label(region: Any) -> str:
    if not isinstance(region, Mapping):
        return _cell(region)
    return f"{region.get('code', '?')} ({region.get('id', '?')}): {region.get('name', '')}"


def _region_ids(regions: Iterable[Any]) -> dict[int, Mapping[str, Any]]:
    out = {}
    for r in regions:
        if isinstance(r, Mapping) and isinstance(r.get("id"), int) and not isinstance(r.get("id"), bool):
            out[r["id"]] = r
    return out


def _find(rid: int, maps: Sequence[DERPMap]) -> DERPRegion | None:
    for m in maps:
        region = m.regions.get(rid)
        if region is not None:
            return region
    return None


def derp_marks(derp: Mapping[str, Any], maps: Sequence[DERPMap]) -> list[RegionMark]:
    """Markers for the DERP change: every region of the first of *maps* (``kept``), the removed ones
    ``omitted``, the added ones ``self-hosted`` (custom IDs) or ``kept``, changed ones noted; a region of the
    diff that no map has is drawn without coordinates (``unknown`` when only changed)."""
    removed = _region_ids(_list(derp.get("removed")))
    added = _region_ids(_list(derp.get("added")))
    changed = _region_ids(_list(derp.get("changed")))
    marks: dict[int, RegionMark] = {}
    if maps:
        for r in maps[0].region_list():
            marks[r.region_id] = mark_region(r)
    for ids, state, note in ((removed, "omitted", "removed"), (added, None, "added"), (changed, None, "changed")):
        for rid, data in ids.items():
            region = _find(rid, maps)
            fixed: State | None = state  # type: ignore[assignment]
            if region is not None:
                marks[rid] = mark_region(region, fixed, note=note)
                continue
            custom = 900 <= rid <= 999
            guess: State = fixed or ("self-hosted" if custom or note == "added" else "unknown")
            marks[rid] = RegionMark(rid, str(data.get("code", rid)), str(data.get("name", "")), guess, note=note)
    return sorted(marks.values(), key=lambda m: m.id)


def _site_bars(sites: Sequence[Any], codes: Mapping[Any, str]) -> list[SiteBar]:
    bars = []
    for s in sites:
        if not isinstance(s, Mapping) or not isinstance(s.get("before"), Mapping):
            continue
        before, after = s["before"], s.get("after")
        try:
            bars.append(
                SiteBar(
                    str(s.get("site", "?")),
                    codes.get(before.get("region"), str(before.get("region"))),
                    float(before["latency_ms"]),
                    None
                    if not isinstance(after, Mapping)
                    else codes.get(after.get("region"), str(after.get("region"))),
                    None if not isinstance(after, Mapping) else float(after["latency_ms"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return bars


def policy_diff_page(
    diff: Mapping[str, Any],
    *,
    maps: Sequence[DERPMap] = (),
    old: str = "OLD",
    new: str = "NEW",
    max_increase_ms: float | None = None,
    countries: Iterable[CountryShape] | None = None,
) -> Page:
    """A page of *diff* (the ``policy diff --format json`` object) between policies *old* and *new*.

    *maps* give the regions' coordinates, searched in order (e.g. the map *new* makes, then the default map);
    the first one's regions are drawn as the map after the change. With ``derp.sites``, each site's latency
    cost is a bar chart as on the ``impact`` page.
    """
    summary_rows = []
    for kind, first, second in _PAIRS:
        part = _part(diff, kind)
        summary_rows.append(
            [
                kind,
                f"{first.replace('_', ' ')}: {len(_list(part.get(first)))}",
                f"{second.replace('_', ' ')}: {len(_list(part.get(second)))}",
            ]
        )
    derp = _part(diff, "derp")
    summary_rows.append(
        [
            "derp",
            f"removed: {len(_list(derp.get('removed')))}",
            f"added: {len(_list(derp.get('added')))}, changed: {len(_list(derp.get('changed')))}",
        ]
    )
    total = sum(len(_list(_part(diff, k).get(a))) + len(_list(_part(diff, k).get(b))) for k, a, b in _PAIRS) + sum(
        len(_list(derp.get(k))) for k in ("removed", "added", "changed")
    )
    sections = [Section("Summary", table(["KIND", "CHANGES", ""], summary_rows))]
    for kind, first, second in _PAIRS:
        part = _part(diff, kind)
        for side in (first, second):
            rows = _list(part.get(side))
            if not rows:
                continue
            headers, grouped = group_rows(rows)
            sections.append(Section(f"{kind}: {side.replace('_', ' ')} ({len(rows)})", table(headers, grouped)))
    derp_rows = [[what, _region_label(r)] for what in ("removed", "added", "changed") for r in _list(derp.get(what))]
    if derp_rows:
        marks = derp_marks(derp, maps)
        shapes = shipped_countries() if countries is None else countries
        sections.append(
            Section(
                "DERP regions",
                table(["CHANGE", "REGION"], derp_rows),
                figure=world_map_svg(marks, shapes, caption="DERP regions after the change"),
            )
        )
    sites = derp.get("sites")
    if isinstance(sites, list) and sites:
        codes = {m.id: m.code for m in derp_marks(derp, maps)}
        sections.append(sites_section(_site_bars(sites, codes), max_increase_ms, "Latency cost per site"))
    lines = [f"{old} → {new}", f"{total} change(s)" if total else "no change in access"]
    if not derp_rows:
        sections.append(Section("DERP regions", paragraph("The DERP map is the same in both policies.")))
    return Page("Policy diff", lines, sections)
