"""``derptool nat``: what kind of NAT is this machine behind, and what that means for direct connections."""

from __future__ import annotations

import textwrap
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from derptool.cli._app import app
from derptool.cli._errors import handle_errors, warn
from derptool.cli._inputs import load_selected
from derptool.cli._options import MapOption, RefreshOption, RegionOption, retired_short, timeout_option
from derptool.cli._output import WideOption, table, to_json, yes_no
from derptool.cli._probe import BindAddressOption, BindPortOption, PortMappingOption, parse_bind, port_mapping_text

if TYPE_CHECKING:
    from derptool.net.nat import NatReport


class NatFormat(StrEnum):
    """Output formats of ``derptool nat``."""

    table = "table"
    json = "json"


@app.command("nat")
@handle_errors
def nat_command(
    map_spec: MapOption = "default",
    region: RegionOption = None,
    fmt: Annotated[NatFormat, typer.Option("--format", "-f", help="Output format.")] = NatFormat.table,
    timeout: Annotated[float, timeout_option("Time to wait for STUN answers.", default="3s", high=60)] = 3.0,
    retired_t: Annotated[str | None, retired_short("-t", "--tailnet", "--timeout DURATION")] = None,
    bind_address: BindAddressOption = None,
    bind_port: BindPortOption = 0,
    port_mapping: PortMappingOption = False,
    wide: WideOption = False,
    refresh: RefreshOption = False,
) -> None:
    """Detect the NAT type by STUN to several DERP servers from one UDP socket.

    Easy NAT (the same public address for every server) lets Tailscale connect peers directly; hard NAT
    (a new public port per destination) usually forces traffic through a DERP relay.

    Exit status: 0 when a STUN server answered, 1 when none did (UDP blocked), as ``latency``; 2 a bad
    option or a --map that cannot be read; 3 a --map URL that cannot be fetched.
    """
    from derptool.net import natprobe  # heavy: imported when the command runs, so that --help stays fast

    bind_ip, _, _ = parse_bind(bind_address, None, None)
    loaded, dmap = load_selected(map_spec, region)
    report = natprobe.run(
        loaded.derp_map,
        sorted(dmap.regions) if region else None,
        timeout=timeout,
        bind_ip=bind_ip,
        bind_port=bind_port,
        port_mapping=port_mapping,
    )
    for note in report.notes:
        warn(note)
    typer.echo(to_json(report.to_data()) if fmt is NatFormat.json else nat_text(report))
    if not report.result.udp:
        raise typer.Exit(1)


def nat_text(report: NatReport) -> str:
    """``derptool nat`` as text: the probes table, a summary, and the plain-language explanation."""
    probes = table(
        [
            [o.node or "", str(o.server), str(o.mapped) if o.mapped else f"- ({o.error or 'no answer'})"]
            for o in report.observations
        ],
        ["NODE", "STUN SERVER", "SEEN FROM"],
    )
    r = report.result
    summary = [
        ("UDP", yes_no(r.udp)),
        ("NAT type", r.nat_type),
        ("Mapping", r.mapping or "-"),
        ("Local address", str(r.local) if r.local else "-"),
        ("Public address", ", ".join(str(m) for m in r.mapped) or "-"),
        ("Port preserved", yes_no(r.port_preserved)),
        ("PortMapping", port_mapping_text(report.port_mapping)),
    ]
    if report.captive_portal is not None:
        summary.append(("CaptivePortal", yes_no(report.captive_portal)))
    for family, other in ((4, report.ipv4), (6, report.ipv6)):
        if other is not None and r.family != family:
            seen = ", ".join(str(m) for m in other.mapped) or "no answer"
            summary.append((f"IPv{family}", f"{other.nat_type} ({seen})"))
    width = max(len(k) for k, _ in summary)
    lines = [probes, ""]
    lines += [f"{k + ':':<{width + 1}} {v}" for k, v in summary]
    lines += ["", textwrap.fill(r.explanation, width=100)]
    return "\n".join(lines)
