"""``derptool nat``: what kind of NAT is this machine behind, and what that means for direct connections."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from derptool.cli._common import MapOption, RegionOption, app, handle_errors, load_selected


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
    from derptool import natprobe, render

    loaded, dmap = load_selected(map_spec, region)
    report = natprobe.run(loaded.derp_map, sorted(dmap.regions) if region else None, timeout=timeout)
    data = report.to_data()
    typer.echo(render.to_json(data) if fmt is NatFormat.json else render.nat_text(data))
