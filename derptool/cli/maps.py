"""``derptool map`` and ``derptool omit``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from derptool import __version__
from derptool.cli._app import app
from derptool.cli._apply import read_policy, require_apply, show_or_write
from derptool.cli._errors import handle_errors, warn
from derptool.cli._inputs import load_selected
from derptool.cli._options import MapOption, RegionOption
from derptool.cli._output import table, to_json


class FragmentFormat(StrEnum):
    """Output formats of a policy fragment."""

    hujson = "hujson"
    json = "json"
    headscale_yaml = "headscale-yaml"


class MapOutputFormat(StrEnum):
    """Output formats of ``derptool map``."""

    table = "table"
    json = "json"
    headscale_yaml = "headscale-yaml"


@app.command("map")
@handle_errors
def map_command(
    map_spec: MapOption = "default",
    region: RegionOption = None,
    fmt: Annotated[
        MapOutputFormat, typer.Option("--format", "-f", help="Output format (headscale-yaml: a derp.paths file).")
    ] = MapOutputFormat.table,
) -> None:
    """Show the DERP map: regions, their geography, nodes and flags."""
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.derpmap.geo import describe_regions
    from derptool.derpmap.headscale import render_headscale_yaml

    loaded, dmap = load_selected(map_spec, region)
    if fmt is MapOutputFormat.json:
        typer.echo(to_json(dmap.to_data()))
        return
    if fmt is MapOutputFormat.headscale_yaml:
        header = [f"derptool {__version__}: DERP map ({loaded.description}) for headscale's derp.paths"]
        typer.echo(render_headscale_yaml(dmap, header=header), nl=False)
        return
    rows = describe_regions(dmap)
    typer.echo(
        table(
            [
                [r.id, r.code, r.name, r.country, r.continent, r.nodes, " ".join(r.hosts), " ".join(r.flags)]
                for r in rows
            ],
            ["ID", "CODE", "NAME", "COUNTRY", "CONTINENT", "NODES", "HOSTS", "FLAGS"],
        )
    )
    typer.echo(f"\n{len(rows)} regions, {sum(r.nodes for r in rows)} nodes ({loaded.description})")


@app.command("omit")
@handle_errors
def omit_command(
    region: RegionOption = None,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep", "-k", metavar="SEL", help="Keep only these regions (allow-list) and omit every other one."
        ),
    ] = None,
    map_spec: MapOption = "default",
    fmt: Annotated[FragmentFormat, typer.Option("--format", "-f", help="Output format.")] = FragmentFormat.hujson,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Allow removing every region (clients then have no DERP relay).")
    ] = False,
    apply: Annotated[
        Path | None,
        typer.Option(
            "--apply",
            metavar="FILE",
            help="Patch this policy file's derpMap in place (comments kept, atomic write).",
            dir_okay=False,
        ),
    ] = None,
    diff: Annotated[bool, typer.Option("--diff", help="With --apply: print a unified diff, write nothing.")] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="With --apply: also drop existing null entries not selected now.")
    ] = False,
) -> None:
    """Print a policy-file derpMap fragment that removes the selected DERP regions, or patch it into a file.

    Examples: 'derptool omit --region us' (no relays in the US); 'derptool omit --keep eu' (relays only in the EU);
    'derptool omit --keep eu --apply policy.hujson' (edit the file in place; --diff to preview).
    With --apply, regions are selected from --map plus the regions the policy defines itself; existing null
    entries are kept unless --replace, and a region the policy defines is never replaced by null.
    """
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.derpmap.sources import load_map
    from derptool.edit.omit import (
        omit_policy,
        plan_omit,
        render_omit_headscale_yaml,
        render_omit_hujson,
        render_omit_json,
    )

    require_apply(apply, diff=diff, replace=replace)
    snap = read_policy(apply) if apply is not None else None
    loaded = load_map(map_spec, notice=warn)
    if apply is not None and snap is not None:
        edit = omit_policy(
            snap.data,
            loaded.derp_map,
            omit=region,
            keep=keep,
            allow_empty=allow_empty,
            replace=replace,
            file=str(apply),
        )
        for note in edit.plan.notes:
            warn(note)
        if loaded.overlay is not None and replace:
            warn(
                f"--map {map_spec} is already an overlay ({loaded.description}); with --replace, regions it "
                "removes are not selected and their null entries are dropped: prefer --map default"
            )
        show_or_write(apply, snap, edit.result, diff=diff)
        return
    plan = plan_omit(loaded.derp_map, omit=region, keep=keep, allow_empty=allow_empty)
    for note in plan.notes:
        warn(note)
    if fmt is FragmentFormat.json:
        typer.echo(render_omit_json(plan), nl=False)
        return
    asked = " ".join([*(f"--region {s}" for s in region or []), *(f"--keep {s}" for s in keep or [])])
    summary = (
        f"Removes {len(plan.omitted)} of {len(plan.omitted) + len(plan.kept)} DERP regions ({loaded.description})."
    )
    if fmt is FragmentFormat.headscale_yaml:
        header = [
            f"derptool {__version__}: omit {asked}",
            summary,
            "A headscale DERP map file for derp.paths: it is merged after derp.urls, so null removes the region",
            "(headscale 0.27.0 to 0.29.2; check the behaviour of your version).",
        ]
        typer.echo(render_omit_headscale_yaml(plan, header=header), nl=False)
        return
    header = [
        f"derptool {__version__}: omit {asked}",
        summary,
        "Merge the derpMap member into your tailnet policy file.",
    ]
    typer.echo(render_omit_hujson(plan, header=header), nl=False)
