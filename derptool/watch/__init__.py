"""Watching a Prometheus endpoint: scrape it (:mod:`.scrape`), parse and difference the samples
(:mod:`.samples`), read a Tailscale client's metrics (:mod:`.tailscale`) and judge its home DERP region
against a geofence (:mod:`.geofence`); :mod:`.report` puts one interval together.

Typical use (the ``derptool watch`` command is a loop over this)::

    target = Target.from_spec(None)            # the local tailscaled
    first = scrape(target)
    time.sleep(2)
    report = build_report(target, first, scrape(target))
"""

from derptool.watch.geofence import Geofence, geofence_from_file, geofence_from_selectors
from derptool.watch.report import WatchReport, build_report
from derptool.watch.samples import SeriesChange, Snapshot, changes, parse_snapshot
from derptool.watch.scrape import Target, default_target, scrape
from derptool.watch.tailscale import ClientTraffic, PathTraffic, client_traffic

__all__ = [
    "ClientTraffic",
    "Geofence",
    "PathTraffic",
    "SeriesChange",
    "Snapshot",
    "Target",
    "WatchReport",
    "build_report",
    "changes",
    "client_traffic",
    "default_target",
    "geofence_from_file",
    "geofence_from_selectors",
    "parse_snapshot",
    "scrape",
]
