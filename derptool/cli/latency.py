"""``derptool latency``: DERP region latency, measured like ``tailscale netcheck``."""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from derptool.cli._app import app
from derptool.cli._errors import handle_errors, warn
from derptool.cli._inputs import load_selected
from derptool.cli._options import CaFileOption, MapOption, RefreshOption, RegionOption, parse_duration
from derptool.cli._output import WideOption, table, to_json, yes_no
from derptool.cli._probe import BindAddressOption, BindPortOption, PortMappingOption, parse_bind, port_mapping_text
from derptool.cli._report import HtmlOption, check_page_options, emit_page
from derptool.errors import UsageError

if TYPE_CHECKING:
    from derptool.derpmap import DERPMap
    from derptool.net.netcheck import RegionResult, Report
    from derptool.report import Page


class LatencyFormat(StrEnum):
    """Output formats of ``derptool latency``."""

    table = "table"
    json = "json"
    json_line = "json-line"
    prometheus = "prometheus"
    html = "html"
    png = "png"


def _progress() -> Callable[[RegionResult], None] | None:
    if not sys.stderr.isatty():
        return None
    done = 0

    def show(result: RegionResult) -> None:
        nonlocal done
        done += 1
        print(f"\rmeasured {done} regions (last: {result.code})\x1b[K", end="", file=sys.stderr, flush=True)

    return show


DurationOption = Annotated[
    str,
    typer.Option(
        "--timeout", metavar="DURATION", help="Time limit of a measurement (the STUN phase takes at most 3 s)."
    ),
]
EveryOption = Annotated[
    str | None,
    typer.Option(
        "--every", metavar="DURATION", show_default=False, help="Repeat at this interval (e.g. 30s) and redraw."
    ),
]
ListenOption = Annotated[
    str | None,
    typer.Option(
        "--listen",
        metavar="ADDR:PORT",
        show_default=False,
        help="Serve Prometheus text on http://ADDR:PORT/metrics (and /healthz) while repeating (every 60s unless "
        "--every).",
    ),
]
SiteLabelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--site-label",
        metavar="NAME=VALUE",
        show_default=False,
        help="Add this label to every Prometheus series (repeatable), so one job can scrape many sites.",
    ),
]
SiteOption = Annotated[
    str | None,
    typer.Option("--site", metavar="NAME", show_default=False, help="Same as --site-label site=NAME."),
]
_SERIES_LABELS = ("region_id", "region_code", "country", "method")  # the labels of netcheck.prometheus' series


@app.command("latency")
@handle_errors
def latency_command(
    map_spec: MapOption = "default",
    region: RegionOption = None,
    fmt: Annotated[LatencyFormat, typer.Option("--format", "-f", help="Output format.")] = LatencyFormat.table,
    timeout: DurationOption = "5s",
    https: Annotated[
        bool, typer.Option("--https", help="Measure every region over HTTPS, not only those without a UDP answer.")
    ] = False,
    ipv4: Annotated[
        bool | None,
        typer.Option(
            "--ipv4/--no-ipv4", show_default=False, help="Probe over IPv4 [default: where this machine has it]."
        ),
    ] = None,
    ipv6: Annotated[
        bool | None,
        typer.Option(
            "--ipv6/--no-ipv6", show_default=False, help="Probe over IPv6 [default: where this machine has it]."
        ),
    ] = None,
    every: EveryOption = None,
    listen: ListenOption = None,
    site_label: SiteLabelOption = None,
    site: SiteOption = None,
    count: Annotated[int | None, typer.Option("--count", hidden=True, help="Stop after N rounds.")] = None,
    ca_file: CaFileOption = None,
    bind_address: BindAddressOption = None,
    bind_port: BindPortOption = 0,
    port_mapping: PortMappingOption = False,
    html: HtmlOption = None,
    wide: WideOption = False,
    refresh: RefreshOption = False,
) -> None:
    """Measure the latency to each DERP region (STUN, HTTPS fallback) and show the nearest.

    With --every, rounds after the first probe only the fastest regions and the home region (a full round
    at least every 5 minutes), and the home region keeps 5 minutes of history, as tailscale netcheck does.
    --format json-line prints one timestamped JSON object per line (one per round). --format html (or png)
    prints the world map coloured by latency; --html FILE writes that page (rewritten every round with --every).

    Exit status: 0 when at least one region answered, 1 when none did, 2 a bad option or a --map that
    cannot be read, 3 a --map URL that cannot be fetched.
    """
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.net.netcheck.client import Netcheck

    serving = listen is not None or bool(site_label) or site is not None or fmt is LatencyFormat.prometheus
    if serving:  # the exporter (an HTTP server) only for Prometheus output: a plain run does not import it
        from derptool.net.exporter import Exporter, constant_labels, parse_listen, with_labels
        from derptool.net.netcheck.prometheus import exposition

    limit = parse_duration(timeout, "--timeout")
    interval = parse_duration(every, "--every") if every is not None else None
    address = parse_listen(listen) if listen is not None else None
    labels = constant_labels(site_label or [], site=site, taken=_SERIES_LABELS) if serving else {}
    if labels and address is None and fmt is not LatencyFormat.prometheus:
        warn("--site-label and --site label Prometheus series only (--listen, --format prometheus)")
    if count is not None and count < 1:
        raise UsageError("--count must be at least 1")
    if ipv4 is False and ipv6 is False:
        raise UsageError("--no-ipv4 and --no-ipv6 together leave nothing to probe")
    if address is not None and interval is None:
        interval = 60.0
    bind_ip, ipv4, ipv6 = parse_bind(bind_address, ipv4, ipv6)
    check_page_options(fmt.value, html)
    if interval is not None and fmt.value in ("html", "png"):
        raise UsageError(f"--format {fmt.value} prints one page: with --every, write it to a file with --html FILE")

    loaded, dmap = load_selected(map_spec, region)
    client = Netcheck(
        dmap,
        map_source=loaded.description,
        timeout=limit,
        https=https,
        ipv4=ipv4,
        ipv6=ipv6,
        ca_file=ca_file,
        bind_ip=bind_ip,
        bind_port=bind_port,
        port_mapping=port_mapping,
    )

    renderers: dict[LatencyFormat, Callable[[Report], str]] = {
        LatencyFormat.table: latency_table,
        LatencyFormat.json: latency_json,
        LatencyFormat.json_line: latency_json_line,
        LatencyFormat.prometheus: lambda r: with_labels(exposition(r), labels),
    }
    exporter = Exporter(*address, every=interval) if address else None
    redraw = interval is not None and sys.stdout.isatty() and fmt is LatencyFormat.table
    rounds = 0
    try:
        while True:
            started = time.monotonic()
            progress = _progress()
            report = client.measure(progress)
            if progress is not None:
                print("\r\x1b[K", end="", file=sys.stderr, flush=True)
            for note in report.notes:
                warn(note)
            if exporter is not None:
                exporter.publish(with_labels(exposition(report), labels), problem=_unhealthy(report))
            if not emit_page(fmt.value, html, functools.partial(_latency_page, report, dmap)):
                text = renderers[fmt](report)
                if redraw:
                    typer.echo("\x1b[H\x1b[2J" + time.strftime("%H:%M:%S ") + text)
                else:
                    typer.echo(text.rstrip("\n"))
            rounds += 1
            if interval is None or (count is not None and rounds >= count):
                break
            if not redraw and fmt not in (LatencyFormat.json, LatencyFormat.json_line):
                typer.echo("")
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        if exporter is not None:
            exporter.close()
    if not any(r.probed and r.latency_ms is not None for r in report.regions):
        raise typer.Exit(1)


_BAR_WIDTH = 24


def _unhealthy(report: Report) -> str | None:
    """What makes the exporter's /healthz answer 503 after this round: no probed region answered."""
    probed = [r for r in report.regions if r.probed]
    if any(r.latency_ms is not None for r in probed):
        return None
    return f"0 of {len(probed)} regions answered"


def _latency_page(report: Report, dmap: DERPMap) -> Page:
    from derptool.report.latency_page import latency_page

    return latency_page(report, dmap)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _bar(value: float | None, scale: float) -> str:
    if value is None or scale <= 0:
        return ""
    eighths = max(1, round(value / scale * _BAR_WIDTH * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")


def latency_table(report: Report) -> str:
    """The latency report as text: a summary, then one row per region (sorted) with a bar."""
    pref = report.preferred
    out = [f"Nearest DERP: {pref.name} ({pref.code}, region {pref.id})" if pref else "Nearest DERP: none"]
    home = _home_note(report)
    if home:
        out.append(home)
    v4 = f"yes, {report.global_v4}" if report.ipv4 else "no"
    v6 = f"yes, {report.global_v6}" if report.ipv6 else "no"
    out.append(
        f"UDP: {yes_no(report.udp)}   IPv4: {v4}   IPv6: {v6}   "
        f"MappingVariesByDestIP: {yes_no(report.mapping_varies_by_dest_ip)}"
    )
    out.append(f"PortMapping: {port_mapping_text(report.port_mapping)}" + _captive_text(report))
    if report.no_network and not report.login_portal:
        out.append(_NO_NETWORK)
    probed = [r for r in report.regions if r.probed]
    if report.incremental:
        out.append(
            f"{len([r for r in probed if r.latency_ms is not None])} of {len(probed)} regions probed "
            f"(incremental round: the fastest and the home region) answered in {report.duration_s:.2f} s; "
            f"the others show their last measurement (map: {report.map_source})"
        )
    else:
        out.append(
            f"{len(report.reachable)} of {len(report.regions)} regions answered in {report.duration_s:.2f} s "
            f"(map: {report.map_source})"
        )
    scale = max((r.latency_ms for r in report.reachable if r.latency_ms is not None), default=0.0)
    rows = []
    for r in report.regions:
        note = r.error or ("Avoid: never preferred" if r.avoid else "")
        if not r.probed and r.measured_at is not None:
            note = f"not probed this round (measured {time.strftime('%H:%M:%S', time.localtime(r.measured_at))})"
        rows.append(
            [
                "*" if r.id == report.preferred_region else "",
                r.id,
                r.code,
                r.name,
                r.country or "-",
                _ms(r.latency_ms),
                r.method or "-",
                r.node or "-",
                " ".join(x for x in (_bar(r.latency_ms, scale), note) if x),
            ]
        )
    out.append("")
    out.append(table(rows, ["", "ID", "CODE", "NAME", "COUNTRY", "LATENCY", "VIA", "NODE", ""]))
    return "\n".join(out)


_NO_NETWORK = (
    "No network: no DERP region answered over UDP or HTTPS (offline, or a firewall drops it all).\n"
    "Try: check the connection; offline, --map snapshot uses the bundled map without fetching the live one."
)


def _captive_text(report: Report) -> str:
    """netcheck's CaptivePortal field; with no network, an error page on port 80 is the gateway's, not a portal."""
    if report.captive_portal is None:
        return ""
    if report.no_network and report.captive_portal and not report.login_portal:
        return f"   CaptivePortal: no (HTTP {report.captive_status} on port 80: the gateway, not a login page)"
    return f"   CaptivePortal: {yes_no(report.captive_portal)}"


def _home_note(report: Report) -> str | None:
    """How HomeParams.RegionScore changes the home region (None when the map scores no measured region)."""
    from derptool.net.netcheck.report import preferred_region  # heavy: imported at run time, not for --help

    scored = [r for r in report.regions if r.score is not None and r.score > 0 and r.latency_ms is not None]
    if not scored or report.preferred is None:
        return None
    plain = preferred_region([dataclasses.replace(r, score=None) for r in report.regions])
    pref = report.preferred
    how = ", ".join(
        f"{r.code} {r.latency_ms:.1f} ms x {r.score:g} = {r.latency_ms * r.score:.1f}"  # type: ignore[operator]
        for r in scored
    )
    if plain == pref.id:
        return f"Home: {pref.code} (RegionScore: {how}); it would be home without the scores too"
    other = next((r for r in report.regions if r.id == plain), None)
    return (
        f"Home: {pref.code}, chosen by HomeParams.RegionScore ({how}); by latency alone it would be "
        f"{other.code if other else 'none'}"
    )


def latency_json(report: Report) -> str:
    """The latency report as the JSON object of the DESIGN.md contract."""
    return to_json(report.to_data())


def latency_json_line(report: Report) -> str:
    """The JSON object of ``--format json`` on one line (its ``time`` key says when the round started)."""
    return json.dumps(report.to_data(), separators=(",", ":"), ensure_ascii=False)
