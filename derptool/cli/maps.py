"""``derptool map`` and ``derptool omit``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from derptool.cli._common import MapFormat, MapOption, app, handle_errors, warn


class FragmentFormat(StrEnum):
    """Output formats of a policy fragment."""

    hujson = "hujson"
    json = "json"


RegionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--region",
        "-r",
        help="Region selector: ID, code, ISO country, 'eu', continent name, 'all' (repeatable, or comma-separated).",
    ),
]


@app.command("map")
@handle_errors
def map_command(
    map_spec: MapOption = "default",
    region: RegionOption = None,
    fmt: Annotated[MapFormat, typer.Option("--format", "-f", help="Output format.")] = MapFormat.table,
) -> None:
    """Show the DERP map: regions, their geography, nodes and flags."""
    from derptool import render
    from derptool.geo import describe_regions, resolve
    from derptool.sources import load_map

    loaded = load_map(map_spec, notice=warn)
    dmap = loaded.derp_map
    if region:
        res = resolve(region, dmap)
        for note in res.notes:
            warn(note)
        dmap = dmap.subset(res.region_ids)
    if fmt is MapFormat.json:
        typer.echo(render.to_json(dmap.to_data()))
        return
    rows = describe_regions(dmap)
    typer.echo(render.table(
        [[r.id, r.code, r.name, r.country, r.continent, r.nodes, " ".join(r.hosts), " ".join(r.flags)] for r in rows],
        ["ID", "CODE", "NAME", "COUNTRY", "CONTINENT", "NODES", "HOSTS", "FLAGS"],
    ))
    typer.echo(f"\n{len(rows)} regions, {sum(r.nodes for r in rows)} nodes ({loaded.description})")


@app.command("omit")
@handle_errors
def omit_command(
    region: RegionOption = None,
    keep: Annotated[
        list[str] | None,
        typer.Option("--keep", "-k", help="Keep only these regions (allow-list) and omit every other one."),
    ] = None,
    map_spec: MapOption = "default",
    fmt: Annotated[FragmentFormat, typer.Option("--format", "-f", help="Output format.")] = FragmentFormat.hujson,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Allow removing every region (clients then have no DERP relay).")
    ] = False,
) -> None:
    """Print a policy-file derpMap fragment that removes the selected DERP regions.

    Examples: 'derptool omit --region us' (no relays in the US); 'derptool omit --keep eu' (relays only in the EU).
    """
    from derptool import __version__
    from derptool.snippets import plan_omit, render_omit_hujson, render_omit_json
    from derptool.sources import load_map

    loaded = load_map(map_spec, notice=warn)
    plan = plan_omit(loaded.derp_map, omit=region, keep=keep, allow_empty=allow_empty)
    for note in plan.notes:
        warn(note)
    if fmt is FragmentFormat.json:
        typer.echo(render_omit_json(plan), nl=False)
        return
    asked = " ".join([*(f"--region {s}" for s in region or []), *(f"--keep {s}" for s in keep or [])])
    header = [
        f"derptool {__version__}: omit {asked}",
        f"Removes {len(plan.omitted)} of {len(plan.omitted) + len(plan.kept)} DERP regions "
        f"({loaded.description}).",
        "Merge the derpMap member into your tailnet policy file.",
    ]
    typer.echo(render_omit_hujson(plan, header=header), nl=False)
