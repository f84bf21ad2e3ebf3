"""Per-peer paths and rates from two status snapshots of one tailscaled, and how long each peer has been on
its path over a watch session.

A peer's path follows what ``tailscale status`` shows (and what magicsock fills in):

* ``idle``: no packet sent to it in the last two minutes (``Active`` false), or no path known;
* ``peer-relay``: through a peer relay server (``PeerRelay``, the endpoint is the server's ``ip:port``);
* ``direct``: straight over UDP (``CurAddr``, the endpoint);
* ``derp``: relayed through the peer's home DERP region (``Relay``, the region code), neither of the above.

Rates are bytes per second over the time between the snapshots; a count that went down (the peer was
re-added) counts from zero, and a peer new in the later snapshot moved all its bytes in the interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from derptool.errors import UsageError
from derptool.watch.status import PeerState, StatusSnapshot

PathName = Literal["direct", "derp", "peer-relay", "idle"]
PATH_ORDER: dict[str, int] = {"derp": 0, "peer-relay": 1, "direct": 2, "idle": 3}
"""Relayed first: the order the peer table is sorted in."""
MAX_NAMES = 20
"""Peers named at most in the error for an unknown ``--peer``."""


@dataclass(frozen=True)
class Route:
    """Where a peer's packets go: the path and the region or endpoint that identifies it."""

    path: PathName
    region: str | None = None
    """DERP region code, for the ``derp`` path."""
    endpoint: str | None = None
    """``ip:port`` of the direct path or of the peer relay server."""


@dataclass(frozen=True)
class PeerPath:
    """One peer over one interval: its route now, its rates, and how long it has been on the route."""

    key: str
    name: str
    route: Route
    rx_bytes_per_s: float
    tx_bytes_per_s: float
    since_s: float | None
    """Seconds since the session first saw the peer on this route; None when it was on it from the start."""
    last_handshake_age_s: float | None
    """Seconds since the last WireGuard handshake; None when there was none."""
    state: PeerState

    @property
    def bytes_per_s(self) -> float:
        """Both directions."""
        return self.rx_bytes_per_s + self.tx_bytes_per_s

    def to_data(self) -> dict[str, Any]:
        """JSON-ready form (one entry of ``peers`` in ``derptool watch --once --format json``)."""
        return {
            "name": self.name,
            "path": self.route.path,
            "region": self.route.region,
            "endpoint": self.route.endpoint,
            "rx_bytes_per_s": self.rx_bytes_per_s,
            "tx_bytes_per_s": self.tx_bytes_per_s,
            "since_s": None if self.since_s is None else round(self.since_s, 3),
        }


def route_of(peer: PeerState) -> Route:
    """The route *peer* is on (see the module docstring)."""
    if not peer.active:
        return Route("idle")
    if peer.peer_relay:
        return Route("peer-relay", endpoint=peer.peer_relay)
    if peer.cur_addr:
        return Route("direct", endpoint=peer.cur_addr)
    if peer.relay:
        return Route("derp", region=peer.relay)
    return Route("idle")


def _rate(now: int, before: int | None, dt: float) -> float:
    moved = now if before is None or now < before else now - before
    return moved / dt if dt > 0 else 0.0


def sort_key(p: PeerPath) -> tuple[int, float, str]:
    """Relayed first, then the busiest, then by name."""
    return (PATH_ORDER[p.route.path], -p.bytes_per_s, p.name)


class PeerTracker:
    """Follows every peer over a session of status snapshots: rates per interval and the time each moved
    to its route. Feed it snapshots in order with :meth:`update`."""

    def __init__(self, first: StatusSnapshot) -> None:
        self.previous = first
        self.since: dict[str, tuple[Route, float | None]] = {key: (route_of(p), None) for key, p in first.peers.items()}
        """Each peer's route and the monotonic time it was first seen on it (None: from the start)."""

    def update(self, current: StatusSnapshot) -> list[PeerPath]:
        """The peers of *current*, with rates since the previous snapshot, sorted relayed first."""
        before, dt = self.previous.peers, current.taken - self.previous.taken
        out = []
        for key, peer in current.peers.items():
            route = route_of(peer)
            known = self.since.get(key)
            if known is None or known[0] != route:
                known = (route, current.taken)
                self.since[key] = known
            old = before.get(key)
            handshake = None if peer.last_handshake is None else max(0.0, current.wall - peer.last_handshake)
            out.append(
                PeerPath(
                    key=key,
                    name=peer.name,
                    route=route,
                    rx_bytes_per_s=_rate(peer.rx_bytes, None if old is None else old.rx_bytes, dt),
                    tx_bytes_per_s=_rate(peer.tx_bytes, None if old is None else old.tx_bytes, dt),
                    since_s=None if known[1] is None else current.taken - known[1],
                    last_handshake_age_s=handshake,
                    state=peer,
                )
            )
        for gone in set(self.since) - set(current.peers):
            del self.since[gone]
        self.previous = current
        return sorted(out, key=sort_key)


def find_peer(status: StatusSnapshot, wanted: str) -> str:
    """The key of the peer *wanted* names: its name, MagicDNS name, host name or a Tailscale IP (any
    case). :class:`UsageError` naming the peers there are when none matches."""
    text = wanted.strip().lower().removesuffix(".")
    for key, peer in sorted(status.peers.items(), key=lambda kv: kv[1].name):
        known = {peer.name, peer.dns_name.removesuffix("."), peer.host_name, *peer.tailscale_ips}
        if text and text in {n.lower() for n in known if n}:
            return key
    names = sorted(_printable(p.name) for p in status.peers.values())
    listed = ", ".join(names[:MAX_NAMES]) + (f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else "")
    there = f"the peers are: {listed}" if names else "this client has no peers"
    raise UsageError(f"--peer {wanted!r}: no such peer; {there}")


def _printable(name: str) -> str:
    """*name* fit for a one-line message: control characters as '?', at most 40 characters."""
    return "".join(c if c.isprintable() else "?" for c in name[:40])
