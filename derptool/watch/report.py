"""One watched interval: the series that changed, a Tailscale client's traffic and peers, and the geofence
verdict."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from derptool.derpmap import DERPMap
from derptool.watch.geofence import Geofence
from derptool.watch.peers import PeerPath
from derptool.watch.samples import SeriesChange, Snapshot, changes
from derptool.watch.scrape import Target
from derptool.watch.tailscale import ClientTraffic, client_traffic, is_tailscale_client


@dataclass(frozen=True)
class WatchReport:
    """What changed between two scrapes of one target."""

    target: str
    interval_s: float
    changes: list[SeriesChange]
    client: ClientTraffic | None
    """Set when the target is a Tailscale client."""
    geofence: Geofence | None = None
    peers: list[PeerPath] | None = None
    """Set when the target is a LocalAPI socket (its status says how each peer is reached), sorted relayed
    first."""

    @property
    def home_omitted(self) -> bool | None:
        """True when the client's home region is one the geofence removes; None when not judged."""
        if self.geofence is None or self.client is None:
            return None
        return self.client.home is not None and self.geofence.removes(self.client.home.id)

    def to_data(self) -> dict[str, Any]:
        """JSON-ready form (``derptool watch --once --format json``)."""
        data: dict[str, Any] = {
            "target": self.target,
            "interval_s": round(self.interval_s, 3),
            "kind": "tailscale" if self.client is not None else "prometheus",
        }
        if self.client is not None:
            data["tailscale"] = self.client.to_data()
        if self.geofence is not None:
            data["geofence"] = {
                "source": self.geofence.source,
                "omitted": sorted(self.geofence.omitted),
                "allowed": None if self.geofence.allowed is None else sorted(self.geofence.allowed),
                "home_omitted": self.home_omitted,
            }
        if self.peers is not None:
            data["peers"] = [p.to_data() for p in self.peers]
        data["changes"] = [c.to_data() for c in self.changes]
        return data


def build_report(
    target: Target,
    before: Snapshot,
    after: Snapshot,
    *,
    dmap: DERPMap | None = None,
    match: re.Pattern[str] | None = None,
    exclude: re.Pattern[str] | None = None,
    geofence: Geofence | None = None,
    peers: list[PeerPath] | None = None,
) -> WatchReport:
    """Put the interval *before* to *after* together (*dmap* names a client's home region; *match* and
    *exclude* filter the series as :func:`changes` does; *peers* come from the client's status)."""
    client = client_traffic(before, after, dmap) if is_tailscale_client(after) else None
    moved = changes(before, after, match=match, exclude=exclude)
    return WatchReport(target.description, after.taken - before.taken, moved, client, geofence, peers)
