"""DERP maps built by the tests (tailcfg JSON as plain dicts) with loopback addresses, and report lookups."""

from __future__ import annotations

from typing import Any

from derptool.net.netcheck import Report
from tests.support.stun_responder import Endpoint


def stun_node(name: str, rid: int, ep: Endpoint | None = None, **kw: Any) -> dict[str, Any]:
    """A node answering STUN at *ep* (IPv6 off unless given); DERP on a closed port unless given."""
    node: dict[str, Any] = {"Name": name, "RegionID": rid, "IPv6": "none", "DERPPort": 9}
    if ep is not None:
        node.update(HostName=ep.host, STUNPort=ep.port)
        if ":" in ep.host:
            node.update(IPv4="none", IPv6=ep.host)
        else:
            node.update(IPv4=ep.host)
    node.update(kw)
    return node


def region(rid: int, nodes: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    """A region ``r<rid>`` holding *nodes*."""
    return {"RegionID": rid, "RegionCode": f"r{rid}", "RegionName": f"Region {rid}", "Nodes": nodes, **kw}


def derp_map(*regions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A map of *regions*, keyed by their IDs."""
    return {"Regions": {str(r["RegionID"]): r for r in regions}, **extra}


def by_id(report: Report) -> dict[int, Any]:
    """A report's regions by region ID."""
    return {r.id: r for r in report.regions}
