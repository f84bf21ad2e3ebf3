"""``derptool map`` and ``derptool omit``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from derptool import __version__
from derptool.cli._app import app
from derptool.cli._apply import read_policy, require_apply, show_or_write
from derptool.cli._errors import handle_errors, warn
from derptool.cli._inputs import load_selected
from derptool.cli._options import MapOption, RefreshOption, RegionOption, complete_region
from derptool.cli._output import WideOption, table, to_json
from derptool.cli._report import HtmlOption, check_page_options, emit_page

if TYPE_CHECKING:
    from derptool.derpmap import DERPMap, DERPRegion
    from derptool.derpmap.sources import LoadedMap
    from derptool.report import Page

if TYPE_CHECKING:
    from derptool.edit.omit import OmitPlan


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
    nft = "nft"
    iptables = "iptables"
    ip6tables = "ip6tables"
    cidr = "cidr"
    html = "html"
    png = "png"


@app.command("map")
@handle_errors
def map_command(
    map_spec: MapOption = "default",
    region: RegionOption = None,
    fmt: Annotated[
        MapOutputFormat,
        typer.Option(
            "--format",
            "-f",
            help="Output format (headscale-yaml: a derp.paths file; nft, iptables, ip6tables, cidr: a firewall "
            "allow-list of the relays' addresses and ports; html, png: the world map).",
        ),
    ] = MapOutputFormat.table,
    html: HtmlOption = None,
    wide: WideOption = False,
    refresh: RefreshOption = False,
) -> None:
    """Show the DERP map: regions, their geography, nodes and flags.

    A region outside derptool's geography table is placed by its Latitude/Longitude (flag by-coordinates);
    one that cannot be placed shows country 'unknown', with the reason below the table.
    The firewall formats list the relays of the map as given ('--map policy.hujson' applies a policy's
    geofence): 'derptool map --map policy.hujson --format nft | nft -f -'.

    Exit status: 0 the map was shown; 2 a bad option or a --map that cannot be read; 3 a --map URL that
    cannot be fetched.
    """
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.derpmap.geo import describe_regions
    from derptool.derpmap.headscale import render_headscale_yaml

    check_page_options(fmt.value, html)
    loaded, dmap = load_selected(map_spec, region)
    if fmt in (MapOutputFormat.nft, MapOutputFormat.iptables, MapOutputFormat.ip6tables, MapOutputFormat.cidr):
        from derptool.derpmap import firewall

        allowed = firewall.allow_list(dmap)
        for note in allowed.notes:
            warn(note)
        header = [
            f"derptool {__version__}: DERP relays of {loaded.description}",
            f"{len(dmap.regions)} regions, {len(allowed.addresses(4))} IPv4 and {len(allowed.addresses(6))} "
            "IPv6 addresses",
        ]
        if fmt is MapOutputFormat.nft:
            text = firewall.render_nft(allowed, header=header)
        elif fmt is MapOutputFormat.cidr:
            text = firewall.render_cidr(allowed)
        else:
            text = firewall.render_iptables(allowed, family=4 if fmt is MapOutputFormat.iptables else 6, header=header)
        typer.echo(text, nl=False)
        return
    if emit_page(fmt.value, html, lambda: _map_page(loaded, dmap)):
        return
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
    for r in rows:
        if r.placement:
            typer.echo(f"region {r.id} {r.code}: {r.placement}")


def _map_page(loaded: LoadedMap, dmap: DERPMap) -> Page:
    """The map page; regions a policy's derpMap removes are drawn struck out (placed from the snapshot)."""
    from derptool.derpmap.sources import load_snapshot
    from derptool.report.map_page import map_page

    removed: list[DERPRegion] = []
    if loaded.overlay is not None:
        base = load_snapshot().derp_map
        gone = {k for k, r in loaded.overlay.regions.items() if r is None}
        if loaded.overlay.omit_default_regions:
            gone |= set(base.regions)
        removed = [r for r in base.region_list() if r.region_id in gone and r.region_id not in dmap.regions]
    return map_page(dmap, source=loaded.description, omitted=removed)


@app.command("omit")
@handle_errors
def omit_command(
    region: RegionOption = None,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep",
            "-k",
            metavar="SEL",
            autocompletion=complete_region,
            help="Keep only these regions (allow-list) and omit every other one.",
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
    check: Annotated[
        Path | None,
        typer.Option(
            "--check",
            metavar="POLICY",
            help="Exit 1 when POLICY no longer removes what the selectors its '// derptool: omit' line records "
            "select from the current map (written by --apply); list each region with the command that fixes it.",
            dir_okay=False,
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Exit 1 when a country/continent/eu deny-list leaves regions of unknown location."
        ),
    ] = False,
    min_regions: Annotated[
        int | None,
        typer.Option("--min-regions", metavar="N", min=1, help="Exit 1 when fewer than N regions are left."),
    ] = None,
    refresh: RefreshOption = False,
) -> None:
    """Print a policy-file derpMap fragment that removes the selected DERP regions, or patch it into a file.

    Examples: 'derptool omit --region us' (no relays in the US); 'derptool omit --keep eu' (relays only in the EU);
    'derptool omit --keep eu --apply policy.hujson' (edit the file in place; --diff to preview).
    With --apply, regions are selected from --map plus the regions the policy defines itself; existing null
    entries are kept unless --replace, and a region the policy defines is never replaced by null.

    Exit status: 0 the fragment was printed or the file written; 1 --strict or --min-regions refused the
    plan, --check found the policy out of step, or --diff shows a pending edit; 2 a bad option or input that
    cannot be read; 3 a --map URL that cannot be fetched.
    """
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.cli._inputs import load_cli_map
    from derptool.edit.omit_plan import plan_omit, render_omit_headscale_yaml, render_omit_hujson, render_omit_json

    require_apply(apply, diff=diff, replace=replace)
    if check is not None:
        if apply is not None or region or keep:
            from derptool.errors import UsageError

            raise UsageError("--check reads the selectors from the policy: give no --region, --keep or --apply")
        check_policy(check, map_spec, strict=strict, min_regions=min_regions)
        return
    snap = read_policy(apply) if apply is not None else None
    loaded = load_cli_map(map_spec)
    if apply is not None and snap is not None:
        from derptool.edit.omit import omit_policy  # the HuJSON editor: only --apply needs it

        edit = omit_policy(
            snap.data,
            loaded.derp_map,
            omit=region,
            keep=keep,
            allow_empty=allow_empty,
            replace=replace,
            file=str(apply),
        )
        gate(edit.plan, strict=strict, min_regions=min_regions)
        if loaded.overlay is not None and replace:
            warn(
                f"--map {map_spec} is already an overlay ({loaded.description}); with --replace, regions it "
                "removes are not selected and their null entries are dropped: prefer --map default"
            )
        show_or_write(apply, snap, edit.result, diff=diff)
        if diff and edit.result.changed:
            raise typer.Exit(1)  # an edit is pending: a CI step running --diff fails until it is applied
        return
    plan = plan_omit(loaded.derp_map, omit=region, keep=keep, allow_empty=allow_empty)
    gate(plan, strict=strict, min_regions=min_regions)
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


def gate(plan: OmitPlan, *, strict: bool, min_regions: int | None) -> None:
    """Warn the plan's notes and single points of failure; exit 1 (before any output or write) when
    ``--strict`` finds regions of unknown location left in, or fewer than ``--min-regions`` remain."""
    for note in [*plan.notes, *plan.warnings]:
        warn(note)
    failed = False
    if strict and plan.unknown_kept:
        warn(f"--strict: {len(plan.unknown_kept)} region(s) of unknown location left in")
        failed = True
    if min_regions is not None and len(plan.kept) < min_regions:
        left = ", ".join(f"{r.region_code} ({r.region_id})" for r in plan.kept) or "none"
        warn(f"{len(plan.kept)} region(s) left ({left}), fewer than --min-regions {min_regions}")
        failed = True
    if failed:
        raise typer.Exit(1)


def check_policy(path: Path, map_spec: str, *, strict: bool, min_regions: int | None) -> None:
    """``omit --check POLICY``: exit 0 when the policy is in step with its recorded selectors, else 1."""
    from derptool.cli._apply import read_policy
    from derptool.cli._inputs import load_cli_map
    from derptool.edit.geofence import check_geofence, describe_drift
    from derptool.errors import InputError

    snap = read_policy(path)
    loaded = load_cli_map(map_spec)
    result = check_geofence(snap.data, loaded.derp_map, file=str(path))
    if result.recorded is None:
        raise InputError(
            f"{path}: records no geofence (no '// derptool: omit' line); run 'derptool omit --keep SEL --apply "
            f"{path}' (or --region SEL) to apply one and record it"
        )
    for note in result.notes:
        warn(note)
    if result.plan is not None:
        gate(result.plan, strict=strict, min_regions=min_regions)
    drift = describe_drift(result, str(path))
    for line in drift:
        typer.echo(f"{path}: {line}")
    removed = len(result.plan.omitted) if result.plan is not None else 0
    state = "out of step with" if drift else "in step with"
    warn(f"{path}: {state} its geofence ({result.recorded.args()}; {removed} regions selected, {loaded.description})")
    if drift:
        raise typer.Exit(1)
