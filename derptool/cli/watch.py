"""``derptool watch``: a live view of a Prometheus endpoint, made for a Tailscale client's relayed traffic
and, on its LocalAPI, each peer's path."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
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
    from derptool.watch import Geofence, History, PeerPath, Target, WatchReport, WatchSession


class WatchFormat(StrEnum):
    """Output formats of ``derptool watch``."""

    table = "table"
    json = "json"


def _compile(regex: str | None, option: str) -> re.Pattern[str] | None:
    if regex is None:
        return None
    try:
        return re.compile(regex)
    except (re.error, RecursionError, OverflowError) as err:
        raise UsageError(f"{option}: {regex!r} is not a valid regular expression: {err}") from None


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

_BARS = "▁▂▃▄▅▆▇█"
PATH_STYLES = {"derp": "yellow", "peer-relay": "cyan", "direct": "green", "idle": "dim"}


def sparkline(values: Sequence[float | None], width: int = 30) -> str:
    """The last *width* values as block characters scaled from 0 (or the lowest value) to the highest; a
    gap where a value is None."""
    shown = list(values)[-width:]
    known = [v for v in shown if v is not None and math.isfinite(v)]
    if not known:
        return " " * len(shown)
    low, high = min(0.0, *known), max(known)
    span = high - low
    out = []
    for v in shown:
        if v is None or not math.isfinite(v):
            out.append(" ")
        else:
            out.append(_BARS[0] if span <= 0 else _BARS[min(len(_BARS) - 1, int((v - low) / span * len(_BARS)))])
    return "".join(out)


def _clean(text: str, limit: int = 80) -> str:
    """Text from the target, safe to print: control characters shown as '?', cut at *limit* characters."""
    safe = "".join(c if c.isprintable() else "?" for c in text)
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def _si(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return f"{value} {unit}"
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.1f} {prefix}{unit}"
    return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"


def _share(value: float | None) -> str:
    return "n/a (nothing moved)" if value is None else f"{value * 100:.1f}%"


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.0f}" if value == int(value) and abs(value) < 1e15 else f"{value:.6g}"


def _duration(seconds: float) -> str:
    """``4.2s``, ``45s``, ``3m04s``, ``2h05m``, ``3d04h``."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _via(peer: PeerPath) -> str:
    return _clean(peer.route.region or peer.route.endpoint or "", 48)


def _on_path(peer: PeerPath, session_s: float) -> str:
    """How long on this path: exact when the session saw the move, else at least the session's length."""
    return _duration(peer.since_s) if peer.since_s is not None else f">= {_duration(session_s)}"


def _ago(seconds: float | None) -> str:
    return "never" if seconds is None else _duration(seconds) + " ago"


def _peer_table(peers: list[PeerPath], history: History | None, session_s: float, limit: int) -> RenderableType:
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, pad_edge=False)
    columns = ["PEER", "PATH", "VIA", "IN", "OUT", "HANDSHAKE", "ON PATH"]
    if history is not None:
        columns.append("IN+OUT HISTORY")
    for col in columns:
        table.add_column(col, justify="left" if col in {"PEER", "PATH", "VIA", "IN+OUT HISTORY"} else "right")
    for p in peers[:limit]:
        row: list[RenderableType] = [
            Text(_clean(p.name, 40)),
            Text(p.route.path),
            Text(_via(p)),
            _si(p.rx_bytes_per_s, "B/s"),
            _si(p.tx_bytes_per_s, "B/s"),
            _ago(p.last_handshake_age_s),
            _on_path(p, session_s),
        ]
        if history is not None:
            known = history.peers.get(p.key)
            both = (
                []
                if known is None
                else [None if a is None else a + (b or 0.0) for a, b in zip(known.rx, known.tx, strict=True)]
            )
            row.append(sparkline(both, 24))
        table.add_row(*row, style=PATH_STYLES[p.route.path])
    return table


def _followed(peer: PeerPath, history: History | None, session_s: float) -> RenderableType:
    """Everything known about the one peer ``--peer`` follows."""
    from rich.text import Text

    st = peer.state
    names = ", ".join(_clean(n, 60) for n in (st.dns_name, *st.tailscale_ips) if n)
    via = {"derp": "DERP region ", "direct": "direct to ", "peer-relay": "peer relay server "}
    path = via[peer.route.path] + _via(peer) if peer.route.path in via else peer.route.path
    lines = [
        f"peer {_clean(peer.name, 40)}" + (f" ({names})" if names else "") + ("" if st.online else "  offline"),
        f"path: {path} for {_on_path(peer, session_s)}; home DERP region {_clean(st.relay, 20) or 'none'}",
        f"last handshake {_ago(peer.last_handshake_age_s)}; in {_si(peer.rx_bytes_per_s, 'B/s')}, "
        f"out {_si(peer.tx_bytes_per_s, 'B/s')}; totals in {_si(st.rx_bytes, 'B')}, out {_si(st.tx_bytes, 'B')}",
    ]
    known = None if history is None else history.peers.get(peer.key)
    if known is not None and len(known.rx) > 1:
        lines.append(f"in  {sparkline(known.rx, 40)}\nout {sparkline(known.tx, 40)}")
    if known is not None and len(known.routes) > 1:
        moves = " -> ".join(
            f"{_duration(t)} {r.path}" + (f" {_clean(r.region or r.endpoint or '', 48)}" if r.path != "idle" else "")
            for t, r in known.routes
        )
        lines.append(f"path changes (session time): {moves}")
    return Text("\n".join(lines), style=PATH_STYLES[peer.route.path])


def _session_line(history: History) -> RenderableType:
    from rich.text import Text

    share = history.derp_share[-1] if history.derp_share else None
    rx = history.rx[-1] if history.rx else None
    tx = history.tx[-1] if history.tx else None
    return Text(
        f"session {_duration(history.elapsed_s)}:  DERP share {sparkline(history.derp_share)} {_share(share)}"
        f"   in {sparkline(history.rx)} {_si(rx or 0.0, 'B/s')}   out {sparkline(history.tx)} {_si(tx or 0.0, 'B/s')}"
    )


def render(
    report: WatchReport, *, max_series: int = 40, history: History | None = None, followed: bool = False
) -> RenderableType:
    """The report as rich renderables: a Tailscale client's paths and peers first, then every changed series
    (with sparklines of the session so far when *history* is given; *followed*: one peer in detail)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from derptool.watch.tailscale import PATH_NAMES

    session_s = history.elapsed_s if history is not None else report.interval_s
    parts: list[RenderableType] = [
        Text(f"{_clean(report.target, 200)}  (every {report.interval_s:.1f} s)", style="bold"),
    ]
    client = report.client
    if client is not None:
        home = "none" if client.home is None else client.home.label
        line = Text(f"home DERP region: {_clean(home, 120)}")
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
        if history is not None and client is not None:
            parts.append(_session_line(history))
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
    if report.peers is not None:
        if followed:
            parts.append(
                _followed(report.peers[0], history, session_s)
                if report.peers
                else Text("the followed peer is no longer in the client's status", style="bold red")
            )
        else:
            relayed = sum(1 for p in report.peers if p.route.path in {"derp", "peer-relay"})
            parts.append(Text(f"{len(report.peers)} peers, {relayed} relayed"))
            if report.peers:
                parts.append(_peer_table(report.peers, history, session_s, max(5, max_series // 2)))
                hidden = len(report.peers) - max(5, max_series // 2)
                if hidden > 0:
                    parts.append(Text(f"({hidden} more peers not shown; --format json has them all)"))
    if client is not None:
        drops = (
            ", ".join(
                f"{d.direction} {_clean(d.reason, 40) or '?'}: {_number(d.total)} ({d.per_s:.1f}/s)"
                for d in client.drops
            )
            or "none"
        )
        health = ", ".join(f"{_clean(kind, 40)}: {_number(n)}" for kind, n in client.health.items()) or "none"
        parts.append(Text(f"drops: {drops}\nhealth messages: {health}"))
    series = Table(show_edge=False, pad_edge=False)
    columns = ["SERIES", "VALUE", "CHANGE", "PER SECOND"] + (["HISTORY"] if history is not None else [])
    for col in columns:
        series.add_column(col, justify="left" if col in {"SERIES", "HISTORY"} else "right", overflow="fold")
    for c in report.changes[:max_series]:
        rate = f"{c.per_s:.6g}" + (" (reset)" if c.reset else "")
        row: list[RenderableType] = [Text(_clean(c.selector, 300)), _number(c.value), f"{c.delta:+.6g}", rate]
        if history is not None:
            row.append(sparkline(history.series.get(c.selector, ()), 24))
        series.add_row(*row)
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
    exclude: Annotated[
        str | None, typer.Option("--exclude", metavar="REGEX", help="Leave out series whose name{labels} matches.")
    ] = None,
    peer: Annotated[
        str | None,
        typer.Option(
            "--peer", metavar="NAME", help="Follow one peer (name, MagicDNS name, host name or Tailscale IP)."
        ),
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
    (DERP, direct, peer relay), the share relayed through DERP, drops, health and the home DERP region;
    on its LocalAPI socket also every peer's path (DERP with its region, direct with its endpoint, peer
    relay, idle), rates, last handshake and how long on the path, relayed peers first.

    The default target is the local tailscaled (LocalAPI socket /var/run/tailscale/tailscaled.sock, else
    http://100.100.100.100/metrics). Examples: 'derptool watch'; 'derptool watch --once --format json';
    'derptool watch --peer laptop'; 'derptool watch --omitted us' (exit 1 while the home region is in the
    US); 'derptool watch http://127.0.0.1:9100/metrics --match "^node_network" --exclude "lo"'.
    """
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.watch import Target, WatchSession

    pattern, excluded = _compile(match, "--match"), _compile(exclude, "--exclude")
    target = Target.from_spec(url, socket, ca_file=ca_file)
    if fmt is WatchFormat.json and not once:
        raise UsageError("--format json needs --once (the live view is a terminal table)")
    timeout = max(interval, 5.0)
    dmap = _naming_map(target, map_spec)
    fence = _geofence(omitted, policy, dmap)
    session = WatchSession(
        target, dmap=dmap, match=pattern, exclude=excluded, geofence=fence, peer=peer, timeout=timeout
    )
    if fence is not None and not any(name == "tailscaled_home_derp_region_id" for name, _ in session.previous.series):
        raise UsageError(
            f"{target.description} is not a Tailscale client (no tailscaled_home_derp_region_id): "
            "--omitted and --policy need one"
        )

    def next_report() -> WatchReport:
        time.sleep(session.due_in(interval))
        return session.step()

    if once:
        report = next_report()
        if fmt is WatchFormat.json:
            typer.echo(to_json(report.to_data()))
        else:
            _console().print(render(report, followed=peer is not None))
    else:
        report = _live(session, next_report, count, followed=peer is not None)
    if report.home_omitted:
        raise typer.Exit(1)


def _console() -> Console:
    """A console for stdout; when stdout is not a terminal, lines as wide as a long series name needs."""
    # rich is heavy, and only the terminal view needs it (not --format json, not --help)
    from rich.console import Console

    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=160)


def _live(
    session: WatchSession, next_report: Callable[[], WatchReport], count: int | None, *, followed: bool
) -> WatchReport:
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
            view = render(
                report, max_series=max(5, console.size.height - 24), history=session.history, followed=followed
            )
            live.update(view, refresh=True)
            done += 1
    assert report is not None
    return report
