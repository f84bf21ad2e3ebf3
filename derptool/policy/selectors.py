"""The grammar of policy entries: selectors, ``host:ports``, port ranges, protocols, tag names."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Literal

from derptool.policy._go import quote

Kind = Literal[
    "wildcard", "tag", "group", "autogroup", "ipset", "service", "user", "userpattern", "posture", "ip", "host"
]

ROLE_AUTOGROUPS = frozenset({"admin", "owner", "network-admin", "it-admin", "billing-admin", "auditor"})
MEMBER_AUTOGROUPS = frozenset({"member", "members"}) | ROLE_AUTOGROUPS
AUTOGROUPS = MEMBER_AUTOGROUPS | {"internet", "self", "tagged", "shared", "danger-all", "nonroot"}
"""Every autogroup Tailscale documents (``members`` is the legacy spelling of ``member``)."""

PROTOCOLS = {
    "icmp": 1,
    "igmp": 2,
    "ipv4": 4,
    "ip-in-ip": 4,
    "tcp": 6,
    "egp": 8,
    "igp": 9,
    "udp": 17,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "ipv6-icmp": 58,
    "sctp": 132,
    "fc": 133,
}
"""Protocol names Tailscale accepts in ``proto`` and grant ``ip``, with their IANA numbers."""

PORT_PROTOCOLS = frozenset({6, 17, 132})
"""Protocols that have ports (TCP, UDP, SCTP); the others only take ``*``."""

IP_PROTOCOL_NAMES = {
    "ah": 51,
    "dccp": 33,
    "egp": 8,
    "esp": 50,
    "gre": 47,
    "icmp": 1,
    "icmpv4": 1,
    "icmpv6": 58,
    "igmp": 2,
    "igp": 9,
    "ip-in-ip": 4,
    "ipv4": 4,
    "ipv6-icmp": 58,
    "sctp": 132,
    "tcp": 6,
    "tsmp": 99,
    "udp": 17,
}
"""Protocol names a grant ``ip`` entry takes (Tailscale's ``ipproto`` names, any case), with their numbers."""


_PREFIX_KINDS: dict[str, Kind] = {
    "tag": "tag",
    "group": "group",
    "autogroup": "autogroup",
    "ipset": "ipset",
    "svc": "service",
    "user": "userpattern",
    "posture": "posture",
}


@functools.lru_cache(maxsize=1 << 16)
def kind(selector: str) -> Kind:
    """Classify a src/dst selector (already stripped of surrounding spaces); cached, as a policy names the same
    groups, tags and hosts in many rules."""
    if selector == "*":
        return "wildcard"
    prefix, sep, _ = selector.partition(":")
    if sep and prefix in _PREFIX_KINDS:
        return _PREFIX_KINDS[prefix]
    if "@" in selector:
        return "user"
    if is_address(selector):
        return "ip"
    return "host"


def is_address(text: str) -> bool:
    """True for an IP address, a CIDR prefix, or an IP range ``a-b`` of the same family."""
    if "-" in text and "/" not in text:
        first, _, last = text.partition("-")
        try:
            a, b = ipaddress.ip_address(first), ipaddress.ip_address(last)
        except ValueError:
            return False
        return a.version == b.version and int(a) <= int(b)
    try:
        if "/" in text:
            ipaddress.ip_network(text, strict=False)
        else:
            ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_prefix(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A CIDR prefix (host bits allowed, as Go's ``netip.ParsePrefix``), a bare IP as /32 or /128, or None."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def check_tag_name(tag: str) -> str | None:
    """``tailcfg.CheckTag``: the error text for a malformed tag, or None."""
    if not tag.startswith("tag:"):
        return "tags must start with 'tag:'"
    name = tag[4:]
    if not name:
        return "tag names must not be empty"
    if not ("a" <= name[0] <= "z" or "A" <= name[0] <= "Z"):
        return "tag names must start with a letter, after 'tag:'"
    for ch in name:
        if not (ch.isascii() and (ch.isalnum() or ch == "-")):
            return "tag names can only contain numbers, letters, or dashes"
    return None


def split_host_ports(entry: str) -> tuple[str, str] | None:
    """Split an ACL ``dst`` entry at its last ``:`` (``[v6]:port`` brackets removed); None without a colon."""
    host, sep, ports = entry.rpartition(":")
    if not sep:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, ports


def test_destination_form_error(dest: str) -> str | None:
    """Why a policy-test destination is not one host and one port (such a test never passes), or None."""
    split = split_host_ports(dest.strip())
    if split is None:
        return "a destination is host:port"
    host, port = split
    if not (port.isascii() and port.isdigit() and int(port) <= 65535):
        return "the port must be a single number"
    if host == "*" or "/" in host:
        return "the destination must be a single host, not a wildcard or a CIDR range"
    if host == "autogroup:internet":
        return "autogroup:internet is not valid as a test destination"
    if host == "autogroup:self":
        return "autogroup:self is not valid as a test destination"
    return None


def port_error(spec: str) -> str | None:
    """Check a port list (``*``, ``22``, ``80,443``, ``1000-2000``); the error text, or None."""
    if spec == "*":
        return None
    for part in spec.split(","):
        first, dash, last = part.partition("-")
        a = _port(first)
        if a is None:
            return f"port range {quote(part)}: invalid first integer"
        if a == 0:
            return f"port range {quote(part)}: first port must be >0, or use '*' for wildcard"
        if dash:
            b = _port(last)
            if b is None:
                return f"port range {quote(part)}: invalid last integer"
            if b < a:
                return f"port range {quote(part)}: first port must not be greater than the last port"
    return None


def _port(text: str) -> int | None:
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= 65535 else None


def protocol_number(proto: str) -> int | None:
    """The IANA number of a protocol name (any case) or decimal number 1..255, or None."""
    name = proto.lower()
    if name in PROTOCOLS:
        return PROTOCOLS[name]
    if name.isascii() and name.isdigit() and not name.startswith("0"):
        number = int(name)
        if 1 <= number <= 255:
            return number
    return None


@dataclass(frozen=True)
class ProtoPortRange:
    """One grant ``ip`` entry as Tailscale reads it (``tailcfg.ProtoPortRange``)."""

    proto: int
    """IANA protocol number; 0 for any: TCP, UDP and ICMP (Tailscale's default set)."""
    first: int
    last: int
    """The port range; ``(0, 65535)`` for ``*``."""


def parse_proto_port_range(entry: str) -> ProtoPortRange | str:
    """Read a grant ``ip`` entry with the rules of Tailscale's parser; the entry, or the message Tailscale gives.

    Forms: ``*``; ``PORTS`` (any protocol); ``PROTO:PORTS``, where PROTO is ``*``, a name of
    :data:`IP_PROTOCOL_NAMES` or a number 0-255 (0 and ``*`` mean any) and PORTS is ``*``, a port 1-65535 or a
    range ``A-B``. The whole entry is read in lower case; it splits at its last ``:``. There are no port lists:
    ``80,443`` is two entries.
    """
    if entry == "":
        return "empty string"
    if entry == "*":
        return ProtoPortRange(0, 0, 65535)
    text = entry.lower() if ":" in entry else "*:" + entry.lower()
    proto, _, ports = text.rpartition(":")
    if "," in proto:
        return 'host cannot contain a comma (",")'
    if ports == "*":
        first, last = 0, 65535
    else:
        span = _port_span(ports)
        if isinstance(span, str):
            return span
        first, last = span
    if proto == "":
        return "empty protocol"
    if proto == "*":
        return ProtoPortRange(0, first, last)
    if proto.isascii() and proto.isdigit() and int(proto) <= 255:
        return ProtoPortRange(int(proto), first, last)
    if proto in IP_PROTOCOL_NAMES:
        return ProtoPortRange(IP_PROTOCOL_NAMES[proto], first, last)
    return f"proto name {quote(proto)} not known; use protocol number 0-255"


def _port_span(ports: str) -> tuple[int, int] | str:
    """``A`` or ``A-B`` (decimal, 1-65535, A <= B); the range, or Tailscale's message."""
    if ports == "":
        return f"invalid port list: {quote(ports)}"
    if ports.count("-") > 1:
        return f"port range {quote(ports)}: too many dashes(-)"
    first_text, dash, last_text = ports.partition("-")
    first = _port(first_text)
    if first is None:
        return f"port range {quote(ports)}: invalid first integer"
    last = first
    if dash:
        found = _port(last_text)
        if found is None:
            return f"port range {quote(ports)}: invalid last integer"
        last = found
    if first == 0:
        return f"port range {quote(ports)}: first port must be >0, or use '*' for wildcard"
    if first > last:
        return f"port range {quote(ports)}: first port must be >= last port"
    return first, last


def protocol_error(proto: str) -> str:
    """The message for an unknown protocol."""
    return (
        f"proto {quote(proto)} is not a known protocol: use a name such as tcp, udp, icmp, sctp or an IANA number 1-255"
    )
