"""Choosing the home (preferred) DERP region the way Tailscale's netcheck does, with its history.

:class:`HomeChooser` keeps the reports of the last 5 minutes (plus one report timeout, so a full report
always stays in the window). For each report it:

1. takes each region's best (lowest) latency over that history, times its ``HomeParams.RegionScore``
   when the score is positive (a score below 1 makes a region more attractive);
2. among the regions of *this* report, picks the one with the lowest such value (ties: lowest region ID);
3. keeps the previous home instead when it still answered (or was heard from over DERP in the last 8 s)
   unless the new one is at least 10 ms better *and* below two thirds of the old one's current latency;
4. honours a forced home region when it answered or was heard from recently;
5. with no latency at all, keeps the previous home while its DERP connection was active in the last 2 min.

Regions that are ``NoMeasureNoHome`` are never home. ``Avoid`` regions are never home either: Tailscale
deprecated ``Avoid`` in favour of ``NoMeasureNoHome`` and its netcheck still measures such regions, so
derptool shows them but never recommends one as home (netcheck itself could pick one measured in a full
report). :func:`choose_home` is the single-report rule without history.
"""

from __future__ import annotations

from collections.abc import Mapping

from derptool.derpmap import DERPMap

HISTORY_S = 5 * 60 + 5.0
"""How long a report stays in the history: the full-report interval plus one report timeout (seconds)."""
ABSOLUTE_GAIN_MS = 10.0
"""A new home must be at least this much faster than the old one..."""
RELATIVE_GAIN = 2 / 3
"""...and below this fraction of the old one's latency."""
DERP_FRAME_WINDOW_S = 8.0
"""A DERP frame from a region this recently counts as hearing from it (netcheck's PreferredDERPFrameTime)."""
KEEPALIVE_WINDOW_S = 120.0
"""With no latencies, keep a home whose DERP connection was active this recently (2 × DERP keep-alive)."""


def _scaled(latencies: Mapping[int, float], scores: Mapping[int, float]) -> dict[int, float]:
    return {rid: ms * scores[rid] if scores.get(rid, 0) > 0 else ms for rid, ms in latencies.items()}


def _keep_old(old_ms: float, best_ms: float) -> bool:
    """True when a switch from a region at *old_ms* to one at *best_ms* is not worth it."""
    return old_ms - best_ms < ABSOLUTE_GAIN_MS or best_ms > old_ms * RELATIVE_GAIN


def choose_home(
    latencies_ms: Mapping[int, float],
    *,
    best_recent_ms: Mapping[int, float] | None = None,
    previous: int | None = None,
    scores: Mapping[int, float] | None = None,
    excluded: frozenset[int] = frozenset(),
    previous_heard: bool = False,
) -> int | None:
    """The home region for one report's *latencies_ms*, netcheck's rule (see the module docstring).

    *best_recent_ms* is each region's best latency over the history (default: this report's);
    *excluded* regions (``Avoid``, ``NoMeasureNoHome``) are never chosen; *previous_heard*: the previous
    home was heard from over DERP recently, so it counts as reachable without a latency.
    """
    scores = scores or {}
    current = _scaled({r: ms for r, ms in latencies_ms.items() if r not in excluded}, scores)
    recent = _scaled(best_recent_ms if best_recent_ms is not None else latencies_ms, scores)
    best: int | None = None
    for rid in sorted(current):
        value = min(recent.get(rid, current[rid]), current[rid])
        if best is None or value < min(recent.get(best, current[best]), current[best]):
            best = rid
    if best is None or previous is None or best == previous:
        return best
    old_ms = current.get(previous)
    if old_ms is None and not previous_heard:
        return best
    best_ms = min(recent.get(best, current[best]), current[best])
    return previous if _keep_old(old_ms or 0.0, best_ms) else best


class HomeChooser:
    """netcheck's home-region choice over a sequence of reports (one :meth:`update` per report)."""

    def __init__(self, dmap: DERPMap | None = None, *, force: int | None = None) -> None:
        self.scores: dict[int, float] = {}
        self.excluded: frozenset[int] = frozenset()
        if dmap is not None:
            if dmap.home_params is not None:
                self.scores = dict(dmap.home_params.region_score)
            self.excluded = frozenset(r.region_id for r in dmap.region_list() if r.avoid or r.no_measure_no_home)
        self.force = force
        """A region to use as home whenever it answered or was heard from recently."""
        self.history: dict[float, dict[int, float]] = {}
        """The retained reports' latencies (ms) by time."""
        self.home: int | None = None
        """The home region chosen by the last :meth:`update`."""

    def best_recent(self) -> dict[int, float]:
        """Each region's lowest latency over the retained history (milliseconds, unscaled)."""
        best: dict[int, float] = {}
        for latencies in self.history.values():
            for rid, ms in latencies.items():
                if rid not in best or ms < best[rid]:
                    best[rid] = ms
        return best

    def update(
        self, latencies_ms: Mapping[int, float], now: float, last_heard: Mapping[int, float] | None = None
    ) -> int | None:
        """Add a report's region latencies (ms) taken at *now* (seconds) and return the home region.

        *last_heard* optionally gives, per region, when (same clock as *now*) a DERP frame last came from
        it: a home heard from recently is kept even without a STUN answer.
        """
        heard = last_heard or {}
        previous = self.home
        self.history[now] = dict(latencies_ms)
        for t in [t for t in self.history if now - t > HISTORY_S]:
            del self.history[t]
        prev_heard = previous is not None and heard.get(previous, float("-inf")) > now - DERP_FRAME_WINDOW_S
        home = choose_home(
            latencies_ms,
            best_recent_ms=self.best_recent(),
            previous=previous,
            scores=self.scores,
            excluded=self.excluded,
            previous_heard=prev_heard,
        )
        if self.force is not None and (
            self.force in latencies_ms or heard.get(self.force, float("-inf")) > now - DERP_FRAME_WINDOW_S
        ):
            home = self.force
        if home is None and previous is not None and heard.get(previous, float("-inf")) > now - KEEPALIVE_WINDOW_S:
            home = previous
        self.home = home
        return home
