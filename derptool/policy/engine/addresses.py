"""Sets of IP addresses as sorted integer ranges, IPv4 and IPv6 in one number line.

An IPv4 address ``a`` is the integer ``a``; an IPv6 address ``b`` is ``V6 + b``, so the two families never
overlap and one sorted list of ``(first, last)`` ranges (inclusive) holds both. Ranges never cross from one
family into the other. This is the shape Tailscale's packet filter speaks: ``SrcIPs`` are written as
ranges (``100.64.0.0-100.115.91.255``), single addresses or prefixes, ``DstPorts`` as prefixes.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

V6 = 1 << 32
"""Offset of the IPv6 family on the number line."""
V6_END = V6 + (1 << 128) - 1
V4_END = V6 - 1

Range = tuple[int, int]


def addr_int(text: str) -> int:
    """The number of an IPv4 or IPv6 address (raises ``ValueError``).

    The C parser (``inet_pton``) reads the usual forms; anything it refuses (a zone, say) goes to
    :mod:`ipaddress`, which decides.
    """
    try:
        if ":" in text:
            return V6 + int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, TypeError):
        pass
    ip = ipaddress.ip_address(text)
    return int(ip) if ip.version == 4 else V6 + int(ip)


def parse_addr(text: str) -> tuple[int, int, str]:
    """``(version, number, canonical text)`` of an address (raises ``ValueError``), cheaply for the usual forms."""
    try:
        if ":" not in text:
            packed = socket.inet_pton(socket.AF_INET, text)
            return 4, int.from_bytes(packed, "big"), socket.inet_ntop(socket.AF_INET, packed)
    except (OSError, TypeError):
        pass
    n = addr_int(text)
    return (4, n, addr_text(n)) if n < V6 else (6, n, addr_text(n))


@functools.lru_cache(maxsize=1 << 16)
def addr_text(n: int) -> str:
    """The text of the address with number *n* (RFC 5952 for IPv6, as Go and :mod:`ipaddress` write it)."""
    if n < V6:
        return socket.inet_ntop(socket.AF_INET, n.to_bytes(4, "big"))
    text = socket.inet_ntop(socket.AF_INET6, (n - V6).to_bytes(16, "big"))
    return text if "." not in text else str(ipaddress.IPv6Address(n - V6))


def prefix_range(text: str) -> Range:
    """The range of a CIDR prefix (host bits allowed) or a single address (raises ``ValueError``)."""
    net = ipaddress.ip_network(text.strip(), strict=False)
    base = 0 if net.version == 4 else V6
    return base + int(net.network_address), base + int(net.broadcast_address)


def parse_range(text: str) -> Range:
    """A prefix, a single address, or ``a-b`` of one family (raises ``ValueError``)."""
    text = text.strip()
    if "-" in text and "/" not in text:
        first, _, last = text.partition("-")
        a, b = ipaddress.ip_address(first.strip()), ipaddress.ip_address(last.strip())
        if a.version != b.version or int(a) > int(b):
            raise ValueError(f"invalid range {text!r}")
        base = 0 if a.version == 4 else V6
        return base + int(a), base + int(b)
    return prefix_range(text)


def _is_v6(n: int) -> bool:
    return n >= V6


def range_prefixes(first: int, last: int) -> Iterator[tuple[int, int]]:
    """Split a range into CIDR prefixes: ``(network number, prefix length)``."""
    v6 = _is_v6(first)
    base, bits = (V6, 128) if v6 else (0, 32)
    a, b = first - base, last - base
    while a <= b:
        size = (a & -a).bit_length() - 1 if a else bits
        while size > 0 and a + (1 << size) - 1 > b:
            size -= 1
        yield base + a, bits - size
        a += 1 << size


def prefix_text(network: int, length: int) -> str:
    """``net/len`` text; a full-length prefix as a bare address."""
    full = 128 if _is_v6(network) else 32
    if length == full:
        return addr_text(network)
    return f"{addr_text(network)}/{length}"


def prefix_text_full(network: int, length: int) -> str:
    """``net/len`` text, with ``/32`` and ``/128`` kept."""
    return f"{addr_text(network)}/{length}"


def range_text(first: int, last: int) -> str:
    """A range as Tailscale writes ``SrcIPs``: an address, a prefix when it is one, else ``a-b``."""
    if first == last:
        return addr_text(first)
    prefixes = list(range_prefixes(first, last))
    if len(prefixes) == 1:
        return prefix_text(*prefixes[0])
    return f"{addr_text(first)}-{addr_text(last)}"


def _normalize(ranges: Iterable[Range]) -> list[Range]:
    out: list[Range] = []
    for a, b in sorted(ranges):
        if out:
            pa, pb = out[-1]
            if a <= pb + 1 and not (pb == V4_END and a == V6):
                if b > pb:
                    out[-1] = (pa, b)
                continue
        out.append((a, b))
    return out


@dataclass(frozen=True)
class IPSet:
    """An immutable set of addresses: sorted, merged, non-overlapping ranges."""

    ranges: tuple[Range, ...] = ()

    @staticmethod
    def of(ranges: Iterable[Range]) -> IPSet:
        """The set covering *ranges* (any order, overlaps allowed)."""
        return IPSet(tuple(_normalize(ranges)))

    @staticmethod
    def parse(texts: Iterable[str]) -> IPSet:
        """The set of addresses, prefixes and ``a-b`` ranges in *texts* (raises ``ValueError``)."""
        return IPSet.of(parse_range(t) for t in texts)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def union(self, *others: IPSet) -> IPSet:
        """This set and *others* together."""
        return IPSet.of([r for s in (self, *others) for r in s.ranges])

    def minus(self, other: IPSet) -> IPSet:
        """This set without the addresses of *other*."""
        out: list[Range] = []
        cut = other.ranges
        j = 0
        for a, b in self.ranges:
            while j < len(cut) and cut[j][1] < a:
                j += 1
            k = j
            start = a
            while k < len(cut) and cut[k][0] <= b:
                ca, cb = cut[k]
                if ca > start:
                    out.append((start, ca - 1))
                start = max(start, cb + 1)
                k += 1
            if start <= b:
                out.append((start, b))
        return IPSet(tuple(out))

    def contains(self, n: int) -> bool:
        """Whether the address number *n* is in the set."""
        i = bisect.bisect_right(self.ranges, (n, V6_END + 1)) - 1
        return i >= 0 and self.ranges[i][0] <= n <= self.ranges[i][1]

    def overlaps(self, first: int, last: int) -> bool:
        """Whether any address of ``first..last`` is in the set."""
        i = bisect.bisect_right(self.ranges, (last, V6_END + 1)) - 1
        return i >= 0 and self.ranges[i][1] >= first

    def covers(self, first: int, last: int) -> bool:
        """Whether every address of ``first..last`` is in the set."""
        i = bisect.bisect_right(self.ranges, (first, V6_END + 1)) - 1
        return i >= 0 and self.ranges[i][0] <= first and self.ranges[i][1] >= last

    def subset_of(self, other: IPSet) -> bool:
        """Whether every address of this set is in *other*."""
        return all(other.covers(a, b) for a, b in self.ranges)

    def strings(self) -> list[str]:
        """The ranges as ``SrcIPs`` strings (address, prefix, or ``a-b``)."""
        return [range_text(a, b) for a, b in self.ranges]

    def prefixes(self) -> list[tuple[int, int]]:
        """The set as CIDR prefixes ``(network, length)``."""
        return [p for a, b in self.ranges for p in range_prefixes(a, b)]

    def prefix_strings(self) -> list[str]:
        """The set as prefixes, full-length ones as bare addresses (``DstPorts`` IPs)."""
        return [prefix_text(n, n_len) for n, n_len in self.prefixes()]

    def prefix_strings_full(self) -> list[str]:
        """The set as prefixes, full-length ones with ``/32`` or ``/128`` (``CapGrant`` Dsts)."""
        return [prefix_text_full(n, n_len) for n, n_len in self.prefixes()]


def src_ips_set(texts: Iterable[str]) -> IPSet:
    """The addresses ``SrcIPs`` strings stand for: ``*`` every address, else addresses, prefixes and
    ``a-b`` ranges (raises ``ValueError``). Single addresses, the bulk of a large rule, are read quickly."""
    ranges: list[Range] = []
    for text in texts:
        if text == "*":
            return EVERY_ADDRESS
        if "/" in text or "-" in text:
            ranges.append(parse_range(text))
        else:
            n = addr_int(text)
            ranges.append((n, n))
    return IPSet.of(ranges)


EMPTY = IPSet()
CGNAT = IPSet.parse(["100.64.0.0/10"])
TAILSCALE_ULA = IPSet.parse(["fd7a:115c:a1e0::/48"])
CHROMEOS_VM = IPSet.parse(["100.115.92.0/23"])
ALL_TAILNET = CGNAT.minus(CHROMEOS_VM).union(TAILSCALE_ULA)
"""What ``*`` means as a source: every Tailscale address (CGNAT without the ChromeOS VM range, the ULA)."""
ALL_V4 = IPSet.parse(["0.0.0.0/0"])
ALL_V6 = IPSet.parse(["::/0"])
EXIT_ROUTES = ALL_V4.union(ALL_V6)
EVERY_ADDRESS = ALL_V4.union(ALL_V6)
"""What ``*`` means in ``SrcIPs``: every IPv4 and IPv6 address."""
INTERNET = IPSet.parse(["0.0.0.0/0", "2000::/3"]).minus(
    IPSet.parse(
        [
            "fc00::/7",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fd7a:115c:a1e0::/48",
            "100.64.0.0/10",
            "fe80::/10",
            "169.254.0.0/16",
        ]
    )
)
"""``autogroup:internet``: public addresses (no private, link-local, CGNAT or Tailscale ranges)."""


def is_exit_route(text: str) -> bool:
    """``0.0.0.0/0`` or ``::/0``."""
    try:
        return prefix_range(text) in ((0, V4_END), (V6, V6_END))
    except ValueError:
        return False
