"""Executing a probe plan: every region at once in one event loop, STUN first, HTTPS where needed."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from derptool.derpmap import DERPMap, DERPNode, is_ip
from derptool.errors import InputError, ProbeFailed, StunTimeout
from derptool.net import dial
from derptool.net.netcheck import https
from derptool.net.netcheck.plan import Family, Probe, ProbePlan, RegionPlan, make_plan
from derptool.net.netcheck.report import ProbeResult, RegionResult, Report, summarise
from derptool.net.stunclient import StunSocket, StunStats, describe_os_error, usable_families

if TYPE_CHECKING:
    import ssl

DEFAULT_TIMEOUT = 5.0
STUN_PHASE = 3.0
"""Seconds the STUN phase may last (at most 60 % of the overall timeout) before HTTPS takes over."""


@dataclass
class _FamilyOutcome:
    latency_ms: float | None = None
    node: str | None = None
    results: list[ProbeResult] = field(default_factory=list)


class _Runner:
    def __init__(self, plan: ProbePlan, dmap: DERPMap, *, timeout: float, stun_timeout: float, https: bool,
                 ca_file: str | None, progress: Callable[[RegionResult], None] | None,
                 unusable: set[int]) -> None:
        self.unusable = unusable
        """Families probed only towards loopback addresses (auto mode, and the machine lacks them)."""
        self.plan = plan
        self.dmap = dmap
        self.timeout = timeout
        self.stun_timeout = stun_timeout
        self.https = https
        self.ca_file = ca_file
        self.progress = progress
        self.loop = asyncio.get_running_loop()
        self.start = self.loop.time()
        self.deadline = self.start + timeout
        self.stun_deadline = self.start + stun_timeout
        self.sockets: dict[int, StunSocket | OSError] = {}
        self.resolved: dict[tuple[str, int], asyncio.Task[str]] = {}
        self.ssl_contexts: dict[bool, ssl.SSLContext] = {}

    def close(self) -> None:
        for s in self.sockets.values():
            if isinstance(s, StunSocket):
                s.close()

    def _socket(self, family: Family) -> StunSocket:
        got = self.sockets.get(family)
        if got is None:
            try:
                got = StunSocket(family, self.loop)
            except OSError as err:
                got = err
            self.sockets[family] = got
        if isinstance(got, OSError):
            raise ProbeFailed(f"no IPv{family} socket: {describe_os_error(got)}")
        return got

    async def _resolve(self, host: str, family: Family) -> str:
        if is_ip(host):
            return host
        key = (host, family)
        task = self.resolved.get(key)
        if task is None:
            task = self.loop.create_task(_first_address(host, family))
            self.resolved[key] = task
        return await asyncio.shield(task)

    @property
    def stats(self) -> StunStats:
        """What the STUN sockets received, all families together."""
        total = StunStats()
        for s in self.sockets.values():
            if isinstance(s, StunSocket):
                total.add(s.stats)
        return total

    # STUN --------------------------------------------------------------------------------------

    async def _probe(self, probe: Probe) -> ProbeResult:
        await asyncio.sleep(max(0.0, self.start + probe.delay - self.loop.time()))
        dest: str | None = None
        phase = self.stun_deadline - self.start
        try:
            async with asyncio.timeout_at(self.stun_deadline):
                ip = await self._resolve(probe.host, probe.family)
            dest = dial.join_host_port(ip, probe.port)
            if probe.family in self.unusable and not ipaddress.ip_address(ip).is_loopback:
                return ProbeResult(probe, dest, skipped=True)
            answer = await self._socket(probe.family).request(ip, probe.port, deadline=self.stun_deadline)
            return ProbeResult(probe, dest, latency_ms=answer.rtt_ms, mapped=answer.mapped)
        except TimeoutError:
            return ProbeResult(probe, dest, error=f"timed out after {phase:.1f} s")
        except StunTimeout as err:
            msg = f"no answer in the {phase:.1f} s STUN phase"
            return ProbeResult(probe, dest, error=f"{msg}; {err.ignored}" if err.ignored else msg)
        except ProbeFailed as err:
            return ProbeResult(probe, dest, error=str(err))
        except OSError as err:
            return ProbeResult(probe, dest, error=describe_os_error(err))

    async def _family(self, probes: list[Probe]) -> _FamilyOutcome:
        out = _FamilyOutcome()
        tasks = {self.loop.create_task(self._probe(p)) for p in probes}
        try:
            while tasks:
                done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    res = t.result()
                    out.results.append(res)
                    if res.latency_ms is not None and (out.latency_ms is None or res.latency_ms < out.latency_ms):
                        out.latency_ms, out.node = res.latency_ms, res.probe.node
                if out.latency_ms is not None:
                    break  # the first answer cancels the rest, as in netcheck
        finally:
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        return out

    # HTTPS -------------------------------------------------------------------------------------

    async def _https_region(self, node: DERPNode) -> tuple[float | None, str | None]:
        """The HTTPS latency of *node* within the overall deadline, or why there is none."""
        try:
            async with asyncio.timeout_at(self.deadline):
                if node.ipv4 not in ("", "none"):
                    address = node.ipv4
                elif node.ipv6 not in ("", "none"):
                    address = node.ipv6
                else:
                    address = await self._resolve(node.host_name, 4 if node.ipv4 != "none" else 6)
                verify = https.needs_verification(node)
                ctx = self.ssl_contexts.get(verify)
                if ctx is None:
                    ctx = self.ssl_contexts[verify] = dial.tls_context(verify=verify, ca_file=self.ca_file)
                return await https.latency_check(node, address, ctx), None
        except TimeoutError:
            return None, f"HTTPS: no answer before the {self.timeout:.1f} s deadline"
        except Exception as err:
            return None, f"HTTPS: {https.describe_error(err)}"

    # a region ----------------------------------------------------------------------------------

    async def region(self, rp: RegionPlan) -> tuple[RegionResult, list[ProbeResult]]:
        from derptool.derpmap.geo import geo_for

        region = rp.region
        geo = geo_for(region)
        score = None
        if self.dmap.home_params is not None:
            score = self.dmap.home_params.region_score.get(region.region_id)
        res = RegionResult(id=region.region_id, code=region.region_code, name=region.region_name,
                           country=geo.country, continent=geo.continent, avoid=region.avoid, score=score)
        results: list[ProbeResult] = []
        if rp.skip:
            res.error = rp.skip
            return res, results
        try:
            await self._measure(rp, res, results)
        except Exception as err:  # one bad region never spoils the others
            res.error = f"{type(err).__name__}: {err}"
        if self.progress is not None:
            self.progress(res)
        return res, results

    async def _measure(self, rp: RegionPlan, res: RegionResult, results: list[ProbeResult]) -> None:
        by_family: dict[int, list[Probe]] = {}
        for p in rp.probes:
            by_family.setdefault(p.family, []).append(p)
        https_task = None
        if self.https and rp.https_node is not None:
            https_task = self.loop.create_task(self._https_region(rp.https_node))
        outcomes = await asyncio.gather(*(self._family(ps) for ps in by_family.values()))
        errors: list[str] = []
        for family, outcome in zip(by_family, outcomes, strict=True):
            results.extend(outcome.results)
            if family == 4:
                res.v4_latency_ms = outcome.latency_ms
            else:
                res.v6_latency_ms = outcome.latency_ms
            if outcome.latency_ms is not None and (res.latency_ms is None or outcome.latency_ms < res.latency_ms):
                res.latency_ms, res.node, res.method = outcome.latency_ms, outcome.node, "stun"
            for r in outcome.results:
                if r.error is not None:
                    res.probe_errors += 1
                    errors.append(f"{r.probe.node} {r.dest or r.probe.host}: {r.error}")
        if rp.stun_note:
            errors.append(rp.stun_note)
        elif results and all(r.skipped for r in results):
            families = "/".join(f"IPv{f}" for f in sorted(self.unusable))
            errors.append(f"no STUN probe sent: this machine has no usable {families}")
        if https_task is None and res.latency_ms is None and rp.https_node is not None:
            https_task = self.loop.create_task(self._https_region(rp.https_node))
        if https_task is not None:
            ms, err = await https_task
            res.https_latency_ms = ms
            if ms is not None:
                res.latency_ms, res.node, res.method = ms, rp.https_node.name if rp.https_node else None, "https"
            else:
                res.probe_errors += 1
                if not any(err and e.endswith(": " + err.removeprefix("HTTPS: ")) for e in errors):
                    errors.append(err or "HTTPS failed")
        elif res.latency_ms is None and rp.https_node is None and rp.probes:
            errors.append("no HTTPS fallback: every node is STUN-only")
        if res.latency_ms is None:
            res.error = "; ".join(dict.fromkeys(errors)) or "no answer"


async def _first_address(host: str, family: Family) -> str:
    return (await dial.resolve(host, family=family))[0]


async def run(dmap: DERPMap, *, map_source: str = "", plan: ProbePlan | None = None,
              timeout: float = DEFAULT_TIMEOUT, stun_timeout: float | None = None, https: bool = False,
              ipv4: bool | None = True, ipv6: bool | None = True, ca_file: str | None = None,
              progress: Callable[[RegionResult], None] | None = None,
              previous_preferred: int | None = None) -> Report:
    """Measure every region of *dmap* (or of *plan*) at once and return the :class:`Report`.

    *timeout* bounds the whole run; the STUN phase lasts at most *stun_timeout* (default: 3 s, or 60 % of a
    shorter timeout). *https* measures every region over HTTPS too (its latency then comes from HTTPS);
    otherwise HTTPS measures only regions without a UDP answer. *ca_file* adds a CA to trust for HTTPS.
    *ipv4*/*ipv6*: True probes the family, False does not, None probes it only where this machine can use
    it (as netcheck does; loopback addresses are always probed). *previous_preferred*, the preferred
    region of the last run, is kept unless another is clearly better (see :func:`preferred_region`).

    Raises :class:`~derptool.errors.InputError` for a timeout that is not positive or a CA file that
    cannot be used; every network failure is recorded in the report instead. Notices (ignored STUN
    packets) are in ``Report.notes``.
    """
    if timeout <= 0:
        raise InputError("the timeout must be a positive number of seconds")
    if stun_timeout is not None and stun_timeout <= 0:
        raise InputError("the STUN phase must last a positive number of seconds")
    if ca_file is not None:
        dial.tls_context(ca_file=ca_file)  # raises InputError now rather than failing every HTTPS probe
    if stun_timeout is None:
        stun_timeout = min(STUN_PHASE, timeout * 0.6)
    stun_timeout = min(stun_timeout, timeout)
    plan = plan or make_plan(dmap, ipv4=ipv4 is not False, ipv6=ipv6 is not False)
    auto = {f for f, flag in ((4, ipv4), (6, ipv6)) if flag is None}
    unusable = auto - usable_families() if auto else set()
    report = Report(map_source=map_source, started=time.time())
    t0 = time.perf_counter()
    runner = _Runner(plan, dmap, timeout=timeout, stun_timeout=stun_timeout, https=https, ca_file=ca_file,
                     progress=progress, unusable=unusable)
    try:
        tasks = [runner.loop.create_task(runner.region(rp)) for rp in plan.regions]
        # every wait inside a region is bounded by the deadline; the grace only covers closing sockets
        done, _ = await asyncio.wait(tasks, timeout=timeout + 1.0) if tasks else (set(), set())
        for rp, task in zip(plan.regions, tasks, strict=True):
            if task in done:
                res, probes = task.result()
            else:
                task.cancel()
                region = rp.region
                res = RegionResult(id=region.region_id, code=region.region_code, name=region.region_name,
                                   avoid=region.avoid, error=f"no answer within {timeout:.1f} s")
                probes = []
            report.regions.append(res)
            report.probes.extend(probes)
    finally:
        note = runner.stats.note()
        if note is not None:
            report.notes.append(note)
        runner.close()
        for t in runner.resolved.values():
            t.cancel()
    report.duration_s = time.perf_counter() - t0
    summarise(report, previous_preferred)
    return report


def measure(dmap: DERPMap, *, map_source: str = "", plan: ProbePlan | None = None,
            timeout: float = DEFAULT_TIMEOUT, stun_timeout: float | None = None, https: bool = False,
            ipv4: bool | None = True, ipv6: bool | None = True, ca_file: str | None = None,
            progress: Callable[[RegionResult], None] | None = None,
            previous_preferred: int | None = None) -> Report:
    """:func:`run` in a fresh event loop, for callers that are not async (same parameters)."""
    return asyncio.run(run(dmap, map_source=map_source, plan=plan, timeout=timeout, stun_timeout=stun_timeout,
                           https=https, ipv4=ipv4, ipv6=ipv6, ca_file=ca_file, progress=progress,
                           previous_preferred=previous_preferred))
