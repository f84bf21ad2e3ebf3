"""Subnet routes served by several routers (high availability), as each viewer sees them.

Two behaviours of Tailscale's control plane, both visible in its recordings:

- A router that serves a route itself always sees the route at the route's primary router (when the two
  are peers), whatever the rules say about the route: it is the standby of the same subnet.
- A ``via`` grant steers its sources' traffic for a route to the routers carrying a via tag, so for those
  sources the route's primary is elected among those routers: the route's primary when it carries the
  tag, else the first tagged router that lists the route among its ``primary_routes`` in the tailnet file,
  else the first tagged router serving it; unless a grant without ``via`` also gives the viewer the route.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from derptool.policy.engine.addresses import prefix_range
from derptool.policy.engine.tailnet import Node, Tailnet


def standby_routes(viewer: Node, peer: Node, primaries: Mapping[str, int]) -> list[str]:
    """Routes *peer* is primary for that *viewer* serves too (it sees them whatever the rules say)."""
    mine = set(viewer.subnet_routes)
    return [r for r in peer.subnet_routes if r in mine and primaries.get(r) == peer.index]


def via_primaries(
    viewer: Node,
    tailnet: Tailnet,
    primaries: Mapping[str, int],
    steering: Sequence[tuple[tuple[str, ...], Sequence[tuple[int, int]]]],
    plain: Sequence[tuple[int, int]] = (),
) -> dict[str, int]:
    """*primaries* as *viewer* sees them once via grants steer it.

    *steering* holds, for each via grant whose sources include the viewer, its via tags and destination
    ranges; *plain* the destination ranges of the viewer's grants without ``via``: a route one of them
    covers is not steered (the ordinary grant lets the viewer use the route's primary). Routes no via
    grant steers keep their primary.
    """
    if not steering:
        return dict(primaries)
    out = dict(primaries)
    for route in tailnet.subnet_routes:
        lo, hi = prefix_range(route)
        if any(a <= hi and lo <= b for a, b in plain):
            continue
        for tags, dsts in steering:
            if not any(a <= hi and lo <= b for a, b in dsts):
                continue
            routers = [n for n in tailnet.nodes if route in n.subnet_routes and any(n.has_tag(t) for t in tags)]
            if not routers or any(n.index == primaries.get(route) for n in routers):
                break
            listed = [n for n in routers if route in (n.primary_routes or ())]
            out[route] = (listed or routers)[0].index
            break
    return out


__all__ = ["standby_routes", "via_primaries"]
