"""Captive-portal detection the way Tailscale's netcheck does it, against the DERP map's own nodes.

Endpoints: ``http://<IPv4>/generate_204`` of every node with an IPv4 address and ``CanPort80`` in regions
that are neither ``Avoid`` nor ``NoMeasureNoHome``, the home region's nodes first; at most five are tried,
at once. Each request carries ``X-Tailscale-Challenge: ts_<host>`` and a ``t=<unix time>`` query (no cache);
derper answers ``204 No Content`` with ``X-Tailscale-Response: response ts_<host>``. Any other status, or
a missing or wrong response header, means something between us and the server answered instead: a captive
portal. One such answer is enough. A request that fails (refused, timed out) says nothing either way.

Unlike netcheck, Tailscale's own control-plane URLs are not added: derptool only talks to the map's servers.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from derptool.derpmap import DERPMap

if TYPE_CHECKING:
    import httpx

TIMEOUT = 3.0
"""Seconds per request (netcheck's captive-portal timeout)."""
MAX_ENDPOINTS = 5
CHALLENGE_HEADER = "X-Tailscale-Challenge"
RESPONSE_HEADER = "X-Tailscale-Response"


@dataclass(frozen=True)
class Endpoint:
    """One URL to check: a DERP node's ``/generate_204``."""

    url: str
    host: str
    """``ip`` or ``ip:port``: what the challenge names."""
    region_id: int
    node: str


@dataclass(frozen=True)
class Check:
    """What one endpoint said: a captive-portal verdict, or the error that prevented one."""

    endpoint: Endpoint
    captive: bool | None
    detail: str


@dataclass
class CaptiveResult:
    """The outcome: ``found`` is None when no endpoint could be checked."""

    found: bool | None
    checks: list[Check] = field(default_factory=list)


def endpoints(dmap: DERPMap, preferred_region: int | None = None, *, port: int = 80) -> list[Endpoint]:
    """The endpoints netcheck would try for *dmap*: home region first, at most five."""
    home: list[Endpoint] = []
    other: list[Endpoint] = []
    for region in dmap.region_list():
        if region.avoid or region.no_measure_no_home:
            continue
        for node in region.nodes:
            if node.ipv4 in ("", "none") or not node.can_port80:
                continue
            host = node.ipv4 if port == 80 else f"{node.ipv4}:{port}"
            e = Endpoint(f"http://{host}/generate_204", host, region.region_id, node.name)
            (home if region.region_id == preferred_region else other).append(e)
    return (home + other)[:MAX_ENDPOINTS]


def looks_captive(status: int, headers: dict[str, str], host: str) -> tuple[bool, str]:
    """Judge one answer: (captive?, why). *headers* with lower-case names."""
    if status != 204:
        return True, f"status {status}, expected 204"
    want = f"response ts_{host}"
    got = headers.get(RESPONSE_HEADER.lower())
    if got != want:
        return True, f"{RESPONSE_HEADER} is {got!r}, expected {want!r}"
    return False, "204 with the expected challenge response"


_NO_CACHE = "no-cache, no-store, must-revalidate, no-transform, max-age=0"


async def _check(client: httpx.AsyncClient, e: Endpoint) -> Check:
    import httpx  # lazy, as below

    try:
        resp = await client.get(
            e.url,
            params={"t": str(int(time.time()))},
            headers={CHALLENGE_HEADER: f"ts_{e.host}", "Cache-Control": _NO_CACHE},
        )
    except httpx.HTTPError as err:
        return Check(e, None, f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)
    captive, why = looks_captive(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, e.host)
    return Check(e, captive, why)


async def _check_by(client: httpx.AsyncClient, e: Endpoint, seconds: float) -> Check:
    """:func:`_check`, whole by *seconds*: a server that drips its answer is abandoned then (httpx's own
    timeout bounds each read, not the request)."""
    try:
        return await asyncio.wait_for(_check(client, e), seconds)
    except TimeoutError:
        return Check(e, None, f"no complete answer within {seconds:g} s")


async def detect_async(
    dmap: DERPMap, preferred_region: int | None = None, *, port: int = 80, timeout: float = TIMEOUT
) -> CaptiveResult:
    """Check the map's endpoints at once; stop at the first that looks captive."""
    import httpx  # lazy: a costly import that netcheck's users (latency, impact) need only for this check

    targets = endpoints(dmap, preferred_region, port=port)
    if not targets:
        return CaptiveResult(None)
    checks: list[Check] = []
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        tasks = {asyncio.ensure_future(_check_by(client, e, timeout)) for e in targets}
        try:
            while tasks:
                done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    checks.append(t.result())
                if any(c.captive for c in checks):
                    break
        finally:
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
    verdicts = [c.captive for c in checks if c.captive is not None]
    return CaptiveResult(any(verdicts) if verdicts else None, checks)


def detect(
    dmap: DERPMap, preferred_region: int | None = None, *, port: int = 80, timeout: float = TIMEOUT
) -> CaptiveResult:
    """:func:`detect_async` in a fresh event loop."""
    return asyncio.run(detect_async(dmap, preferred_region, port=port, timeout=timeout))
