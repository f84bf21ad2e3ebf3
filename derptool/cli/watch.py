"""``derptool watch``: a live view of a Prometheus endpoint, made for a Tailscale client's relayed traffic."""

from __future__ import annotations

import re
import time
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from derptool.cli._app import app
from derptool.cli._errors import handle_errors, warn
from derptool.cli._options import CaFileOption
from derptool.cli._output import to_json
from derptool.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console, RenderableType

    from derptool.derpmap import DERPMap
    from derptool.watch import Geofence, Target, WatchReport


class WatchFormat(StrEnum):
    """Output formats of ``derptool watch``."""

    table = "table"
    json = "json"


def _compile(regex: str | None) -> re.Pattern[str] | None:
    if regex is None:
        return None
    try:
        return re.compile(regex)
    except re.error as err:
        raise UsageError(f"--match: {regex!r} is not a valid regular expression: {err}") from None


def _naming_map(target: Target, map_spec: str | None) -> DERPMap | None:
    """The map that names regions: --map, else the client's own (LocalAPI), else the bundled snapshot."""
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.derpmap.sources import load_map, load_snapshot
    from derptool.watch.scrape import client_derpmap

    if map_spec is not None:
        return load_map(map_spec, notice=warn).derp_map
    own = client_derpmap(target)
    return own if own is not None else load_snapshot().derp_map


def _geofence(omitted: list[str] | None, policy: str | None, dmap: DERPMap | None) -> Geofence | None:
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.derpmap.sources import load_snapshot
    from derptool.watch.geofence import geofence_from_file, geofence_from_selectors

    if omitted and policy:
        raise UsageError("give --omitted SEL or --policy FILE, not both")
    if policy:
        return geofence_from_file(policy)
    if omitted:
        maps = [m for m in (dmap, load_snapshot().derp_map) if m is not None]
        return geofence_from_selectors(omitted, maps)
    return None


# -- rendering -------------------------------------------------------------------------------------


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.1f} {prefix}{unit}"
    return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"


def _share(value: float | None) -> str:
    return "n/a (nothing moved)" if value is None else f"{value * 100:.1f}%"


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) and abs(value) < 1e15 else f"{value:.6g}"


def render(report: WatchReport, *, max_series: int = 40) -> RenderableType:
    """The report as rich renderables: a Tailscale client's paths first, then every changed series."""
    # rich is heavy, and only the terminal view needs it (not --format json, not --help)
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from derptool.watch.tailscale import PATH_NAMES

    parts: list[RenderableType] = [
        Text(f"{report.target}  (every {report.interval_s:.1f} s)", style="bold"),
    ]
    client = report.client
    if client is not None:
        home = "none" if client.home is None else client.home.label
        line = Text(f"home DERP region: {home}")
        if report.home_omitted:
            line.append("  OMITTED by the geofence", style="bold red")
        elif report.home_omitted is False:
            line.append("  allowed by the geofence", style="green")
        parts.append(line)
        parts.append(
            Text(
                f"relayed through DERP: {_share(client.derp_share)} of bytes this interval, "
                f"{_share(client.derp_share_total)} since tailscaled started"
            )
        )
        paths = Table(title=None, show_edge=False, pad_edge=False)
        for col in ("PATH", "IN", "OUT", "IN PKT/S", "OUT PKT/S", "IN TOTAL", "OUT TOTAL"):
            paths.add_column(col, justify="left" if col == "PATH" else "right")
        for p in client.paths:
            style = "yellow" if p.path == "derp" and p.bytes_per_s > 0 else None
            paths.add_row(
                PATH_NAMES.get(p.path, p.path),
                _si(p.in_bytes_per_s, "B/s"),
                _si(p.out_bytes_per_s, "B/s"),
                f"{p.in_packets_per_s:.1f}",
                f"{p.out_packets_per_s:.1f}",
                _si(p.in_bytes, "B"),
                _si(p.out_bytes, "B"),
                style=style,
            )
        parts.append(paths)
        drops = (
            ", ".join(f"{d.direction} {d.reason or '?'}: {_number(d.total)} ({d.per_s:.1f}/s)" for d in client.drops)
            or "none"
        )
        health = ", ".join(f"{kind}: {_number(n)}" for kind, n in client.health.items()) or "none"
        parts.append(Text(f"drops: {drops}\nhealth messages: {health}"))
    series = Table(show_edge=False, pad_edge=False)
    for col in ("SERIES", "VALUE", "CHANGE", "PER SECOND"):
        series.add_column(col, justify="left" if col == "SERIES" else "right", overflow="fold")
    for c in report.changes[:max_series]:
        rate = f"{c.per_s:.6g}" + (" (reset)" if c.reset else "")
        series.add_row(c.selector, _number(c.value), f"{c.delta:+.6g}", rate)
    hidden = len(report.changes) - max_series
    parts.append(Text(f"{len(report.changes)} series changed" + (f" ({hidden} not shown)" if hidden > 0 else "")))
    if report.changes:
        parts.append(series)
    return Group(*parts)


# -- the command -----------------------------------------------------------------------------------


@app.command("watch")
@handle_errors
def watch_command(
    url: Annotated[str | None, typer.Argument(metavar="[URL]", help="Prometheus endpoint to scrape.")] = None,
    socket: Annotated[
        str | None, typer.Option("--socket", metavar="PATH", help="A tailscaled's LocalAPI socket to scrape.")
    ] = None,
    interval: Annotated[
        float,
        typer.Option("--interval", "-i", min=0.05, max=86400.0, metavar="SECONDS", help="Seconds between scrapes."),
    ] = 2.0,
    match: Annotated[
        str | None, typer.Option("--match", metavar="REGEX", help="Only series whose name{labels} matches.")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Print one snapshot (two scrapes --interval apart) and exit.")
    ] = False,
    count: Annotated[
        int | None, typer.Option("--count", min=1, metavar="N", help="Stop the live view after N intervals.")
    ] = None,
    fmt: Annotated[WatchFormat, typer.Option("--format", "-f", help="Output of --once.")] = WatchFormat.table,
    omitted: Annotated[
        list[str] | None,
        typer.Option("--omitted", metavar="SEL", help="Exit 1 when the home DERP region is one of these (repeatable)."),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            metavar="FILE",
            help="Exit 1 when this policy's derpMap (or DERP map overlay) removes the home DERP region.",
        ),
    ] = None,
    map_spec: Annotated[
        str | None,
        typer.Option(
            "--map",
            "-m",
            metavar="MAP",
            help="DERP map naming the regions (default: the client's own map, else the bundled snapshot).",
        ),
    ] = None,
    ca_file: CaFileOption = None,
) -> None:
    """Scrape a Prometheus endpoint and show what changes: for a Tailscale client, traffic per path
    (DERP, direct, peer relay), the share relayed through DERP, drops, health and the home DERP region.

    The default target is the local tailscaled (LocalAPI socket /var/run/tailscale/tailscaled.sock, else
    http://100.100.100.100/metrics). Examples: 'derptool watch'; 'derptool watch --once --format json';
    'derptool watch --omitted us' (exit 1 while the home region is in the US); 'derptool watch
    http://127.0.0.1:9100/metrics --match "^node_network"'.
    """
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.watch import Target, build_report, scrape

    pattern = _compile(match)
    target = Target.from_spec(url, socket, ca_file=ca_file)
    if fmt is WatchFormat.json and not once:
        raise UsageError("--format json needs --once (the live view is a terminal table)")
    previous = scrape(target)
    dmap = _naming_map(target, map_spec)
    fence = _geofence(omitted, policy, dmap)
    if fence is not None and not any(name == "tailscaled_home_derp_region_id" for name, _ in previous.series):
        raise UsageError(
            f"{target.description} is not a Tailscale client (no tailscaled_home_derp_region_id): "
            "--omitted and --policy need one"
        )

    def next_report() -> WatchReport:
        nonlocal previous
        time.sleep(max(0.0, interval - (time.monotonic() - previous.taken)))
        current = scrape(target)
        report = build_report(target, previous, current, dmap=dmap, match=pattern, geofence=fence)
        previous = current
        return report

    if once:
        report = next_report()
        if fmt is WatchFormat.json:
            typer.echo(to_json(report.to_data()))
        else:
            _console().print(render(report))
    else:
        report = _live(next_report, count)
    if report.home_omitted:
        raise typer.Exit(1)


def _console() -> Console:
    """A console for stdout; when stdout is not a terminal, lines as wide as a long series name needs."""
    # rich is heavy, and only the terminal view needs it (not --format json, not --help)
    from rich.console import Console

    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=160)


def _live(next_report: Callable[[], WatchReport], count: int | None) -> WatchReport:
    """Redraw the view after every interval until interrupted (or *count* intervals)."""
    # rich is heavy, and only the terminal view needs it (not --format json, not --help)
    from rich.live import Live
    from rich.text import Text

    console = _console()
    done = 0
    report = None
    with Live(
        Text("first scrape done; waiting one interval for rates..."),
        console=console,
        auto_refresh=False,
        transient=False,
        redirect_stdout=False,
    ) as live:
        while count is None or done < count:
            report = next_report()
            live.update(render(report, max_series=max(5, console.size.height - 20)), refresh=True)
            done += 1
    assert report is not None
    return report
