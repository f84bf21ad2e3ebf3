"""``derptool nat``: what kind of NAT is this machine behind, and what that means for direct connections."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from derptool.cli._common import MapOption, RegionOption, app, handle_errors, load_selected
from derptool.cli._output import table, to_json, yes_no


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
    timeout: Annotated[
        float,
        typer.Option("--timeout", "-t", metavar="SECONDS", help="Seconds to wait for STUN answers.", min=0.1, max=60),
    ] = 3.0,
) -> None:
    """Detect the NAT type by STUN to several DERP servers from one UDP socket.

    Easy NAT (the same public address for every server) lets Tailscale connect peers directly; hard NAT
    (a new public port per destination) usually forces traffic through a DERP relay.
    """
    from derptool.net import natprobe

    loaded, dmap = load_selected(map_spec, region)
    report = natprobe.run(loaded.derp_map, sorted(dmap.regions) if region else None, timeout=timeout)
    data = report.to_data()
    typer.echo(to_json(data) if fmt is NatFormat.json else nat_text(data))


def nat_text(data: dict[str, Any]) -> str:
    """``derptool nat`` as text: the probes table, a summary, and the plain-language explanation.

    *data* is :meth:`derptool.net.nat.NatReport.to_data`.
    """
    import textwrap

    probes = table(
        [[p["node"] or "", p["server"], p["mapped"] or f"- ({p['error'] or 'no answer'})"] for p in data["probes"]],
        ["NODE", "STUN SERVER", "SEEN FROM"],
    )
    summary = [
        ("UDP", yes_no(data["udp"])),
        ("NAT type", data["nat_type"]),
        ("Mapping", data["mapping"] or "-"),
        ("Local address", data["local"] or "-"),
        ("Public address", ", ".join(data["mapped"]) or "-"),
        ("Port preserved", yes_no(data["port_preserved"])),
    ]
    for fam in ("ipv4", "ipv6"):
        other = data.get(fam)
        if other is not None and data.get("family") != int(fam[-1]):
            seen = ", ".join(other["mapped"]) or "no answer"
            summary.append((f"IPv{fam[-1]}", f"{other['nat_type']} ({seen})"))
    width = max(len(k) for k, _ in summary)
    lines = [probes, ""]
    lines += [f"{k + ':':<{width + 1}} {v}" for k, v in summary]
    lines += ["", textwrap.fill(data["explanation"], width=100)]
    return "\n".join(lines)
