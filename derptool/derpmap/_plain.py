"""The fast reading of an untrusted DERP map that is already in tailcfg's exact shape, without pydantic.

Most maps a user gives (the live map, a saved copy, ``derptool map --format json``) use tailcfg's exact key
names and JSON types. :func:`read_plain` reads such a map straight into the dataclasses, with the same checks
as the pydantic mirrors of :mod:`derptool.derpmap._validation`; on anything else (a key in another letter
case, a wrong type, a value a check rejects, coordinates that need a note) it returns ``None`` and the caller
validates with pydantic, which names the problem. So this path accepts a subset of what pydantic accepts and
builds the same value (a test keeps both readings equal); it never raises and never explains.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from typing import Any

from derptool.derpmap.limits import MAX_REGION_ID, is_ip, is_valid_hostname
from derptool.derpmap.model import DERPHomeParams, DERPMap, DERPNode, DERPRegion


class _NotPlain(Exception):
    """The data is not in the plain shape: let pydantic read it."""


_MAP_KEYS = {"Regions", "HomeParams", "omitDefaultRegions"}
_REGION_KEYS = {"RegionID", "RegionCode", "RegionName", "Latitude", "Longitude", "Avoid", "NoMeasureNoHome", "Nodes"}
_NODE_STR = {"Name", "HostName", "CertName", "IPv4", "IPv6", "STUNTestIP"}
_NODE_INT = {"RegionID", "STUNPort", "DERPPort"}
_NODE_BOOL = {"STUNOnly", "InsecureForTests", "CanPort80"}
_NODE_NAMES = {alias: name for name, alias in DERPNode.ALIASES.items()}
_REGION_NAMES = {alias: name for name, alias in DERPRegion.ALIASES.items()}


def read_plain(data: Mapping[str, Any]) -> DERPMap | None:
    """*data* as a :class:`DERPMap` when it is in tailcfg's exact shape and valid, else ``None``."""
    try:
        return _map(data)
    except (_NotPlain, ValueError, TypeError, OverflowError):
        return None


def _fields(data: Any, known: set[str]) -> dict[str, Any]:
    """The known keys of *data* (an object); any key that is a known one in another letter case is not plain."""
    if not isinstance(data, dict):
        raise _NotPlain
    lowered = {k.lower() for k in known}
    out = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise _NotPlain
        if key in known:
            out[key] = value
        elif key.lower() in lowered or key == "coordinates_problem":
            raise _NotPlain
    return out


def _int(value: Any, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _NotPlain
    return value


def _str(value: Any) -> str:
    if type(value) is not str:
        raise _NotPlain
    return value


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise _NotPlain
    return value


def _region_key(key: str) -> int:
    if not (key.isascii() and key.isdigit() and (key == "0" or not key.startswith("0"))):
        raise _NotPlain
    return _int(int(key), 1, MAX_REGION_ID)


def _map(data: Mapping[str, Any]) -> DERPMap:
    fields = _fields(data, _MAP_KEYS)
    regions: dict[int, DERPRegion | None] = {}
    raw_regions = fields.get("Regions")
    if raw_regions is not None:
        if not isinstance(raw_regions, dict):
            raise _NotPlain
        for key, raw in raw_regions.items():
            rid = _region_key(_str(key))
            regions[rid] = None if raw is None else _region(raw, rid)
    home = fields.get("HomeParams")
    return DERPMap(None if home is None else _home(home), regions, _bool(fields.get("omitDefaultRegions", False)))


def _home(data: Any) -> DERPHomeParams:
    fields = _fields(data, {"RegionScore"})
    scores: dict[int, float] = {}
    raw = fields.get("RegionScore", {})
    if not isinstance(raw, dict):
        raise _NotPlain
    for key, value in raw.items():
        if type(value) not in (int, float) or not math.isfinite(value):
            raise _NotPlain
        scores[_region_key(_str(key))] = float(value)
    return DERPHomeParams(scores)


def _region(data: Any, rid: int) -> DERPRegion:
    fields = _fields(data, _REGION_KEYS)
    if _int(fields.get("RegionID"), 1, MAX_REGION_ID) != rid:
        raise _NotPlain
    if not _str(fields.get("RegionCode")):
        raise _NotPlain
    _str(fields.get("RegionName"))
    for alias, limit in (("Latitude", 90.0), ("Longitude", 180.0)):
        if alias in fields:
            value = fields[alias]
            if type(value) not in (int, float) or not -limit <= value <= limit or not math.isfinite(value):
                raise _NotPlain  # pydantic's reading notes why the region cannot be placed
            fields[alias] = float(value)
    for alias in ("Avoid", "NoMeasureNoHome"):
        if alias in fields:
            _bool(fields[alias])
    raw_nodes = fields.pop("Nodes", None)
    if raw_nodes is None:
        raw_nodes = []
    if not isinstance(raw_nodes, list):
        raise _NotPlain
    nodes = [_node(n, rid) for n in raw_nodes]
    return DERPRegion(**{_REGION_NAMES[k]: v for k, v in fields.items()}, nodes=nodes)


def _node(data: Any, rid: int) -> DERPNode:
    fields = _fields(data, _NODE_STR | _NODE_INT | _NODE_BOOL)
    for alias in _NODE_STR & fields.keys():
        _str(fields[alias])
    for alias in _NODE_BOOL & fields.keys():
        _bool(fields[alias])
    if type(fields.get("RegionID")) is not int or fields["RegionID"] != rid:
        raise _NotPlain
    _int(fields.get("STUNPort", 0), -1, 65535)
    _int(fields.get("DERPPort", 0), 0, 65535)
    if not _str(fields.get("Name")):
        raise _NotPlain
    host = _str(fields.get("HostName"))
    if not host or not is_valid_hostname(host):
        raise _NotPlain
    for alias, kind in (("IPv4", ipaddress.IPv4Address), ("IPv6", ipaddress.IPv6Address)):
        value = fields.get(alias, "")
        if value not in ("", "none"):
            kind(value)  # ValueError: not plain
    test_ip = fields.get("STUNTestIP", "")
    if test_ip and not is_ip(test_ip):
        raise _NotPlain
    return DERPNode(**{_NODE_NAMES[k]: v for k, v in fields.items()})
