"""A watch session: scrape a target again and again, and turn each interval into a :class:`WatchReport`
(with the peers of a LocalAPI target) while keeping the session's :class:`History`.

    session = WatchSession(Target(socket="/var/run/tailscale/tailscaled.sock"))
    time.sleep(2)
    report = session.step()       # the interval since the previous step (or since the session began)
"""

from __future__ import annotations

import re
import time

from derptool.derpmap import DERPMap
from derptool.errors import UsageError
from derptool.watch.geofence import Geofence
from derptool.watch.history import History
from derptool.watch.peers import PeerTracker, find_peer
from derptool.watch.report import WatchReport, build_report
from derptool.watch.scrape import TIMEOUT, Target, client_status, scrape


class WatchSession:
    """Scrapes of one target, one interval at a time (the first scrape happens on creation).

    *peer* follows one peer of a LocalAPI target (its name, MagicDNS name, host name or Tailscale IP):
    reports then carry only that peer. :class:`UsageError` when the target has no such peer, or is not a
    LocalAPI socket.
    """

    def __init__(
        self,
        target: Target,
        *,
        dmap: DERPMap | None = None,
        match: re.Pattern[str] | None = None,
        exclude: re.Pattern[str] | None = None,
        geofence: Geofence | None = None,
        peer: str | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        if peer is not None and not target.socket:
            raise UsageError("--peer needs a tailscaled LocalAPI target (--socket PATH): a URL has no peer status")
        self.target, self.dmap, self.match, self.exclude = target, dmap, match, exclude
        self.geofence, self.timeout = geofence, timeout
        self.history = History()
        self.previous = scrape(target, timeout=timeout)
        status = client_status(target, timeout=timeout)
        self.tracker = None if status is None else PeerTracker(status)
        self.followed = None if peer is None or status is None else find_peer(status, peer)
        """The key of the peer *peer* names."""

    def due_in(self, interval: float) -> float:
        """Seconds until *interval* has passed since the previous scrape (0 when it has)."""
        return max(0.0, interval - (time.monotonic() - self.previous.taken))

    def step(self) -> WatchReport:
        """Scrape now: the report of the interval since the previous scrape, added to the history."""
        current = scrape(self.target, timeout=self.timeout)
        peers = None
        if self.tracker is not None:
            status = client_status(self.target, timeout=self.timeout)
            if status is not None:
                peers = self.tracker.update(status)
                if self.followed is not None:
                    peers = [p for p in peers if p.key == self.followed]
        report = build_report(
            self.target,
            self.previous,
            current,
            dmap=self.dmap,
            match=self.match,
            exclude=self.exclude,
            geofence=self.geofence,
            peers=peers,
        )
        self.previous = current
        self.history.add(report, current.taken)
        return report
