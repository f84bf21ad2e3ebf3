"""``derptool impact``: what a geofence costs every site, from their latency reports or from Prometheus."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from derptool.cli._app import app
from derptool.cli._errors import handle_errors, warn
from derptool.cli._options import MapOption, RefreshOption, complete_region
from derptool.cli._output import WideOption, table, to_json
from derptool.cli._report import HtmlOption, check_page_options, emit_page
from derptool.errors import InputError, UsageError

if TYPE_CHECKING:
    from derptool.derpmap import DERPMap
    from derptool.fleet import Impact, SiteImpact, SiteReport
    from derptool.report import Page


class ImpactFormat(StrEnum):
    """Output formats of ``derptool impact``."""

    table = "table"
    json = "json"
    html = "html"
    png = "png"


_BAR_WIDTH = 24


def _ms(value: float) -> str:
    return f"{value:.1f} ms"


def _increase(site: SiteImpact) -> str:
    inc = site.increase_ms
    if inc is None:
        return "no region left"
    return "unchanged" if not site.moved else f"{inc:+.1f} ms"


def _bar(value: float | None, scale: float) -> str:
    if value is None:
        return "!" * _BAR_WIDTH
    if value <= 0 or scale <= 0:
        return ""
    eighths = max(1, round(value / scale * _BAR_WIDTH * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")


def impact_table(impact: Impact, *, omitted_codes: list[str], total_regions: int, map_description: str) -> str:
    """The impact as text: a summary, then one row per site (worst first) with a bar for the increase."""
    shown = ", ".join(omitted_codes[:10]) + (f" and {len(omitted_codes) - 10} more" if len(omitted_codes) > 10 else "")
    out = [f"Removing {len(impact.omitted)} of {total_regions} regions ({shown or 'none'}); map: {map_description}"]
    moved = [s for s in impact.sites if s.moved and s.after is not None]
    worst = impact.worst
    parts = [f"{len(impact.sites)} site{'s' if len(impact.sites) != 1 else ''}", f"{len(moved)} change home region"]
    if impact.stranded:
        parts.append(f"{len(impact.stranded)} left with no measured region")
    summary = ", ".join(parts)
    if worst is not None and worst.increase_ms is not None:
        summary += f"; worst increase {worst.increase_ms:+.1f} ms ({worst.site})"
    out.append(summary)
    scale = max((s.increase_ms for s in impact.sites if s.increase_ms is not None), default=0.0)
    rows = []
    for s in impact.sites:
        after = "none" if s.after is None else f"{s.after.code} ({s.after.region})"
        rows.append(
            [
                s.site,
                f"{s.before.code} ({s.before.region})",
                _ms(s.before.latency_ms),
                after,
                "-" if s.after is None else _ms(s.after.latency_ms),
                _increase(s),
                _bar(s.increase_ms, scale),
            ]
        )
    out.append("")
    out.append(table(rows, ["SITE", "HOME BEFORE", "LATENCY", "HOME AFTER", "LATENCY", "INCREASE", ""]))
    return "\n".join(out)


def _load_sources(
    paths: list[str], prometheus: str | None, window: str | None, quantile: float | None, site_label: str
) -> list[SiteReport]:
    from derptool.fleet.files import load_reports  # heavy: imported when the command runs, not for --help

    query = None
    if prometheus is not None:
        from derptool.fleet.prometheus import build_query  # heavy, and needed only with --prometheus

        query = build_query(site_label, window, 0.9 if quantile is None else quantile)
    loaded = load_reports(paths)
    for problem in loaded.problems:
        print(f"derptool: error: {problem}", file=sys.stderr)
    for note in loaded.notes:
        warn(note)
    reports = list(loaded.reports)
    if loaded.problems and reports:
        warn(f"skipped {len(loaded.problems)} report file(s); using {len(reports)}")
    if prometheus is not None and query is not None:
        from derptool.fleet.prometheus import query_prometheus  # heavy, and needed only with --prometheus

        result = query_prometheus(prometheus, query)
        for note in result.notes:
            warn(note)
        have = {r.site for r in reports}
        for r in result.reports:
            if r.site in have:
                warn(f"site {r.site!r} comes from a report file and from Prometheus; using the file")
            else:
                reports.append(r)
    if not reports:
        raise InputError(
            f"no usable report among {len(paths)} argument(s): nothing to assess"
            if paths
            else "Prometheus returned no usable site"
        )
    return reports


@app.command("impact")
@handle_errors
def impact_command(
    reports: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[REPORT]...",
            show_default=False,
            help="Latency reports: 'derptool latency --format json' or 'tailscale netcheck --format json' files, "
            "directories of them, '-' for stdin. The site is the file name without its extension.",
        ),
    ] = None,
    region: Annotated[
        list[str] | None,
        typer.Option(
            "--region",
            "-r",
            metavar="SEL",
            autocompletion=complete_region,
            help="Regions the geofence removes, as for 'derptool omit' (repeatable, or comma-separated).",
        ),
    ] = None,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep",
            "-k",
            metavar="SEL",
            autocompletion=complete_region,
            help="Keep only these regions and remove every other one.",
        ),
    ] = None,
    prometheus: Annotated[
        str | None,
        typer.Option(
            "--prometheus",
            metavar="URL",
            help="Read the sites' latencies from this Prometheus server (derptool_region_latency_seconds).",
        ),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(
            "--window",
            metavar="DURATION",
            help="With --prometheus: use a quantile over this window (e.g. 7d) instead of the latest value.",
        ),
    ] = None,
    quantile: Annotated[
        float | None,
        typer.Option(
            "--quantile", metavar="Q", show_default=False, help="With --window: the quantile to use [default: 0.9]."
        ),
    ] = None,
    site_label: Annotated[
        str, typer.Option("--site-label", metavar="NAME", help="With --prometheus: the label that names a site.")
    ] = "instance",
    map_spec: MapOption = "default",
    fmt: Annotated[ImpactFormat, typer.Option("--format", "-f", help="Output format.")] = ImpactFormat.table,
    max_increase: Annotated[
        float | None,
        typer.Option(
            "--max-increase",
            metavar="MS",
            show_default=False,
            help="Exit 1 when a site's latency to its home grows by more than MS, or it loses every region.",
        ),
    ] = None,
    suggest: Annotated[
        bool,
        typer.Option(
            "--suggest",
            help="With --max-increase: the fewest regions the geofence allows that keep every "
            "site within the budget, and the sites no allowed region can serve.",
        ),
    ] = False,
    html: HtmlOption = None,
    wide: WideOption = False,
    refresh: RefreshOption = False,
) -> None:
    """Show what removing DERP regions costs each site: its home region before and after, and the added latency.

    The home region is chosen as netcheck does (lowest latency times HomeParams.RegionScore; never an Avoid or
    NoMeasureNoHome region). Examples: 'derptool impact --region us reports/';
    'derptool impact --keep eu --prometheus http://prometheus:9090 --window 7d --max-increase 30'.
    Exit status: 0 ok; 1 a site is over --max-increase; 2 bad options or no usable report; 3 Prometheus unreachable.
    """
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.cli._inputs import load_cli_map
    from derptool.edit.omit_plan import plan_omit
    from derptool.fleet import assess

    paths = list(reports or [])
    if not paths and prometheus is None:
        raise UsageError("nothing to assess: give report files or directories, or --prometheus URL")
    if prometheus is None and (window is not None or quantile is not None or site_label != "instance"):
        raise UsageError("--window, --quantile and --site-label need --prometheus URL")
    if quantile is not None and window is None:
        raise UsageError("--quantile needs --window (the latest value has no quantile)")
    if suggest and max_increase is None:
        raise UsageError("--suggest needs --max-increase MS (the budget every site must stay within)")
    if max_increase is not None and max_increase < 0:
        raise UsageError(f"--max-increase: {max_increase:g} is negative; give the largest allowed increase in ms")
    check_page_options(fmt.value, html)
    loaded = load_cli_map(map_spec)
    plan = plan_omit(loaded.derp_map, omit=region, keep=keep, allow_empty=True)
    for note in plan.notes:
        warn(note)
    site_reports = _load_sources(paths, prometheus, window, quantile, site_label)
    if suggest:
        assert max_increase is not None
        _suggest(site_reports, loaded.derp_map, [r.region_id for r in plan.kept], max_increase, fmt, html)
        return
    impact = assess(site_reports, loaded.derp_map, plan.omitted_ids)
    for note in impact.notes:
        warn(note)
    if not impact.sites:
        raise InputError("no site has a home region in this map; nothing to assess")
    if emit_page(fmt.value, html, lambda: _page(impact, loaded.derp_map, max_increase, loaded.description)):
        pass
    elif fmt is ImpactFormat.json:
        typer.echo(to_json(impact.to_data()))
    else:
        typer.echo(
            impact_table(
                impact,
                omitted_codes=[r.region_code for r in plan.omitted],
                total_regions=len(plan.omitted) + len(plan.kept),
                map_description=loaded.description,
            )
        )
    if max_increase is not None:
        over = impact.over_budget(max_increase)
        if over:
            listed = ", ".join(f"{s.site} ({_increase(s)})" for s in over[:10])
            more = f" and {len(over) - 10} more" if len(over) > 10 else ""
            warn(f"{len(over)} site(s) over --max-increase {max_increase:g} ms: {listed}{more}")
            raise typer.Exit(1)


def _page(impact: Impact, dmap: DERPMap, max_increase: float | None, description: str) -> Page:
    from derptool.report.impact_page import impact_page

    return impact_page(impact, dmap, max_increase_ms=max_increase, map_description=description)


def _suggest(
    reports: list[SiteReport], dmap: DERPMap, allowed: list[int], budget: float, fmt: ImpactFormat, html: str | None
) -> None:
    """``--suggest``: print the regions to keep and their impact; exit 1 when a site cannot meet the budget."""
    from derptool.fleet import suggest  # heavy: imported when the command runs, not for --help

    result = suggest(reports, dmap, allowed, budget)
    for note in result.impact.notes:
        warn(note)
    regions = {r.region_id: r.region_code for r in dmap.region_list()}
    codes = [regions.get(rid, str(rid)) for rid in result.keep]
    if emit_page(fmt.value, html, lambda: _page(result.impact, dmap, budget, "as given")):
        pass
    elif fmt is ImpactFormat.json:
        typer.echo(to_json({"keep": result.keep, "unmet": result.unmet, **result.impact.to_data()}))
    else:
        keep_text = ", ".join(f"{c} ({rid})" for c, rid in zip(codes, result.keep, strict=True)) or "none"
        lines = [f"Keep {len(result.keep)} of the {len(allowed)} allowed regions: {keep_text}"]
        if result.keep:
            lines.append(f"  derptool omit --keep {','.join(f'id:{rid}' for rid in result.keep)}")
        if result.unmet:
            lines.append(
                f"No allowed region serves {len(result.unmet)} site(s) within {budget:g} ms: {', '.join(result.unmet)}"
            )
        omitted = [regions.get(rid, str(rid)) for rid in result.impact.omitted]
        lines += [
            "",
            impact_table(
                result.impact, omitted_codes=omitted, total_regions=len(dmap.region_list()), map_description="as given"
            ),
        ]
        typer.echo("\n".join(lines))
    over = [s for s in result.impact.over_budget(budget) if s.site not in result.unmet]
    if result.unmet or over:
        raise typer.Exit(1)
