"""The page of ``derptool map``: every region of a DERP map on the world map, and a table of them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from derptool.derpmap import DERPMap, DERPRegion
from derptool.report.page import Page, Section, table
from derptool.report.worldmap import CountryShape, mark_region, marks_table_rows, shipped_countries, world_map_svg


def map_page(
    dmap: DERPMap,
    *,
    source: str,
    omitted: Sequence[DERPRegion] = (),
    countries: Iterable[CountryShape] | None = None,
) -> Page:
    """A page showing *dmap*'s regions (self-hosted ones marked) and, struck out, the *omitted* regions (those a
    policy's ``derpMap`` removes from the map it is merged over). *source* says where the map came from."""
    marks = [mark_region(r) for r in dmap.region_list()]
    present = {m.id for m in marks}
    marks += [mark_region(r, "omitted") for r in omitted if r.region_id not in present]
    shapes = shipped_countries() if countries is None else countries
    kept = [m for m in marks if m.state != "omitted"]
    summary = [
        f"{len(kept)} regions, {sum(m.nodes for m in kept)} nodes; map: {source}",
    ]
    if omitted:
        summary.append(f"{len(marks) - len(kept)} regions removed by the map's derpMap (struck out)")
    rows = marks_table_rows(marks, measured=False)
    attrs = [{"class": m.state, "data_region_id": m.id} for m in sorted(marks, key=lambda m: m.id)]
    section = Section(
        "Regions",
        table(["ID", "CODE", "NAME", "CITY", "COUNTRY", "NODES", "STATE"], rows, row_attrs=attrs, numeric=(0, 5)),
        figure=world_map_svg(marks, shapes, caption="DERP regions"),
    )
    return Page("DERP map", summary, [section])
