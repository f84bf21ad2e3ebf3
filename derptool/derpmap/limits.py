"""What tailcfg accepts in a DERP map: the region ID range and host names/addresses (no pydantic, no I/O)."""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from typing import Any

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


def coordinate_problem(name: str, value: Any, limit: float) -> str | None:
    """Why *value* is no usable ``Latitude``/``Longitude`` (*name*, range -limit..limit); ``None`` if it is.

    Tailscale shows coordinates only, so a bad one does not make the map invalid: the region cannot be placed
    by them, and the geography says why.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        shown = "null" if value is None else "a string" if isinstance(value, str) else type(value).__name__
        if isinstance(value, bool):
            shown = "a boolean"
        elif isinstance(value, list | tuple):
            shown = "an array"
        elif isinstance(value, dict):
            shown = "an object"
        return f"{name} is {shown}, not a number"
    try:
        number = float(value)
    except OverflowError:  # an integer past float range
        return f"{name} is out of range (-{limit:g}..{limit:g})"
    if not math.isfinite(number):
        return f"{name} {number} is not a finite number"
    if not -limit <= number <= limit:
        return f"{name} {number:g} is out of range (-{limit:g}..{limit:g})"
    return None
