"""Reports in a row, as Tailscale's netcheck client makes them (``tailscale netcheck --every``).

:class:`Netcheck` keeps what one report needs from the ones before it:

* the **plan**: the first report, and one at least every 5 minutes, is full; the others are incremental
  (the fastest regions of the last report and the home region, see :mod:`.plan`). A report that found a
  captive portal and no UDP makes the next one full again, as netcheck does;
* the **home region**: :class:`~.home.HomeChooser` with its 5-minute history of latencies;
* regions an incremental round did not probe keep their latest values from the last 5 minutes, marked
  ``probed=False`` with the time they were measured (netcheck itself just leaves them out);
* **port mapping** (UPnP, NAT-PMP, PCP on the default gateway, :mod:`derptool.net.portmap`), probed beside
  the STUN probes in every report when asked for (*port_mapping*: it sends to the LAN, not only to DERP);
* **captive portal** (:mod:`derptool.net.captive`), in full reports only: checked when the report is not
  done 200 ms in, or when it ends without any UDP answer (netcheck skips it when STUN worked quickly).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

from derptool.derpmap import DERPMap
from derptool.derpmap.geography import geo_for
from derptool.net.netcheck.engine import DEFAULT_TIMEOUT, run
from derptool.net.netcheck.home import HISTORY_S, HomeChooser
from derptool.net.netcheck.plan import LastReport, make_plan
from derptool.net.netcheck.report import RegionResult, Report

FULL_REPORT_INTERVAL = 300.0
"""At most this many seconds between full reports (netcheck's fullReportInterval)."""
CAPTIVE_DELAY = 0.200
"""Captive-portal detection starts only if the report is still running this long after its start and no
region has answered over UDP yet (an answer over UDP means no portal is in the way)."""


class Netcheck:
    """netcheck's client over a series of reports of one map; :meth:`report` makes the next one."""

    def __init__(
        self,
        dmap: DERPMap,
        *,
        map_source: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        https: bool = False,
        ipv4: bool | None = None,
        ipv6: bool | None = None,
        ca_file: str | None = None,
        bind_ip: str | None = None,
        bind_port: int = 0,
        port_mapping: bool = False,
        captive_portal: bool = True,
        captive_port: int = 80,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dmap = dmap
        self.map_source = map_source
        self.timeout = timeout
        self.https = https
        self.ipv4, self.ipv6 = ipv4, ipv6
        self.ca_file = ca_file
        self.bind_ip, self.bind_port = bind_ip, bind_port
        self.port_mapping = port_mapping
        self.captive_portal = captive_portal
        self.captive_port = captive_port
        """The nodes' HTTP port for ``/generate_204`` (80, as netcheck; tests serve another)."""
        self.clock = clock
        self.home = HomeChooser(dmap)
        self.last: Report | None = None
        self.last_measured: LastReport | None = None
        """The last report's own measurements (what netcheck's next plan reads)."""
        self.last_full: float | None = None
        self.next_full = False
        self.latest: dict[int, tuple[float, float, RegionResult]] = {}
        """Per region: (clock time, wall time, result) of its latest measurement with a latency."""

    def make_next_full(self) -> None:
        """Make the next report a full one (netcheck's MakeNextReportFull)."""
        self.next_full = True

    def _full_due(self, now: float) -> bool:
        if self.next_full or self.last_measured is None or self.last_full is None:
            return True
        if now - self.last_full > FULL_REPORT_INTERVAL:
            return True
        last = self.last
        return last is not None and not last.udp and last.captive_portal is True

    async def report(self, progress: Callable[[RegionResult], None] | None = None) -> Report:
        """Run the next report (full or incremental) and return it, its home region chosen with history."""
        now = self.clock()
        full = self._full_due(now)
        ipv4, ipv6 = self.ipv4 is not False, self.ipv6 is not False
        plan = make_plan(self.dmap, ipv4=ipv4, ipv6=ipv6, last=None if full else self.last_measured)
        if plan.incremental and not plan.regions:
            plan = make_plan(self.dmap, ipv4=ipv4, ipv6=ipv6)
        if not plan.incremental:
            self.next_full = False
            self.last_full = now
        loop = asyncio.get_running_loop()
        portmap_task = None
        if self.port_mapping:
            from derptool.net import portmap  # lazy: only --port-mapping needs it (its import is start-up time)

            window = min(portmap.REPORT_WINDOW, self.timeout)
            portmap_task = loop.create_task(asyncio.to_thread(portmap.probe, timeout=window))
        previous_home = self.home.home
        udp_seen = False

        def on_region(result: RegionResult) -> None:
            nonlocal udp_seen
            udp_seen = udp_seen or (result.method == "stun" and result.latency_ms is not None)
            if progress is not None:
                progress(result)

        measuring = loop.create_task(
            run(
                self.dmap,
                map_source=self.map_source,
                plan=plan,
                timeout=self.timeout,
                https=self.https,
                ipv4=self.ipv4,
                ipv6=self.ipv6,
                ca_file=self.ca_file,
                progress=on_region,
                previous_preferred=previous_home,
                bind_ip=self.bind_ip,
                bind_port=self.bind_port,
            )
        )
        captive_task = None
        try:
            if self.captive_portal and not plan.incremental:
                done, _ = await asyncio.wait([measuring], timeout=CAPTIVE_DELAY)
                if (not done and not udp_seen) or (done and not measuring.result().udp):
                    captive_task = loop.create_task(self._captive(previous_home))
            report = await measuring
            if captive_task is not None:
                report.captive_portal, report.captive_status = await captive_task
            if portmap_task is not None:
                report.port_mapping = await portmap_task
        finally:
            for task in (measuring, captive_task, portmap_task):
                if task is not None and not task.done():
                    task.cancel()
        self._remember(report, now)
        return report

    def measure(self, progress: Callable[[RegionResult], None] | None = None) -> Report:
        """:meth:`report` in a fresh event loop, for callers that are not async."""
        return asyncio.run(self.report(progress))

    async def _captive(self, home: int | None) -> tuple[bool | None, int | None]:
        from derptool.net import captive  # lazy: only a report without UDP needs it (start-up time)

        found = await captive.detect_async(self.dmap, home, port=self.captive_port)
        return found.found, found.status

    def _remember(self, report: Report, now: float) -> None:
        measured = {r.id: r.latency_ms for r in report.regions if r.latency_ms is not None}
        report.preferred_region = self.home.update(measured, now)
        self.last_measured = LastReport(
            region_latency=measured,
            v4_latency={r.id: r.v4_latency_ms for r in report.regions if r.v4_latency_ms is not None},
            v6_latency={r.id: r.v6_latency_ms for r in report.regions if r.v6_latency_ms is not None},
            preferred=report.preferred_region,
        )
        for r in report.regions:
            if r.latency_ms is not None:
                self.latest[r.id] = (now, report.started, r)
        for rid in [rid for rid, (t, _, _) in self.latest.items() if now - t > HISTORY_S]:
            del self.latest[rid]
        if report.incremental:
            self._carry_forward(report)
        self.last = report

    def _carry_forward(self, report: Report) -> None:
        """Add the regions this incremental round did not probe, with their latest values (if any)."""
        probed = {r.id for r in report.regions}
        for region in self.dmap.region_list():
            if region.region_id in probed:
                continue
            kept = self.latest.get(region.region_id)
            if kept is not None:
                res = dataclasses.replace(kept[2], probed=False, measured_at=kept[1], probe_errors=0)
            elif region.no_measure_no_home:
                res = RegionResult(
                    id=region.region_id,
                    code=region.region_code,
                    name=region.region_name,
                    avoid=region.avoid,
                    error="not measured: NoMeasureNoHome",
                    probed=False,
                )
            else:
                geo = geo_for(region)
                res = RegionResult(
                    id=region.region_id,
                    code=region.region_code,
                    name=region.region_name,
                    country=geo.country,
                    continent=geo.continent,
                    avoid=region.avoid,
                    error="not probed in this incremental round, and no answer in the last 5 min",
                    probed=False,
                )
            report.regions.append(res)
        report.regions.sort(key=lambda r: (r.latency_ms is None, r.latency_ms or 0.0, r.id))
