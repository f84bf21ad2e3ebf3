"""Watching a Prometheus endpoint: scrape it (:mod:`.scrape`; a tailscaled's LocalAPI socket through
:mod:`.localapi`), parse and difference the samples (:mod:`.samples`), read a Tailscale client's metrics
(:mod:`.tailscale`), its peers' paths from its status (:mod:`.status`, :mod:`.peers`), and judge its home
DERP region against a geofence (:mod:`.geofence`); :mod:`.report` puts one interval together,
:mod:`.session` a run of them with their :mod:`.history`.

Typical use (the ``derptool watch`` command is a loop over this)::

    session = WatchSession(Target.from_spec(None))     # the local tailscaled
    time.sleep(2)
    report = session.step()
    for peer in report.peers or []:
        print(peer.name, peer.route.path, peer.route.region or peer.route.endpoint, peer.rx_bytes_per_s)
"""

from derptool.watch.geofence import Geofence, geofence_from_file, geofence_from_selectors
from derptool.watch.history import History
from derptool.watch.peers import PeerPath, PeerTracker, Route, find_peer, route_of
from derptool.watch.report import WatchReport, build_report
from derptool.watch.samples import SeriesChange, Snapshot, changes, parse_snapshot
from derptool.watch.scrape import Target, client_status, default_target, scrape
from derptool.watch.session import WatchSession
from derptool.watch.status import PeerState, StatusSnapshot, parse_status
from derptool.watch.tailscale import ClientTraffic, PathTraffic, client_traffic

__all__ = [
    "ClientTraffic",
    "Geofence",
    "History",
    "PathTraffic",
    "PeerPath",
    "PeerState",
    "PeerTracker",
    "Route",
    "SeriesChange",
    "Snapshot",
    "StatusSnapshot",
    "Target",
    "WatchReport",
    "WatchSession",
    "build_report",
    "changes",
    "client_status",
    "client_traffic",
    "default_target",
    "find_peer",
    "geofence_from_file",
    "geofence_from_selectors",
    "parse_snapshot",
    "parse_status",
    "route_of",
    "scrape",
]
