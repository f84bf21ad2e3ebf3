"""Options and text shared by the commands that send STUN probes from a local socket: latency and nat."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Annotated

import typer

from derptool.errors import UsageError

if TYPE_CHECKING:
    from derptool.net.portmap import PortMapProbe


BindAddressOption = Annotated[
    str | None,
    typer.Option(
        "--bind-address",
        metavar="IP",
        show_default=False,
        help="Send and receive the STUN probes from this local IP address [default: any].",
    ),
]
PortMappingOption = Annotated[
    bool,
    typer.Option(
        "--port-mapping/--no-port-mapping",
        help="Ask the default gateway for UPnP, NAT-PMP and PCP, as tailscale netcheck does "
        "(sends to the LAN, so off unless asked for).",
    ),
]
BindPortOption = Annotated[
    int,
    typer.Option(
        "--bind-port",
        metavar="PORT",
        min=0,
        max=65535,
        help="Send and receive the STUN probes from this local UDP port (0: any).",
    ),
]


def parse_bind(
    address: str | None, ipv4: bool | None, ipv6: bool | None
) -> tuple[str | None, bool | None, bool | None]:
    """Check ``--bind-address`` (an IP literal) and fit the families to it: (address, ipv4, ipv6).

    An IPv4 address leaves no IPv6 socket (as ``tailscale netcheck``), so IPv6 is not probed unless asked
    for, which is a usage error; the same the other way round.
    """
    if address is None:
        return None, ipv4, ipv6
    try:
        version = ipaddress.ip_address(address.split("%", 1)[0]).version
    except ValueError:
        raise UsageError(f"--bind-address: {address!r} is not an IP address (example: 192.168.1.20)") from None
    other = ipv6 if version == 4 else ipv4
    if other is True:
        raise UsageError(
            f"--bind-address {address} is IPv{version}: it cannot send IPv{10 - version} probes "
            f"(drop --ipv{10 - version})"
        )
    if version == 4:
        return address, ipv4, False
    return address, False, ipv6


def port_mapping_text(probe: PortMapProbe | None) -> str:
    """netcheck's PortMapping line: the protocols found, "none", "not checked", or why it failed."""
    if probe is None:
        return "not checked (--port-mapping)"
    if probe.error is not None:
        return f"not checked ({probe.error})"
    return ", ".join(probe.protocols) or "none"
