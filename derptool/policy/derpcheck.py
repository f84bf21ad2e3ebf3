"""Checks of a policy file's ``derpMap`` section (canonical data: tailcfg names, integer region keys).

Decisions (documented in the README of ``examples/policies``):

* a non-null region outside 900-999 is a *warning*: Tailscale reserves 900-999 for custom regions, and an
  ID of its own replaces (or later collides with) one of Tailscale's regions;
* ``null`` regions next to ``OmitDefaultRegions: true`` are a warning (they are redundant, and once crashed
  clients: tailscale/tailscale#3896); so is a map that leaves clients without any region;
* private or otherwise non-public node addresses are a warning (the docs require public addresses);
* ``HomeParams.RegionScore``: a key that is not a region ID, or a score that is not a number, is an error; a
  score of 0 or less (Tailscale ignores it), one for a region clients will not have, or one for a
  ``NoMeasureNoHome`` region (never home) is a warning: each has no effect.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from derptool._bundled import data_bytes
from derptool._types import JsonPath
from derptool.derpmap import CUSTOM_REGION_IDS, MAX_REGION_ID, is_valid_hostname
from derptool.derpmap.overlay import named, overlay_entries
from derptool.policy.problems import Finding


@functools.cache
def default_region_ids() -> frozenset[int]:
    """Region IDs of the bundled DERP map snapshot."""
    text = data_bytes("derpmap-snapshot.json")
    return frozenset(int(k) for k in json.loads(text).get("Regions", {}))


def check_derp_map(dmap: Mapping[str, Any], path: JsonPath) -> list[Finding]:
    """All findings for one ``derpMap`` value at *path*."""
    out: list[Finding] = []

    def error(p: JsonPath, msg: str) -> None:
        out.append(Finding(p, msg))

    def warning(p: JsonPath, msg: str) -> None:
        out.append(Finding(p, msg, "warning"))

    entries = overlay_entries(dmap)
    regions, omit, nulls = entries.regions, entries.omit_default, entries.removed
    live = {rid: r for rid, r in entries.defined.items() if isinstance(r, Mapping)}
    names: dict[str, int] = {}
    codes: dict[str, int] = {}
    for rid, region in regions.items():
        rpath = (*path, "Regions", rid)
        if not isinstance(rid, int) or not 0 < rid <= MAX_REGION_ID:
            out.append(Finding(rpath, f"region ID {rid} is not valid: region IDs are 1..2^53-1", at_key=True))
            continue
        if not isinstance(region, Mapping):
            continue
        out.extend(_check_region(rid, region, rpath))
        code = region.get("RegionCode")
        if isinstance(code, str) and code:
            if code.lower() in codes:
                warning((*rpath, "RegionCode"), f"region code {code!r} is also used by region {codes[code.lower()]}")
            else:
                codes[code.lower()] = rid
        nodes = region.get("Nodes")
        for i, node in enumerate(nodes if isinstance(nodes, list) else []):
            name = node.get("Name") if isinstance(node, Mapping) else None
            if isinstance(name, str) and name:
                if name in names:
                    error((*rpath, "Nodes", i, "Name"), f"node name {name!r} is also used in region {names[name]}")
                else:
                    names[name] = rid
    if omit and nulls:
        warning(
            (*path, "omitDefaultRegions"),
            f"OmitDefaultRegions already removes every default region: the null region"
            f"{'s' if len(nulls) > 1 else ''} {', '.join(map(str, sorted(nulls)))} "
            f"{'are' if len(nulls) > 1 else 'is'} redundant",
        )
    out.extend(_check_home_params(dmap, path, live, set(nulls), omit))
    if not live and (omit or (nulls and default_region_ids() <= set(nulls))):
        where: JsonPath = (*path, "omitDefaultRegions") if omit else (*path, "Regions")
        warning(
            where,
            "every DERP region is removed and no custom region is defined: clients would have no DERP relay at all",
        )
    return out


def _check_home_params(
    dmap: Mapping[str, Any], path: JsonPath, live: Mapping[Any, Any], nulls: set[Any], omit: bool
) -> list[Finding]:
    """Findings for ``HomeParams.RegionScore`` (keys may be strings, as in a file, or integers)."""
    home = named(dmap, "HomeParams")
    if home is None or not isinstance(home[1], Mapping):
        return []
    scores = named(home[1], "RegionScore")
    if scores is None or not isinstance(scores[1], Mapping):
        return []
    spath: JsonPath = (*path, home[0], scores[0])
    out: list[Finding] = []
    defaults = set() if omit else default_region_ids() - {int(k) for k in nulls if str(k).isdigit()}
    live_ids = {int(k): r for k, r in live.items() if str(k).isdigit()}
    for key, score in scores[1].items():
        where: JsonPath = (*spath, key)
        if not str(key).isdigit() or int(key) <= 0:
            out.append(Finding(where, f"RegionScore key {key!r} is not a region ID", at_key=True))
            continue
        rid = int(key)
        if isinstance(score, bool) or not isinstance(score, int | float):
            out.append(Finding(where, f"the RegionScore of region {rid} must be a number, such as 0.1"))
            continue
        if score <= 0:
            out.append(
                Finding(
                    where,
                    f"RegionScore {score:g} for region {rid} is ignored by Tailscale (scores must be "
                    "above 0; below 1 prefers the region, above 1 penalizes it)",
                    "warning",
                )
            )
        elif rid not in live_ids and rid not in defaults:
            gone = "is removed by this derpMap" if rid in default_region_ids() else "is not in the DERP map"
            out.append(Finding(where, f"RegionScore for region {rid} has no effect: the region {gone}", "warning"))
        else:
            region = live_ids.get(rid)
            never = named(region, "NoMeasureNoHome") if isinstance(region, Mapping) else None
            if never is not None and never[1] is True:
                out.append(
                    Finding(
                        where,
                        f"RegionScore for region {rid} has no effect: NoMeasureNoHome regions are never home",
                        "warning",
                    )
                )
    return out


def _check_region(rid: int, region: Mapping[str, Any], rpath: JsonPath) -> list[Finding]:
    out: list[Finding] = []
    region_id = region.get("RegionID")
    if region_id is None:
        out.append(Finding(rpath, f"RegionID is required (set it to {rid})"))
    elif isinstance(region_id, int) and region_id != rid:
        out.append(Finding((*rpath, "RegionID"), f"RegionID {region_id} must equal its key {rid}"))
    if rid not in CUSTOM_REGION_IDS:
        taken = "replaces Tailscale's region" if rid in default_region_ids() else "may collide with a Tailscale region"
        out.append(
            Finding(
                rpath,
                f"region {rid} is outside 900-999, the IDs Tailscale reserves for custom regions: it {taken} {rid}",
                "warning",
            )
        )
    code = region.get("RegionCode")
    if not code:
        out.append(Finding((*rpath, "RegionCode") if "RegionCode" in region else rpath, "RegionCode must not be empty"))
    if "RegionName" not in region:
        out.append(Finding(rpath, "RegionName is required"))
    for key, limit in (("Latitude", 90.0), ("Longitude", 180.0)):
        value = region.get(key)
        if isinstance(value, float) and not -limit <= value <= limit:
            out.append(Finding((*rpath, key), f"{key} {value:g} is out of range (-{limit:g}..{limit:g})"))
    if region.get("Avoid") is True:
        out.append(Finding((*rpath, "Avoid"), "Avoid is deprecated: use NoMeasureNoHome", "warning"))
    nodes = region.get("Nodes")
    if not nodes:
        out.append(Finding(rpath, f"region {rid} has no nodes", "warning"))
    for i, node in enumerate(nodes if isinstance(nodes, list) else []):
        if isinstance(node, Mapping):
            out.extend(_check_node(rid, node, (*rpath, "Nodes", i)))
    return out


def _check_node(rid: int, node: Mapping[str, Any], npath: JsonPath) -> list[Finding]:
    out: list[Finding] = []
    if not node.get("Name"):
        out.append(Finding((*npath, "Name") if "Name" in node else npath, "Name must not be empty"))
    node_region = node.get("RegionID")
    if node_region is None:
        out.append(Finding(npath, f"RegionID is required (set it to {rid})"))
    elif isinstance(node_region, int) and node_region != rid:
        out.append(Finding((*npath, "RegionID"), f"RegionID {node_region} must equal the region's ID {rid}"))
    host = node.get("HostName")
    if not host:
        out.append(Finding((*npath, "HostName") if "HostName" in node else npath, "HostName must not be empty"))
    elif isinstance(host, str) and not is_valid_hostname(host):
        out.append(Finding((*npath, "HostName"), f"HostName {host!r} is not a valid DNS name or IP address"))
    for key, cls in (("IPv4", ipaddress.IPv4Address), ("IPv6", ipaddress.IPv6Address)):
        value = node.get(key)
        if not isinstance(value, str) or value in ("", "none"):
            continue
        try:
            addr = cls(value)
        except ValueError:
            out.append(Finding((*npath, key), f'{key} {value!r} is not an {key} address (or "none")'))
            continue
        if not addr.is_global:
            out.append(
                Finding(
                    (*npath, key),
                    f"{key} {value} is not a public address: clients outside your network cannot reach it",
                    "warning",
                )
            )
    stun = node.get("STUNPort")
    if isinstance(stun, int) and not -1 <= stun <= 65535:
        out.append(
            Finding((*npath, "STUNPort"), f"STUNPort {stun} is out of range (0..65535, 0 means 3478, -1 disables STUN)")
        )
    derp = node.get("DERPPort")
    if isinstance(derp, int) and not 0 <= derp <= 65535:
        out.append(Finding((*npath, "DERPPort"), f"DERPPort {derp} is out of range (0..65535, 0 means 443)"))
    if node.get("InsecureForTests") is True:
        out.append(
            Finding((*npath, "InsecureForTests"), "InsecureForTests disables TLS verification: tests only", "warning")
        )
    if node.get("STUNTestIP"):
        out.append(Finding((*npath, "STUNTestIP"), "STUNTestIP is for tests only", "warning"))
    return out
