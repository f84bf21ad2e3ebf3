"""What a watch session has seen so far: the DERP share and rates of each interval, newest last, for the
live view's sparklines; and each peer's route changes.

Every series is a bounded deque (``size`` intervals), and at most ``max_series`` metric series and
``max_peers`` peers are followed, so a long session on a busy endpoint keeps a fixed amount of memory.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from derptool.watch.peers import PeerPath, Route
from derptool.watch.report import WatchReport

SIZE = 120
"""Intervals kept (four minutes at the default two seconds)."""
MAX_SERIES = 500
MAX_PEERS = 1000


def _ring(size: int) -> deque[float | None]:
    return deque(maxlen=size)


@dataclass
class PeerHistory:
    """One peer's rates per interval and the routes it moved through (with the session time of each move)."""

    rx: deque[float | None]
    tx: deque[float | None]
    routes: deque[tuple[float, Route]]


@dataclass
class History:
    """The session so far (see the module docstring); :meth:`add` each report in order."""

    size: int = SIZE
    started: float | None = None
    """Monotonic time of the session's first report."""
    elapsed_s: float = 0.0
    derp_share: deque[float | None] = field(default_factory=deque)
    rx: deque[float | None] = field(default_factory=deque)
    """A Tailscale client's bytes per second in, over every path."""
    tx: deque[float | None] = field(default_factory=deque)
    series: dict[str, deque[float | None]] = field(default_factory=dict)
    """Per-second change of each metric series the view shows, by ``name{labels}``."""
    peers: dict[str, PeerHistory] = field(default_factory=dict)
    """By peer key."""

    def __post_init__(self) -> None:
        self.derp_share, self.rx, self.tx = _ring(self.size), _ring(self.size), _ring(self.size)

    def add(self, report: WatchReport, now: float) -> None:
        """Record one interval, which ended at monotonic time *now*."""
        if self.started is None:
            self.started = now - report.interval_s
        self.elapsed_s = now - self.started
        client = report.client
        self.derp_share.append(None if client is None else client.derp_share)
        self.rx.append(None if client is None else sum(p.in_bytes_per_s for p in client.paths))
        self.tx.append(None if client is None else sum(p.out_bytes_per_s for p in client.paths))
        self._add_series({c.selector: c.per_s for c in report.changes})
        if report.peers is not None:
            self._add_peers(report.peers)

    def _add_series(self, rates: dict[str, float]) -> None:
        for selector in rates:
            if selector not in self.series and len(self.series) < MAX_SERIES:
                ring = _ring(self.size)
                ring.extend([None] * (len(self.derp_share) - 1))  # not seen before: a gap, not zero
                self.series[selector] = ring
        for selector, ring in self.series.items():
            ring.append(rates.get(selector, 0.0))  # a series that did not change moved at 0 per second

    def _add_peers(self, peers: list[PeerPath]) -> None:
        seen = set()
        for p in peers:
            seen.add(p.key)
            known = self.peers.get(p.key)
            if known is None:
                if len(self.peers) >= MAX_PEERS:
                    continue
                known = PeerHistory(_ring(self.size), _ring(self.size), deque(maxlen=self.size))
                known.rx.extend([None] * (len(self.derp_share) - 1))
                known.tx.extend([None] * (len(self.derp_share) - 1))
                self.peers[p.key] = known
            known.rx.append(p.rx_bytes_per_s)
            known.tx.append(p.tx_bytes_per_s)
            if not known.routes or known.routes[-1][1] != p.route:
                known.routes.append((self.elapsed_s, p.route))
        for key, gone in self.peers.items():
            if key not in seen:
                gone.rx.append(None)
                gone.tx.append(None)
