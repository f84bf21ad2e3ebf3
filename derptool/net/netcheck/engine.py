"""Executing a probe plan: every region at once in one event loop, STUN first, HTTPS where needed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from derptool.derpmap import DERPMap, DERPNode
from derptool.derpmap.geography import geo_for
from derptool.errors import InputError, ProbeFailed
from derptool.net import dial
from derptool.net.describe import describe_error
from derptool.net.netcheck.plan import Family, ProbePlan, RegionPlan, make_plan
from derptool.net.netcheck.report import ProbeResult, RegionResult, Report, summarise
from derptool.net.netcheck.stunphase import RegionProbes, StunPhase
from derptool.net.stunclient import StunSocket, StunStats, usable_families

if TYPE_CHECKING:
    import ssl

DEFAULT_TIMEOUT = 5.0
STUN_PHASE = 3.0
"""Seconds the STUN phase may last (at most 60 % of the overall timeout) before HTTPS takes over."""


class _Runner:
    def __init__(
        self,
        plan: ProbePlan,
        dmap: DERPMap,
        *,
        timeout: float,
        stun_timeout: float,
        https: bool,
        ca_file: str | None,
        progress: Callable[[RegionResult], None] | None,
        unusable: set[int],
        bind_ip: str | None = None,
        bind_port: int = 0,
    ) -> None:
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
        self.sockets: dict[int, StunSocket | ProbeFailed] = {}
        self.resolved: dict[tuple[str, int], asyncio.Task[str]] = {}
        self.ssl_contexts: dict[bool, ssl.SSLContext] = {}
        self.https_tasks: set[asyncio.Task[object]] = set()
        self.left = 0
        self.bind_ip = bind_ip
        self.bind_port = bind_port
        self.geo = geo_for

    def close(self) -> None:
        for s in self.sockets.values():
            if isinstance(s, StunSocket):
                s.close()

    def _socket(self, family: Family) -> StunSocket:
        got = self.sockets.get(family)
        if got is None:
            if self.bind_ip is not None and (":" in self.bind_ip) != (family == 6):
                got = ProbeFailed(f"no IPv{family} socket: the bind address {self.bind_ip} is IPv{10 - family}")
            else:
                try:
                    got = StunSocket(family, self.loop, bind_ip=self.bind_ip, bind_port=self.bind_port)
                except OSError as err:
                    got = ProbeFailed(f"no IPv{family} socket: {describe_error(err)}")
            self.sockets[family] = got
        if isinstance(got, ProbeFailed):
            raise got
        return got

    def bind_check(self) -> None:
        """Open the sockets of the bind address's family now: an address that cannot be bound is bad input."""
        family: Family = 6 if self.bind_ip is not None and ":" in self.bind_ip else 4
        try:
            self._socket(family)
        except ProbeFailed as err:
            where = dial.join_host_port(self.bind_ip or ("0.0.0.0" if family == 4 else "::"), self.bind_port)
            raise InputError(f"cannot bind the STUN socket to {where}: {str(err).split(': ', 1)[-1]}") from None

    def _resolve(self, host: str, family: Family) -> asyncio.Task[str]:
        """The resolution of *host* for *family*, started once and shared by every probe that needs it."""
        key = (host, family)
        task = self.resolved.get(key)
        if task is None:
            task = self.loop.create_task(_first_address(host, family))
            self.resolved[key] = task
        return task

    @property
    def stats(self) -> StunStats:
        """What the STUN sockets received, all families together."""
        total = StunStats()
        for s in self.sockets.values():
            if isinstance(s, StunSocket):
                total.add(s.stats)
        return total

    # HTTPS -------------------------------------------------------------------------------------

    async def _https_region(self, node: DERPNode) -> tuple[float | None, str | None]:
        """The HTTPS latency of *node* within the overall deadline, or why there is none."""
        from derptool.net.netcheck import https  # lazy: needed only where STUN gets no answer (start-up time)

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
            return None, f"HTTPS: {describe_error(err)}"

    # regions -----------------------------------------------------------------------------------

    async def execute(self) -> list[tuple[RegionResult, list[ProbeResult]]]:
        """Measure every region of the plan; one (result, probe results) pair per region, in plan order."""
        regions = self.plan.regions
        out: list[tuple[RegionResult, list[ProbeResult]] | None] = [None] * len(regions)
        self.left = len(regions)
        self.all_done: asyncio.Future[None] = self.loop.create_future()
        states: list[RegionProbes] = []
        for i, rp in enumerate(regions):
            if rp.skip:
                res = self._new_result(rp)
                res.error = rp.skip
                out[i] = (res, [])
                self.left -= 1
                continue
            early = None
            if self.https and rp.https_node is not None:
                early = self.loop.create_task(self._https_region(rp.https_node))
                self.https_tasks.add(early)
            # the region's result (geography and all) is made when its probes end, so sending starts sooner
            states.append(RegionProbes(rp, partial(self._stun_done, out, i, early)))
        phase = StunPhase(
            self.loop,
            self.start,
            self.stun_deadline,
            sockets=self._socket,
            resolve=self._resolve,
            unusable=self.unusable,
        )
        try:
            if self.left:
                phase.begin(states)
            if self.left:
                # every wait is bounded by a deadline; the grace only covers closing sockets
                await asyncio.wait([self.all_done], timeout=self.deadline + 1.0 - self.loop.time())
        finally:
            phase.stop()
            for t in self.https_tasks:
                t.cancel()
        final: list[tuple[RegionResult, list[ProbeResult]]] = []
        for i, rp in enumerate(regions):
            got = out[i]
            if got is None:
                res = self._new_result(rp)
                res.error = f"no answer within {self.timeout:.1f} s"
                got = (res, [])
            final.append(got)
        return final

    def _new_result(self, rp: RegionPlan) -> RegionResult:
        region = rp.region
        geo = self.geo(region)
        score = None
        if self.dmap.home_params is not None:
            score = self.dmap.home_params.region_score.get(region.region_id)
        return RegionResult(
            id=region.region_id,
            code=region.region_code,
            name=region.region_name,
            country=geo.country,
            continent=geo.continent,
            avoid=region.avoid,
            score=score,
        )

    def _stun_done(
        self,
        out: list[tuple[RegionResult, list[ProbeResult]] | None],
        i: int,
        early: asyncio.Task[tuple[float | None, str | None]] | None,
        state: RegionProbes,
    ) -> None:
        """A region's STUN probes have ended: take their outcome, then finish it (over HTTPS if needed)."""
        rp = state.plan
        res = self._new_result(rp)
        results = state.results
        errors: list[str] = []
        try:
            errors = self._take_stun(rp, res, state)
            https_task = early
            if https_task is None and res.latency_ms is None and rp.https_node is not None:
                https_task = self.loop.create_task(self._https_region(rp.https_node))
                self.https_tasks.add(https_task)
            if https_task is not None:
                finish = self.loop.create_task(self._https_done(out, i, res, results, errors, https_task))
                self.https_tasks.add(finish)
                return
            if res.latency_ms is None and rp.https_node is None and rp.probes:
                errors.append("no HTTPS fallback: every node is STUN-only")
        except Exception as err:  # one bad region never spoils the others
            errors = [f"{type(err).__name__}: {err}"]
        self._finish(out, i, res, results, errors)

    def _take_stun(self, rp: RegionPlan, res: RegionResult, state: RegionProbes) -> list[str]:
        errors: list[str] = []
        for outcome in state.families:
            if outcome.family == 4:
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
        elif state.families and all(r.skipped for f in state.families for r in f.results):
            families = "/".join(f"IPv{f}" for f in sorted(self.unusable))
            errors.append(f"no STUN probe sent: this machine has no usable {families}")
        return errors

    async def _https_done(
        self,
        out: list[tuple[RegionResult, list[ProbeResult]] | None],
        i: int,
        res: RegionResult,
        results: list[ProbeResult],
        errors: list[str],
        task: asyncio.Task[tuple[float | None, str | None]],
    ) -> None:
        ms, err = await task
        node = self.plan.regions[i].https_node
        res.https_latency_ms = ms
        if ms is not None:
            res.latency_ms, res.node, res.method = ms, node.name if node else None, "https"
        else:
            res.probe_errors += 1
            if not any(err and e.endswith(": " + err.removeprefix("HTTPS: ")) for e in errors):
                errors.append(err or "HTTPS failed")
        self._finish(out, i, res, results, errors)

    def _finish(
        self,
        out: list[tuple[RegionResult, list[ProbeResult]] | None],
        i: int,
        res: RegionResult,
        results: list[ProbeResult],
        errors: list[str],
    ) -> None:
        if res.latency_ms is None:
            res.error = "; ".join(dict.fromkeys(errors)) or "no answer"
        out[i] = (res, results)
        if self.progress is not None:
            self.progress(res)
        self.left -= 1
        if self.left == 0 and not self.all_done.done():
            self.all_done.set_result(None)


async def _first_address(host: str, family: Family) -> str:
    return (await dial.resolve(host, family=family))[0]


async def run(
    dmap: DERPMap,
    *,
    map_source: str = "",
    plan: ProbePlan | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    stun_timeout: float | None = None,
    https: bool = False,
    ipv4: bool | None = True,
    ipv6: bool | None = True,
    ca_file: str | None = None,
    progress: Callable[[RegionResult], None] | None = None,
    previous_preferred: int | None = None,
    bind_ip: str | None = None,
    bind_port: int = 0,
) -> Report:
    """Measure every region of *dmap* (or of *plan*) at once and return the :class:`Report`.

    *timeout* bounds the whole run; the STUN phase lasts at most *stun_timeout* (default: 3 s, or 60 % of a
    shorter timeout). *https* measures every region over HTTPS too (its latency then comes from HTTPS);
    otherwise HTTPS measures only regions without a UDP answer. *ca_file* adds a CA to trust for HTTPS.
    *ipv4*/*ipv6*: True probes the family, False does not, None probes it only where this machine can use
    it (as netcheck does; loopback addresses are always probed). *previous_preferred*, the preferred
    region of the last run, is kept unless another is clearly better (see :func:`preferred_region`).
    *bind_ip*/*bind_port*: the local address and UDP port the STUN sockets are bound to (``tailscale
    netcheck --bind-address/--bind-port``); a family other than *bind_ip*'s gets no socket.

    Raises :class:`~derptool.errors.InputError` for a timeout that is not positive, a CA file that cannot be
    used, or a bind address that cannot be bound; every other network failure is recorded in the report.
    Notices (ignored STUN packets) are in ``Report.notes``.
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
    report = Report(map_source=map_source, started=time.time(), incremental=plan.incremental)
    t0 = time.perf_counter()
    runner = _Runner(
        plan,
        dmap,
        timeout=timeout,
        stun_timeout=stun_timeout,
        https=https,
        ca_file=ca_file,
        progress=progress,
        unusable=unusable,
        bind_ip=bind_ip,
        bind_port=bind_port,
    )
    try:
        if bind_ip is not None or bind_port:
            runner.bind_check()
        for res, probes in await runner.execute():
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


def measure(
    dmap: DERPMap,
    *,
    map_source: str = "",
    plan: ProbePlan | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    stun_timeout: float | None = None,
    https: bool = False,
    ipv4: bool | None = True,
    ipv6: bool | None = True,
    ca_file: str | None = None,
    progress: Callable[[RegionResult], None] | None = None,
    previous_preferred: int | None = None,
    bind_ip: str | None = None,
    bind_port: int = 0,
) -> Report:
    """:func:`run` in a fresh event loop, for callers that are not async (same parameters)."""
    return asyncio.run(
        run(
            dmap,
            map_source=map_source,
            plan=plan,
            timeout=timeout,
            stun_timeout=stun_timeout,
            https=https,
            ipv4=ipv4,
            ipv6=ipv6,
            ca_file=ca_file,
            progress=progress,
            previous_preferred=previous_preferred,
            bind_ip=bind_ip,
            bind_port=bind_port,
        )
    )
