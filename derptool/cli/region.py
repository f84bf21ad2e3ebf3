"""``derptool region add``: a self-hosted DERP region as a policy fragment, headscale YAML, or in place."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from derptool import __version__
from derptool.cli._app import app
from derptool.cli._apply import require_apply, run_apply
from derptool.cli._errors import handle_errors, warn
from derptool.errors import UsageError

region_app = typer.Typer(
    name="region",
    help="Self-hosted DERP regions: write them into a policy file or headscale's DERP YAML.\n\n"
    "Exit status: 0 done; 1 the policy file changed on disk while it was edited; 2 a bad option or a file "
    "that cannot be read.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(region_app, name="region")


class RegionFormat(StrEnum):
    """Output formats of ``region add``."""

    hujson = "hujson"
    json = "json"
    headscale_yaml = "headscale-yaml"


ApplyOption = Annotated[
    Path | None,
    typer.Option(
        "--apply",
        metavar="FILE",
        help="Patch this policy file in place (comments and formatting kept, atomic write).",
        dir_okay=False,
    ),
]
DiffOption = Annotated[bool, typer.Option("--diff", help="With --apply: print a unified diff, write nothing.")]


@region_app.command("add")
@handle_errors
def add_command(
    region_id: Annotated[
        int, typer.Option("--id", metavar="ID", help="Region ID: 900-999 are reserved for custom regions.")
    ],
    code: Annotated[str, typer.Option("--code", metavar="CODE", help="Short region code, such as 'fra-home'.")],
    node: Annotated[
        list[str],
        typer.Option(
            "--node",
            metavar="NODE",
            help="A server: HOST[,ipv4=A][,ipv6=A][,stun-port=N][,derp-port=N][,stun-only]"
            "[,cert-name=N][,insecure][,name=N] (repeatable; names default to 900a, 900b, ...).",
        ),
    ],
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="Long region name (default: the code).")
    ] = None,
    lat: Annotated[float | None, typer.Option("--lat", metavar="DEG", help="Latitude, for display.")] = None,
    lon: Annotated[float | None, typer.Option("--lon", metavar="DEG", help="Longitude, for display.")] = None,
    omit_default: Annotated[
        bool, typer.Option("--omit-default", help="Also set OmitDefaultRegions: use only your own DERP servers.")
    ] = False,
    prefer: Annotated[
        bool,
        typer.Option(
            "--prefer",
            help="Make this region the clients' home while it answers, with Tailscale's regions "
            "as fallback: writes HomeParams.RegionScore (latency x score decides the home).",
        ),
    ] = False,
    prefer_score: Annotated[
        float | None,
        typer.Option(
            "--prefer-score",
            metavar="SCORE",
            show_default=False,
            help="The RegionScore --prefer writes, in (0, 1); default 0.1 (the region wins unless ten "
            "times slower than the best other).",
        ),
    ] = None,
    fmt: Annotated[RegionFormat, typer.Option("--format", "-f", help="Output format.")] = RegionFormat.hujson,
    apply: ApplyOption = None,
    diff: DiffOption = False,
) -> None:
    """Describe a self-hosted DERP region and print it as a derpMap fragment, or add it to a policy file.

    Example: derptool region add --id 900 --code fra-home --name "Frankfurt (own)"
    --node derp1.example.com,ipv4=203.0.113.5 --apply policy.hujson

    Exit status: 0 the fragment was printed or the file written; 1 the file changed on disk while it was
    edited (nothing written); 2 a bad option or a policy file that cannot be read.
    """
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.derpmap.headscale import render_headscale_yaml
    from derptool.edit.region import (
        DEFAULT_PREFER_SCORE,
        apply_region,
        plan_region,
        region_derpmap,
        render_region_hujson,
        render_region_json,
    )

    require_apply(apply, diff=diff)
    if prefer_score is not None and not prefer:
        raise UsageError("--prefer-score needs --prefer")
    score = (DEFAULT_PREFER_SCORE if prefer_score is None else prefer_score) if prefer else None
    plan = plan_region(
        region_id, code, name, node, latitude=lat, longitude=lon, omit_default=omit_default, prefer=score
    )
    for note in plan.notes:
        warn(note)
    if apply is not None:
        run_apply(apply, lambda data, name: apply_region(data, plan, file=name), diff=diff)
        return
    if fmt is RegionFormat.json:
        typer.echo(render_region_json(plan), nl=False)
    elif fmt is RegionFormat.headscale_yaml:
        header = [
            f"derptool {__version__}: self-hosted DERP region {plan.region.region_id} ({plan.region.region_code})",
            "A headscale DERP map file: list it under derp.paths in headscale's config.",
        ]
        typer.echo(render_headscale_yaml(region_derpmap(plan), header=header), nl=False)
    else:
        header = [
            f"derptool {__version__}: self-hosted DERP region {plan.region.region_id} ({plan.region.region_code})",
            "Merge the derpMap member into your tailnet policy file (or run again with --apply FILE).",
        ]
        typer.echo(render_region_hujson(plan, header=header), nl=False)
