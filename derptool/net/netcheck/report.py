"""The outcome of a run as values: per-probe and per-region results, the :class:`Report`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from derptool.net.netcheck.home import choose_home
from derptool.net.netcheck.plan import Probe

if TYPE_CHECKING:
    from derptool.net.portmap import PortMapProbe

Method = Literal["stun", "https"]


@dataclass(frozen=True)
class ProbeResult:
    """What one STUN probe got (an answer, or an error)."""

    probe: Probe
    dest: str | None
    """The address:port the request went to (after name resolution)."""
    latency_ms: float | None = None
    mapped: str | None = None
    """The address:port the server saw us as."""
    error: str | None = None
    skipped: bool = False
    """Not sent: the machine cannot use the family (see ``run``'s auto mode)."""


@dataclass
class RegionResult:
    """The measurement of one region: the values of the JSON contract, and details for other outputs."""

    id: int
    code: str
    name: str
    country: str | None = None
    continent: str | None = None
    latency_ms: float | None = None
    v4_latency_ms: float | None = None
    v6_latency_ms: float | None = None
    https_latency_ms: float | None = None
    method: Method | None = None
    node: str | None = None
    error: str | None = None
    avoid: bool = False
    score: float | None = None
    """``HomeParams.RegionScore`` multiplier, when one applies."""
    probe_errors: int = 0
    """Probes (STUN and HTTPS) that failed."""
    probed: bool = True
    """False for a region an incremental round did not probe: its values are its last measurement's."""
    measured_at: float | None = None
    """When (Unix seconds) the values of a region that was not probed this round were measured."""

    def to_data(self) -> dict[str, Any]:
        """The region as in ``derptool latency --format json``."""
        return {
            "id": self.id,
            "code": self.code,
            "name": self.name,
            "country": self.country,
            "continent": self.continent,
            "latency_ms": _round(self.latency_ms),
            "v4_latency_ms": _round(self.v4_latency_ms),
            "v6_latency_ms": _round(self.v6_latency_ms),
            "method": self.method,
            "node": self.node,
            "error": self.error,
            "probed": self.probed,
        }


def _round(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 3)


@dataclass(repr=False)
class Report:
    """The outcome of a run: a value, rendered by the ``latency`` command (:mod:`derptool.cli.latency`)."""

    map_source: str
    preferred_region: int | None = None
    udp: bool = False
    ipv4: bool = False
    ipv6: bool = False
    global_v4: str | None = None
    global_v6: str | None = None
    mapping_varies_by_dest_ip: bool | None = None
    regions: list[RegionResult] = field(default_factory=list)
    """Sorted by latency, unreachable regions last."""
    probes: list[ProbeResult] = field(default_factory=list)
    started: float = 0.0
    """Wall-clock time (Unix seconds) the run started."""
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    """Notices for the user (not part of the JSON contract); the CLI prints them on stderr."""
    incremental: bool = False
    """The round probed only the fastest regions of the last report and the home region."""
    port_mapping: PortMapProbe | None = None
    """Which port-mapping protocols the gateway answered; None when not checked."""
    captive_portal: bool | None = None
    """Whether a captive portal answered instead of a DERP node; None when not checked (as netcheck)."""
    captive_status: int | None = None
    """The HTTP status of the answer that looked captive (a login page redirects or answers 200 or 511)."""

    @property
    def no_network(self) -> bool:
        """Nothing answered: no probed region over UDP or HTTPS, no public address learned (offline, or all
        of it blocked)."""
        probed = [r for r in self.regions if r.probed]
        return bool(probed) and not self.udp and all(r.latency_ms is None for r in probed)

    @property
    def login_portal(self) -> bool:
        """A captive answer that looks like a login page (a redirect, 200 or 511), not a gateway's error page."""
        status = self.captive_status
        return bool(self.captive_portal) and status is not None and (status in (200, 511) or 300 <= status < 400)

    def __repr__(self) -> str:
        # short on purpose: asyncio may repr a finished task's result (with thousands of probes) on exit
        return (
            f"Report(map_source={self.map_source!r}, preferred_region={self.preferred_region}, "
            f"regions={len(self.regions)}, probes={len(self.probes)}, duration_s={self.duration_s:.3f})"
        )

    @property
    def reachable(self) -> list[RegionResult]:
        """Regions that answered."""
        return [r for r in self.regions if r.latency_ms is not None]

    @property
    def preferred(self) -> RegionResult | None:
        """The preferred region's result."""
        return next((r for r in self.regions if r.id == self.preferred_region), None)

    def to_data(self) -> dict[str, Any]:
        """The report as in ``derptool latency --format json`` (DESIGN.md contract)."""
        return {
            "map_source": self.map_source,
            "preferred_region": self.preferred_region,
            "udp": self.udp,
            "ipv4": self.ipv4,
            "ipv6": self.ipv6,
            "global_v4": self.global_v4,
            "global_v6": self.global_v6,
            "mapping_varies_by_dest_ip": self.mapping_varies_by_dest_ip,
            "regions": [r.to_data() for r in self.regions],
            "time": self.time,
            "plan": "incremental" if self.incremental else "full",
            "port_mapping": None if self.port_mapping is None else self.port_mapping.to_data(),
            "captive_portal": self.captive_portal,
        }

    @property
    def time(self) -> str:
        """When the run started, RFC 3339 in UTC with milliseconds."""
        when = datetime.fromtimestamp(self.started, UTC)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def preferred_region(regions: list[RegionResult], previous: int | None = None) -> int | None:
    """The lowest latency (times its RegionScore, when positive) of a region that is not Avoid.

    With the *previous* home region (repeated measurements), keep it unless the new best is at least
    10 ms better and better by more than a third, as netcheck does to avoid flapping. This is one report
    without history; :class:`~derptool.net.netcheck.home.HomeChooser` adds netcheck's 5-minute history.
    """
    return choose_home(
        {r.id: r.latency_ms for r in regions if r.latency_ms is not None},
        previous=previous,
        scores={r.id: r.score for r in regions if r.score is not None},
        excluded=frozenset(r.id for r in regions if r.avoid),
    )


def summarise(report: Report, previous_preferred: int | None = None) -> None:
    """Fill the global fields of *report* from its probes and region results."""
    answered = [p for p in report.probes if p.latency_ms is not None]
    report.ipv4 = any(p.probe.family == 4 for p in answered)
    report.ipv6 = any(p.probe.family == 6 for p in answered)
    report.udp = report.ipv4 or report.ipv6
    varies: bool | None = None
    for family in (4, 6):
        fam = [p for p in answered if p.probe.family == family and p.mapped]
        if fam:
            if family == 4:
                report.global_v4 = fam[0].mapped
            else:
                report.global_v6 = fam[0].mapped
        by_dest = {p.dest.rsplit(":", 1)[0] if p.dest else "": p.mapped for p in fam}
        if len(by_dest) >= 2:
            varies = bool(varies) or len(set(by_dest.values())) > 1
    report.mapping_varies_by_dest_ip = varies
    report.preferred_region = preferred_region(report.regions, previous_preferred)
    report.regions.sort(key=lambda r: (r.latency_ms is None, r.latency_ms or 0.0, r.id))
