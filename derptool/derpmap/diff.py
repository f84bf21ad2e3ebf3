"""Comparing two DERP maps: regions and nodes added or removed, addresses, ports and flags changed.

Regions are matched by ID, nodes by ``Name`` within their region. Ports compare by their effective value
(``STUNPort`` 0 and 3478 are the same port), so a diff shows only what a client would see differently.
Use: "did the public map change since I wrote my firewall allow-list?". Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from derptool.derpmap import DERPMap, DERPNode, DERPRegion

_REGION_FIELDS = ("RegionCode", "RegionName", "Latitude", "Longitude", "Avoid", "NoMeasureNoHome")
_NODE_FIELDS = (
    "HostName",
    "IPv4",
    "IPv6",
    "STUNPort",
    "DERPPort",
    "STUNOnly",
    "CertName",
    "CanPort80",
    "InsecureForTests",
    "STUNTestIP",
)


@dataclass(frozen=True)
class FieldChange:
    """One field whose value differs (``old``/``new`` as tailcfg JSON values; ports effective)."""

    field: str
    old: Any
    new: Any

    def to_data(self) -> dict[str, Any]:
        """``{"field", "old", "new"}``."""
        return {"field": self.field, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class NodeChange:
    """A node present in both maps whose fields differ."""

    name: str
    changes: list[FieldChange]

    def to_data(self) -> dict[str, Any]:
        """``{"name", "changes": [...]}``."""
        return {"name": self.name, "changes": [c.to_data() for c in self.changes]}


@dataclass(frozen=True)
class RegionChange:
    """A region present in both maps that differs in its own fields or its nodes."""

    region_id: int
    code: str
    changes: list[FieldChange] = field(default_factory=list)
    nodes_added: list[DERPNode] = field(default_factory=list)
    nodes_removed: list[DERPNode] = field(default_factory=list)
    nodes_changed: list[NodeChange] = field(default_factory=list)

    def to_data(self) -> dict[str, Any]:
        """The change as JSON-ready data."""
        return {
            "id": self.region_id,
            "code": self.code,
            "changes": [c.to_data() for c in self.changes],
            "nodes_added": [n.to_data() for n in self.nodes_added],
            "nodes_removed": [n.to_data() for n in self.nodes_removed],
            "nodes_changed": [n.to_data() for n in self.nodes_changed],
        }


@dataclass(frozen=True)
class MapDiff:
    """Everything that differs between an old and a new map."""

    regions_added: list[DERPRegion] = field(default_factory=list)
    regions_removed: list[DERPRegion] = field(default_factory=list)
    regions_changed: list[RegionChange] = field(default_factory=list)
    map_changes: list[FieldChange] = field(default_factory=list)

    @property
    def same(self) -> bool:
        """True when the maps are equivalent."""
        return not (self.regions_added or self.regions_removed or self.regions_changed or self.map_changes)

    def to_data(self) -> dict[str, Any]:
        """The diff as JSON-ready data (regions in full where added or removed)."""
        return {
            "same": self.same,
            "regions_added": [r.to_data() for r in self.regions_added],
            "regions_removed": [r.to_data() for r in self.regions_removed],
            "regions_changed": [r.to_data() for r in self.regions_changed],
            "map_changes": [c.to_data() for c in self.map_changes],
        }

    def rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """Table rows ``(change, region, node, field, old, new)``, in region order."""
        out: list[tuple[str, str, str, str, str, str]] = []
        for c in self.map_changes:
            out.append(("map changed", "", "", c.field, _show(c.old), _show(c.new)))
        events: list[tuple[int, int, list[tuple[str, str, str, str, str, str]]]] = []
        for r in self.regions_removed:
            rows = [("region removed", _label(r), "", "", r.region_name, "")]
            rows += [("node removed", _label(r), n.name, "", _node_text(n), "") for n in r.nodes]
            events.append((r.region_id, 0, rows))
        for r in self.regions_added:
            rows = [("region added", _label(r), "", "", "", r.region_name)]
            rows += [("node added", _label(r), n.name, "", "", _node_text(n)) for n in r.nodes]
            events.append((r.region_id, 1, rows))
        for rc in self.regions_changed:
            label = f"{rc.region_id} {rc.code}"
            rows = [("region changed", label, "", c.field, _show(c.old), _show(c.new)) for c in rc.changes]
            rows += [("node removed", label, n.name, "", _node_text(n), "") for n in rc.nodes_removed]
            rows += [("node added", label, n.name, "", "", _node_text(n)) for n in rc.nodes_added]
            for nc in rc.nodes_changed:
                rows += [("node changed", label, nc.name, c.field, _show(c.old), _show(c.new)) for c in nc.changes]
            events.append((rc.region_id, 2, rows))
        for _, _, rows in sorted(events, key=lambda e: (e[0], e[1])):
            out.extend(rows)
        return out


def _label(r: DERPRegion) -> str:
    return f"{r.region_id} {r.region_code}"


def _node_text(n: DERPNode) -> str:
    addrs = [a for a in (n.ipv4, n.ipv6) if a and a != "none"]
    return n.host_name + (f" ({', '.join(addrs)})" if addrs else "")


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return '""'
    return str(value)


def _node_values(n: DERPNode) -> dict[str, Any]:
    return {
        "HostName": n.host_name,
        "IPv4": n.ipv4,
        "IPv6": n.ipv6,
        "STUNPort": n.effective_stun_port,
        "DERPPort": n.effective_derp_port,
        "STUNOnly": n.stun_only,
        "CertName": n.cert_name,
        "CanPort80": n.can_port80,
        "InsecureForTests": n.insecure_for_tests,
        "STUNTestIP": n.stun_test_ip,
    }


def _region_values(r: DERPRegion) -> dict[str, Any]:
    return {
        "RegionCode": r.region_code,
        "RegionName": r.region_name,
        "Latitude": r.latitude,
        "Longitude": r.longitude,
        "Avoid": r.avoid,
        "NoMeasureNoHome": r.no_measure_no_home,
    }


def _changes(old: dict[str, Any], new: dict[str, Any], names: tuple[str, ...]) -> list[FieldChange]:
    return [FieldChange(k, old[k], new[k]) for k in names if old[k] != new[k]]


def diff_regions(old: DERPRegion, new: DERPRegion) -> RegionChange | None:
    """How *new* differs from *old* (same region ID), or ``None`` when they are equivalent."""
    old_nodes = {n.name: n for n in old.nodes}
    new_nodes = {n.name: n for n in new.nodes}
    changed = []
    for name, n in new_nodes.items():
        if name in old_nodes:
            fields = _changes(_node_values(old_nodes[name]), _node_values(n), _NODE_FIELDS)
            if fields:
                changed.append(NodeChange(name, fields))
    rc = RegionChange(
        new.region_id,
        new.region_code,
        changes=_changes(_region_values(old), _region_values(new), _REGION_FIELDS),
        nodes_added=[n for name, n in new_nodes.items() if name not in old_nodes],
        nodes_removed=[n for name, n in old_nodes.items() if name not in new_nodes],
        nodes_changed=changed,
    )
    if rc.changes or rc.nodes_added or rc.nodes_removed or rc.nodes_changed:
        return rc
    return None


def diff_maps(old: DERPMap, new: DERPMap) -> MapDiff:
    """Compare two maps (``None`` regions count as absent)."""
    old_r = {r.region_id: r for r in old.region_list()}
    new_r = {r.region_id: r for r in new.region_list()}
    changed = []
    for rid in sorted(old_r.keys() & new_r.keys()):
        rc = diff_regions(old_r[rid], new_r[rid])
        if rc is not None:
            changed.append(rc)
    map_changes = []
    old_home = old.home_params.to_data() if old.home_params else {}
    new_home = new.home_params.to_data() if new.home_params else {}
    if old_home != new_home:
        map_changes.append(FieldChange("HomeParams", old_home or None, new_home or None))
    if old.omit_default_regions != new.omit_default_regions:
        map_changes.append(FieldChange("omitDefaultRegions", old.omit_default_regions, new.omit_default_regions))
    return MapDiff(
        regions_added=[new_r[k] for k in sorted(new_r.keys() - old_r.keys())],
        regions_removed=[old_r[k] for k in sorted(old_r.keys() - new_r.keys())],
        regions_changed=changed,
        map_changes=map_changes,
    )
