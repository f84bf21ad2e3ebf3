"""Ports and protocols: ACL ``host:ports`` destinations and grant ``ip`` entries as packet-filter parts.

A port spec becomes ``(first, last)`` ranges (``*`` is ``(0, 65535)``); a protocol becomes the
``IPProto`` list of the filter rule (``None`` when absent: Tailscale's default of TCP, UDP and ICMP).
"""

from __future__ import annotations

from dataclasses import dataclass

from derptool.policy.selectors import parse_proto_port_range, protocol_number, split_host_ports

PortRange = tuple[int, int]
ALL_PORTS: PortRange = (0, 65535)
DEFAULT_PROTOS = (6, 17, 1, 58)
"""What a rule without ``IPProto`` allows: TCP, UDP, ICMPv4 and ICMPv6."""


def parse_ports(spec: str) -> list[PortRange] | None:
    """``*``, ``22``, ``80,443``, ``1000-2000`` as ranges; None when malformed."""
    spec = spec.strip()
    if spec == "*":
        return [ALL_PORTS]
    out: list[PortRange] = []
    for part in spec.split(","):
        first, dash, last = part.strip().partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            return None
        a = int(first)
        b = int(last) if dash else a
        if a > b or b > 65535:
            return None
        out.append((a, b))
    return out


def parse_proto(proto: str | None) -> list[int] | None:
    """The ``IPProto`` list of a protocol name or number; None for "" (the default set)."""
    if proto is None or proto.strip() == "" or proto.strip() == "*":
        return None
    number = protocol_number(proto.strip())
    return [number] if number is not None else None


@dataclass(frozen=True)
class IPSpec:
    """One grant ``ip`` entry (or an ACL ``proto`` with one destination's ports)."""

    protos: list[int] | None
    ports: list[PortRange]


def parse_grant_ip(entry: str) -> IPSpec | None:
    """A grant ``ip`` entry (``*``, ``22``, ``80-443``, ``tcp:443``, ``icmp:*``, ``*:8096``, ``47:*``) read by
    :func:`~derptool.policy.selectors.parse_proto_port_range`, the one parser validation uses too; None when
    Tailscale would reject it."""
    parsed = parse_proto_port_range(entry.strip())
    if isinstance(parsed, str):
        return None
    return IPSpec([parsed.proto] if parsed.proto else None, [(parsed.first, parsed.last)])


def split_destination(entry: str) -> tuple[str, list[PortRange]] | None:
    """An ACL ``dst`` entry as its host selector and port ranges; None when malformed."""
    split = split_host_ports(entry.strip())
    if split is None:
        return None
    host, spec = split
    ports = parse_ports(spec)
    return (host, ports) if ports is not None else None


def proto_allows(protos: list[int] | None, proto: int) -> bool:
    """Whether a rule's ``IPProto`` (None: the default set) admits protocol number *proto*."""
    return proto in (protos if protos is not None else DEFAULT_PROTOS)


def port_allows(ports: PortRange, port: int) -> bool:
    """Whether *port* is inside a range."""
    return ports[0] <= port <= ports[1]


__all__ = [
    "ALL_PORTS",
    "DEFAULT_PROTOS",
    "IPSpec",
    "PortRange",
    "parse_grant_ip",
    "parse_ports",
    "parse_proto",
    "port_allows",
    "proto_allows",
    "split_destination",
]
