"""The STUN phase of a report: every probe of a plan sent from one sorted schedule, answers handled by callback.

A thousand regions mean several thousand probes; one asyncio task (and one timer) per probe costs more than
the measurement itself. Here the probes are sorted by start time once and a single timer sends, each time
it fires, every probe that is due, then re-arms itself for the next start. An answer arrives as the done
callback of the probe's :class:`~derptool.net.stunclient.Pending` future (matched by transaction ID in the
socket), so no task waits per probe. One more timer ends the phase at its deadline.

Per region and address family (a :class:`FamilyProbes`), the first answer wins and forgets the family's
other probes, as in netcheck; a family whose every probe failed (ICMP error, send error, name that does
not resolve) ends at once rather than at the deadline. When all families of a region have ended, the
region's callback runs (the engine then finishes the region, over HTTPS where needed).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from functools import partial

from derptool.errors import ProbeFailed
from derptool.net import dial
from derptool.net.describe import describe_error
from derptool.net.netcheck.plan import Family, Probe, RegionPlan
from derptool.net.netcheck.report import ProbeResult
from derptool.net.stunclient import Pending, StunAnswer, StunSocket

SEND_SLACK = 0.0005
"""A probe due within this many seconds is sent now rather than by another turn of the timer."""

SocketFor = Callable[[Family], StunSocket]
Resolver = Callable[[str, Family], "asyncio.Task[str]"]


class FamilyProbes:
    """The probes of one region over one address family, and what they got."""

    __slots__ = ("done", "inflight", "latency_ms", "node", "probes", "region", "results", "unfinished")

    def __init__(self, region: RegionProbes, probes: list[Probe]) -> None:
        self.region = region
        self.probes = probes
        self.results: list[ProbeResult] = []
        self.latency_ms: float | None = None
        self.node: str | None = None
        self.done = False
        self.unfinished = len(probes)
        """Probes without a result yet (not sent, in flight, or waiting for their host name)."""
        self.inflight: dict[bytes, tuple[Pending, StunSocket, Probe, str]] = {}

    @property
    def family(self) -> Family:
        return self.probes[0].family


class RegionProbes:
    """The STUN probes of one region, grouped by family; ``on_done`` runs once every family has ended."""

    __slots__ = ("families", "left", "on_done", "plan")

    def __init__(self, plan: RegionPlan, on_done: Callable[[RegionProbes], None]) -> None:
        self.plan = plan
        self.on_done = on_done
        by_family: dict[int, list[Probe]] = {}
        for p in plan.probes:
            by_family.setdefault(p.family, []).append(p)
        self.families = [FamilyProbes(self, ps) for ps in by_family.values()]
        self.left = len(self.families)

    @property
    def results(self) -> list[ProbeResult]:
        """Every probe result of the region, family by family."""
        return [r for f in self.families for r in f.results]


class StunPhase:
    """Send every probe of *regions* on schedule and collect the answers until *deadline* (loop time).

    *sockets* gives the shared socket of a family (raising :class:`ProbeFailed` when there is none);
    *resolve* starts (or returns the running) name resolution of a host for a family; probes of a family
    in *unusable* towards a non-loopback address are recorded as skipped, not sent.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        start: float,
        deadline: float,
        *,
        sockets: SocketFor,
        resolve: Resolver,
        unusable: set[int],
    ) -> None:
        self.loop = loop
        self.start = start
        self.deadline = deadline
        self.sockets = sockets
        self.resolve = resolve
        self.unusable = unusable
        self.phase_s = deadline - start
        self.schedule: list[tuple[float, int, FamilyProbes, Probe]] = []
        self.next = 0
        self.timer: asyncio.TimerHandle | None = None
        self.deadline_timer: asyncio.TimerHandle | None = None
        self.open: set[FamilyProbes] = set()
        self.waiting_names: dict[FamilyProbes, list[Probe]] = {}
        self.finished = False

    def begin(self, regions: list[RegionProbes]) -> None:
        """Schedule every probe of *regions*; a region without probes ends now."""
        seq = 0
        for region in regions:
            if not region.families:
                region.on_done(region)
                continue
            for fam in region.families:
                self.open.add(fam)
                for p in fam.probes:
                    self.schedule.append((p.delay, seq, fam, p))
                    seq += 1
        self.schedule.sort(key=lambda e: (e[0], e[1]))
        if self.open:
            self.deadline_timer = self.loop.call_at(self.deadline, self.expire)
            self.tick()

    # -- sending -------------------------------------------------------------------------------------

    def tick(self) -> None:
        """Send every probe that is due, then wait for the next one's start."""
        self.timer = None
        if self.finished:
            return
        horizon = self.loop.time() - self.start + SEND_SLACK
        schedule = self.schedule
        while self.next < len(schedule) and schedule[self.next][0] <= horizon:
            _, _, fam, probe = schedule[self.next]
            self.next += 1
            if not fam.done:
                self.launch(fam, probe)
        if self.next < len(schedule) and not self.finished:
            self.timer = self.loop.call_at(self.start + schedule[self.next][0], self.tick)

    def launch(self, fam: FamilyProbes, probe: Probe) -> None:
        """Send *probe* now, or once its host name has resolved."""
        if _is_ip(probe.host):
            self.send(fam, probe, probe.host)
            return
        task = self.resolve(probe.host, probe.family)
        if task.done():
            self.resolved(fam, probe, task)
        else:
            self.waiting_names.setdefault(fam, []).append(probe)
            task.add_done_callback(partial(self.resolved, fam, probe))

    def resolved(self, fam: FamilyProbes, probe: Probe, task: asyncio.Task[str]) -> None:
        waiting = self.waiting_names.get(fam)
        if waiting is not None and probe in waiting:
            waiting.remove(probe)
        if fam.done or task.cancelled():
            return
        err = task.exception()
        if err is None:
            self.send(fam, probe, task.result())
        else:
            self.failed(fam, ProbeResult(probe, None, error=describe_error(err)))

    def send(self, fam: FamilyProbes, probe: Probe, ip: str) -> None:
        dest = dial.join_host_port(ip, probe.port)
        if probe.family in self.unusable and not ipaddress.ip_address(ip).is_loopback:
            self.failed(fam, ProbeResult(probe, dest, skipped=True))
            return
        try:
            sock = self.sockets(probe.family)
            pending = sock.send(ip, probe.port)
        except (ProbeFailed, OSError) as err:
            self.failed(fam, ProbeResult(probe, dest, error=describe_error(err)))
            return
        fam.inflight[pending.txid] = (pending, sock, probe, dest)
        pending.future.add_done_callback(partial(self.answered, fam, pending.txid))

    # -- receiving -----------------------------------------------------------------------------------

    def answered(self, fam: FamilyProbes, txid: bytes, fut: asyncio.Future[StunAnswer]) -> None:
        entry = fam.inflight.pop(txid, None)
        if entry is None or fut.cancelled():
            return
        pending, sock, probe, dest = entry
        sock.forget(pending)
        err = fut.exception()
        if err is not None:
            self.failed(fam, ProbeResult(probe, dest, error=describe_error(err)))
            return
        answer = fut.result()
        fam.results.append(ProbeResult(probe, dest, latency_ms=answer.rtt_ms, mapped=answer.mapped))
        fam.latency_ms, fam.node = answer.rtt_ms, probe.node
        self.end(fam)  # the first answer ends the family's other probes, as in netcheck

    def failed(self, fam: FamilyProbes, result: ProbeResult) -> None:
        fam.results.append(result)
        fam.unfinished -= 1
        if fam.unfinished <= 0 and not fam.inflight:
            self.end(fam)

    def end(self, fam: FamilyProbes) -> None:
        if fam.done:
            return
        fam.done = True
        for pending, sock, _, _ in fam.inflight.values():
            sock.forget(pending)
            pending.future.cancel()
        fam.inflight.clear()
        self.open.discard(fam)
        self.waiting_names.pop(fam, None)
        region = fam.region
        region.left -= 1
        if region.left == 0:
            region.on_done(region)
        if not self.open:
            self.stop()

    def expire(self) -> None:
        """The deadline: every probe still open fails with the reason it has."""
        self.deadline_timer = None
        msg = f"no answer in the {self.phase_s:.1f} s STUN phase"
        for fam in list(self.open):
            for pending, _, probe, dest in fam.inflight.values():
                ignored = pending.ignored
                fam.results.append(ProbeResult(probe, dest, error=f"{msg}; {ignored}" if ignored else msg))
            for probe in self.waiting_names.get(fam, []):
                fam.results.append(ProbeResult(probe, None, error=f"timed out after {self.phase_s:.1f} s"))
        for _, _, fam, probe in self.schedule[self.next :]:
            if not fam.done:  # due after the deadline: never sent
                fam.results.append(ProbeResult(probe, None, error=f"timed out after {self.phase_s:.1f} s"))
        for fam in list(self.open):
            self.end(fam)
        self.stop()

    def stop(self) -> None:
        """Stop the timers (the phase is over)."""
        self.finished = True
        for timer in (self.timer, self.deadline_timer):
            if timer is not None:
                timer.cancel()
        self.timer = self.deadline_timer = None


def _is_ip(host: str) -> bool:
    """True for an IPv4 or IPv6 address literal (a C call, not :mod:`ipaddress`: this runs per probe)."""
    for af in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(af, host.split("%", 1)[0])
        except (OSError, ValueError):
            continue
        return True
    return False
