"""Firewall allow-lists of a DERP map: the addresses and ports its relays serve on.

:func:`allow_list` turns a map (after a geofence: the relays a tailnet may use) into :class:`Endpoint` values;
the renderers write them as a plain CIDR list, an nftables table or ``iptables-restore`` rules:

* DERP over TLS on the node's ``DERPPort`` (TCP, 443 when 0), plain HTTP on TCP 80 where ``CanPort80``;
  none for a STUN-only node;
* STUN on the node's ``STUNPort`` (UDP, 3478 when 0), none when it is -1;
* addresses from ``IPv4``/``IPv6``, else a ``HostName`` that is an address literal; ``"none"`` disables the
  family. A node known by host name only cannot be listed offline: a note names it.

The nftables table holds two sets of ``address . protocol . port`` and a regular chain ``derp_allow`` that
accepts them; it hooks into nothing, so loading it changes no traffic until a rule of yours jumps to it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from derptool.derpmap import DERPMap, DERPNode

NFT_TABLE = "derptool"
"""The nftables table the nft allow-list defines (family ``inet``)."""
IPTABLES_CHAIN = "DERPTOOL-DERP"
"""The chain of the ``filter`` table the iptables allow-list defines."""


@dataclass(frozen=True, order=True)
class Endpoint:
    """One address, protocol and port a relay serves on."""

    family: Literal[4, 6]
    address: str
    proto: Literal["tcp", "udp"]
    port: int


@dataclass
class AllowList:
    """The endpoints of a map's relays (sorted, without duplicates) and notes on what could not be listed."""

    endpoints: list[Endpoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def addresses(self, family: Literal[4, 6]) -> list[str]:
        """The distinct addresses of one family, in address order."""
        found = {e.address for e in self.endpoints if e.family == family}
        return sorted(found, key=ipaddress.ip_address)


def _address(node: DERPNode, family: Literal[4, 6]) -> str | None:
    given = node.ipv4 if family == 4 else node.ipv6
    if given == "none":
        return None
    for text in (given, node.host_name):
        if not text:
            continue
        try:
            ip = ipaddress.ip_address(text.strip("[]"))
        except ValueError:
            continue
        if ip.version == family:
            return str(ip)
    return None


def allow_list(dmap: DERPMap) -> AllowList:
    """The endpoints of every node of *dmap* (see the module docstring)."""
    found: set[Endpoint] = set()
    notes: list[str] = []
    for region in dmap.region_list():
        for node in region.nodes:
            ports: list[tuple[Literal["tcp", "udp"], int]] = []
            if not node.stun_only:
                ports.append(("tcp", node.effective_derp_port))
                if node.can_port80:
                    ports.append(("tcp", 80))
            stun = node.effective_stun_port
            if stun is not None:
                ports.append(("udp", stun))
            families: tuple[Literal[4, 6], ...] = (4, 6)
            addresses = [(fam, a) for fam in families if (a := _address(node, fam)) is not None]
            if not addresses and ports:
                notes.append(
                    f"node {node.name} (region {region.region_id} {region.region_code}) has no IPv4/IPv6 address "
                    f"in the map, only the host name {node.host_name!r}: it is not listed (resolve it yourself)"
                )
            found.update(Endpoint(fam, a, proto, port) for fam, a in addresses for proto, port in ports)
    ordered = sorted(found, key=lambda e: (e.family, ipaddress.ip_address(e.address), e.proto, e.port))
    return AllowList(ordered, notes)


def render_cidr(allowed: AllowList) -> str:
    """One CIDR a line (``/32`` and ``/128``), IPv4 first; empty text for an empty list."""
    lines = [f"{a}/32" for a in allowed.addresses(4)] + [f"{a}/128" for a in allowed.addresses(6)]
    return "".join(line + "\n" for line in lines)


def _comment_lines(header: list[str]) -> list[str]:
    return [f"# {h}".rstrip() for h in header]


def render_nft(allowed: AllowList, *, header: list[str] | None = None, table: str = NFT_TABLE) -> str:
    """An ``nft -f`` file that (re)defines table ``inet`` *table* (see the module docstring)."""
    lines = ["#!/usr/sbin/nft -f", *_comment_lines(header or [])]
    lines += [f"table inet {table}", f"delete table inet {table}", "", f"table inet {table} {{"]
    rules = []
    for family, name, addr_type, match in ((4, "derp_v4", "ipv4_addr", "ip"), (6, "derp_v6", "ipv6_addr", "ip6")):
        elements = [f"{e.address} . {e.proto} . {e.port}" for e in allowed.endpoints if e.family == family]
        lines.append(f"\tset {name} {{")
        lines.append(f"\t\ttype {addr_type} . inet_proto . inet_service")
        if elements:
            lines.append("\t\telements = {")
            lines += [f"\t\t\t{el}," for el in elements]
            lines.append("\t\t}")
        lines.append("\t}")
        lines.append("")
        rules.append(f"\t\t{match} daddr . meta l4proto . th dport @{name} accept")
    lines.append("\tchain derp_allow {")
    lines += rules
    lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_iptables(
    allowed: AllowList, *, family: Literal[4, 6] = 4, header: list[str] | None = None, chain: str = IPTABLES_CHAIN
) -> str:
    """``iptables-restore`` input (``ip6tables-restore`` for *family* 6) that (re)defines *chain* in the filter
    table: one ACCEPT rule per endpoint. Load with ``--noflush`` to keep your other rules."""
    bits = 32 if family == 4 else 128
    lines = [*_comment_lines(header or []), "*filter", f":{chain} - [0:0]", f"-F {chain}"]
    for e in allowed.endpoints:
        if e.family == family:
            lines.append(f"-A {chain} -d {e.address}/{bits} -p {e.proto} -m {e.proto} --dport {e.port} -j ACCEPT")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"
