"""What tailcfg accepts in a DERP map: the region ID range and host names/addresses (no pydantic, no I/O)."""

from __future__ import annotations

import functools
import ipaddress
import re

MAX_REGION_ID = 2**53 - 1
"""Largest valid region ID (``DERPRegionID.IsValid``: a positive JavaScript-safe integer)."""

_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def is_valid_hostname(name: str) -> bool:
    """True when *name* is a DNS name (letters, digits, ``-``, ``_``; labels of 1..63) or an IP address."""
    if is_ip(name):
        return True
    if not name or len(name) > 253:
        return False
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    return all(_DNS_LABEL.match(label) for label in labels)


@functools.lru_cache(maxsize=4096)
def ip_literal(text: str) -> tuple[str, int]:
    """*text* (a valid IP literal) in canonical form, and its version; cached: plans ask once per probe."""
    ip = ipaddress.ip_address(text)
    return str(ip), ip.version


def is_ip(text: str) -> bool:
    """True when *text* is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
