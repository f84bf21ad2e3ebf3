"""A Tailscale client's user metrics, read as traffic per path, drops, health and home DERP region.

The series (tailscale v1.102, ``wgengine/magicsock``, ``util/usermetric``, ``health``)::

    tailscaled_{inbound,outbound}_{bytes,packets}_total{path=derp|direct_ipv4|direct_ipv6|
                                                            peer_relay_ipv4|peer_relay_ipv6}   counters
    tailscaled_{inbound,outbound}_dropped_packets_total{reason=...}                           counters
    tailscaled_health_messages{type="warning"}                                                gauge
    tailscaled_home_derp_region_id                                                            gauge (0: none)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from derptool.derpmap import DERPMap
from derptool.derpmap.geography import geo_for
from derptool.errors import ProtocolError
from derptool.watch.samples import Snapshot, counter_rate

PREFIX = "tailscaled_"
PATHS = ("derp", "direct_ipv4", "direct_ipv6", "peer_relay_ipv4", "peer_relay_ipv6")
"""Paths a packet between peers takes, in the order the view shows them."""
PATH_NAMES = {
    "derp": "DERP relay",
    "direct_ipv4": "direct IPv4",
    "direct_ipv6": "direct IPv6",
    "peer_relay_ipv4": "peer relay IPv4",
    "peer_relay_ipv6": "peer relay IPv6",
}
HOME_REGION = "tailscaled_home_derp_region_id"
HEALTH = "tailscaled_health_messages"
_TRAFFIC = "tailscaled_{direction}_{unit}_total"
_DROPS = "tailscaled_{direction}_dropped_packets_total"


@dataclass(frozen=True)
class PathTraffic:
    """Traffic on one path: rates over the interval and totals since tailscaled started."""

    path: str
    in_bytes_per_s: float
    out_bytes_per_s: float
    in_packets_per_s: float
    out_packets_per_s: float
    in_bytes: float
    out_bytes: float
    in_packets: float
    out_packets: float

    @property
    def bytes_per_s(self) -> float:
        """Both directions' bytes per second."""
        return self.in_bytes_per_s + self.out_bytes_per_s

    @property
    def bytes_total(self) -> float:
        """Both directions' bytes since start."""
        return self.in_bytes + self.out_bytes


@dataclass(frozen=True)
class Drop:
    """Packets dropped in one direction for one reason."""

    direction: str
    reason: str
    total: float
    per_s: float


@dataclass(frozen=True)
class HomeRegion:
    """The client's home DERP region, named from a DERP map where it has the region."""

    id: int
    code: str | None = None
    name: str | None = None
    city: str | None = None
    country: str | None = None
    country_name: str | None = None

    @property
    def label(self) -> str:
        """``nyc (region 1): New York City, United States``, or ``region 900`` when the map lacks it."""
        if self.code is None:
            return f"region {self.id} (not in the DERP map)"
        place = ", ".join(p for p in (self.city or self.name, self.country_name) if p)
        return f"{self.code} (region {self.id})" + (f": {place}" if place else "")


@dataclass(frozen=True)
class ClientTraffic:
    """One interval of a Tailscale client's metrics."""

    paths: list[PathTraffic]
    derp_share: float | None
    """Share of the bytes moved in the interval (both directions) that went through DERP; None if none moved."""
    derp_share_total: float | None
    """The same share over every byte since tailscaled started."""
    drops: list[Drop] = field(default_factory=list)
    health: dict[str, float] = field(default_factory=dict)
    home: HomeRegion | None = None
    """``None`` when the client has no home region (the gauge is 0 or absent)."""

    def to_data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "home_region": None if self.home is None else {**asdict(self.home), "label": self.home.label},
            "derp_share": self.derp_share,
            "derp_share_total": self.derp_share_total,
            "paths": [asdict(p) for p in self.paths],
            "drops": [asdict(d) for d in self.drops],
            "health_messages": self.health,
        }


def is_tailscale_client(snap: Snapshot) -> bool:
    """True when *snap* holds a tailscaled's traffic metrics."""
    return any(name.startswith(PREFIX) and name.endswith("_bytes_total") for name, _ in snap.series)


def name_region(region_id: int, dmap: DERPMap | None) -> HomeRegion:
    """*region_id* with the code, name and geography *dmap* gives it."""
    region = None if dmap is None else dmap.regions.get(region_id)
    if region is None:
        return HomeRegion(region_id)
    geo = geo_for(region)
    return HomeRegion(region_id, region.region_code, region.region_name, geo.city, geo.country, geo.country_name)


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def home_region_id(value: float) -> int:
    """The home region gauge as a region ID: a whole number 1..2**31-1; :class:`ProtocolError` otherwise (a
    NaN, an infinity, a negative or fractional value is a broken exporter, not a region)."""
    if not math.isfinite(value) or value != int(value) or not 0 < value <= 2**31 - 1:
        raise ProtocolError(f"{HOME_REGION} is {value:g}, not a DERP region ID: the metrics are not tailscaled's")
    return int(value)


def _refuse_non_finite(snap: Snapshot) -> None:
    for (name, labels), sample in snap.series.items():
        if name.startswith(PREFIX) and not math.isfinite(sample.value):
            inner = ",".join(f'{k}="{v}"' for k, v in labels)
            raise ProtocolError(
                f"{name}{{{inner}}} is {sample.value}: tailscaled's counters and gauges are finite numbers"
            )


def client_traffic(before: Snapshot, after: Snapshot, dmap: DERPMap | None = None) -> ClientTraffic:
    """Read the interval from *before* to *after* (scrapes of one tailscaled) as :class:`ClientTraffic`.

    :class:`ProtocolError` when a ``tailscaled_`` sample is NaN or infinite, or the home region gauge is not a
    region ID: no traffic share or geofence verdict is computed from such numbers.
    """
    _refuse_non_finite(before)
    _refuse_non_finite(after)
    paths = []
    for path in PATHS:
        label = (("path", path),)
        values: dict[str, float] = {}
        for direction in ("inbound", "outbound"):
            for unit in ("bytes", "packets"):
                name = _TRAFFIC.format(direction=direction, unit=unit)
                key = ("in" if direction == "inbound" else "out") + f"_{unit}"
                values[key] = after.value(name, path=path) or 0.0
                values[f"{key}_per_s"] = counter_rate(before, after, name, label)
        paths.append(PathTraffic(path=path, **values))
    moved = sum(p.bytes_per_s for p in paths)
    total = sum(p.bytes_total for p in paths)
    derp = next(p for p in paths if p.path == "derp")
    drops = []
    for direction in ("inbound", "outbound"):
        name = _DROPS.format(direction=direction)
        for labels, value in sorted(after.with_name(name).items()):
            reason = dict(labels).get("reason", "")
            drops.append(Drop(direction, reason, value, counter_rate(before, after, name, labels)))
    health = {dict(labels).get("type", ""): value for labels, value in sorted(after.with_name(HEALTH).items())}
    home_id = after.value(HOME_REGION)
    home = name_region(home_region_id(home_id), dmap) if home_id else None
    return ClientTraffic(paths, _share(derp.bytes_per_s, moved), _share(derp.bytes_total, total), drops, health, home)
