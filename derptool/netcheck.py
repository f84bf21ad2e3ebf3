"""DERP latency measurement the way Tailscale's ``netcheck`` does it: a probe plan, then one asyncio run.

:func:`make_plan` turns a map into data: for each region that is not ``NoMeasureNoHome`` and has nodes, three
STUN probes per address family, probe *i* to node *i mod len(nodes)* starting at *i* × 100 ms. A family is
probed where the node has an address for it (``"none"`` disables it, an empty one means "resolve HostName");
nodes with ``STUNPort`` -1 are skipped; STUN-only nodes are probed.

:func:`run` executes a plan in one event loop, every region at once. All STUN probes of a family share one
UDP socket (so the addresses the servers report can be compared, as netcheck does); answers are matched
by transaction ID *and* source address, anything else is ignored. ICMP errors (port unreachable) are read
from the socket's error queue on Linux, so a closed port fails its probe at once. A region's latency per
family is the round trip of its first answer (which, as in netcheck, cancels the region's other probes of
that family); the region's latency is the lower of the two. Regions without a UDP answer after the STUN
phase (or all of them with ``https=True``) are measured by HTTPS: ``GET /derp/latency-check`` timed on an
already established TLS connection.

The preferred region is the one with the lowest latency (each first multiplied by its
``HomeParams.RegionScore``, when positive) that is not ``Avoid``. ``Avoid`` regions are measured and shown
but never preferred.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import ipaddress
import os
import platform
import socket
import ssl
import struct
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from derptool import stun
from derptool.derpmap import DERPMap, DERPNode, DERPRegion, is_ip

PROBES_PER_FAMILY = 3
PROBE_SPACING = 0.100
"""Seconds between the start of a region's successive probes (netcheck's initial retransmit time)."""
DEFAULT_TIMEOUT = 5.0
STUN_PHASE = 3.0
"""Seconds the STUN phase may last (at most 60 % of the overall timeout) before HTTPS takes over."""
LATENCY_CHECK_PATH = "/derp/latency-check"

Family = Literal[4, 6]
Method = Literal["stun", "https"]

_LINUX = sys.platform.startswith("linux")
_IP_RECVERR = 11
_IPV6_RECVERR = 25
# SO_TIMESTAMPNS is 35 on the asm-generic ABI (x86, arm, riscv, powerpc ...), other values elsewhere.
_SO_TIMESTAMPNS = 35 if _LINUX and platform.machine().lower().startswith(
    ("x86", "amd64", "i386", "i686", "aarch64", "arm", "riscv", "ppc", "s390", "loongarch")) else None


# -- the plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One STUN probe: which node, which family, when (seconds after the start) and where to."""

    region_id: int
    node: str
    family: Family
    delay: float
    host: str
    """An IP address, or a host name to resolve for *family*."""
    port: int


@dataclass(frozen=True)
class RegionPlan:
    """What to do for one region."""

    region: DERPRegion
    probes: tuple[Probe, ...]
    https_node: DERPNode | None
    """The node to measure over HTTPS (the first that serves DERP), if any."""
    skip: str | None = None
    """Why the region is not measured at all (``NoMeasureNoHome``, no nodes)."""
    stun_note: str | None = None
    """Why the region has no STUN probes although it is measured."""


@dataclass(frozen=True)
class ProbePlan:
    """The whole plan, one entry per region of the map (sorted by region ID)."""

    regions: tuple[RegionPlan, ...]

    @property
    def probes(self) -> list[Probe]:
        """Every STUN probe of the plan."""
        return [p for rp in self.regions for p in rp.probes]


def _stun_host(node: DERPNode, family: Family) -> str | None:
    """The address to probe *node* at for *family*, the host name to resolve, or None (no such family)."""
    given = node.ipv4 if family == 4 else node.ipv6
    if given == "none":
        return None
    if node.stun_test_ip:
        test_ip = ipaddress.ip_address(node.stun_test_ip)
        return str(test_ip) if test_ip.version == family else None
    if given:
        return given
    if is_ip(node.host_name):
        return node.host_name if ipaddress.ip_address(node.host_name).version == family else None
    return node.host_name


def make_plan(dmap: DERPMap, *, ipv4: bool = True, ipv6: bool = True) -> ProbePlan:
    """The full-report probe plan for *dmap* (netcheck's initial plan), as data."""
    families: list[Family] = []
    if ipv4:
        families.append(4)
    if ipv6:
        families.append(6)
    out = []
    for region in dmap.region_list():
        https_node = next((n for n in region.nodes if not n.stun_only), None)
        if region.no_measure_no_home:
            out.append(RegionPlan(region, (), None, skip="not measured: NoMeasureNoHome"))
            continue
        if not region.nodes:
            out.append(RegionPlan(region, (), None, skip="not measured: the region has no nodes"))
            continue
        probes = []
        for family in families:
            for i in range(PROBES_PER_FAMILY):
                node = region.nodes[i % len(region.nodes)]
                port = node.effective_stun_port
                host = _stun_host(node, family)
                if port is None or host is None:
                    continue
                probes.append(Probe(region.region_id, node.name, family, i * PROBE_SPACING, host, port))
        note = None
        if not probes:
            if all(n.effective_stun_port is None for n in region.nodes):
                note = "STUN is disabled on every node (STUNPort -1)"
            elif not families:
                note = "both IPv4 and IPv6 are turned off"
            else:
                note = "no node has an address for the probed families"
        out.append(RegionPlan(region, tuple(probes), https_node, stun_note=note))
    return ProbePlan(tuple(out))


# -- results -------------------------------------------------------------------------------------


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

    def to_data(self) -> dict[str, Any]:
        """The region as in ``derptool latency --format json``."""
        return {
            "id": self.id, "code": self.code, "name": self.name, "country": self.country,
            "continent": self.continent, "latency_ms": _round(self.latency_ms),
            "v4_latency_ms": _round(self.v4_latency_ms), "v6_latency_ms": _round(self.v6_latency_ms),
            "method": self.method, "node": self.node, "error": self.error,
        }


def _round(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 3)


@dataclass
class Report:
    """The outcome of a run: a value, rendered by :mod:`derptool.render`."""

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
        }


def preferred_region(regions: list[RegionResult]) -> int | None:
    """The lowest latency (times its RegionScore, when positive) of a region that is not Avoid."""
    best: tuple[float, int] | None = None
    for r in regions:
        if r.latency_ms is None or r.avoid:
            continue
        scored = r.latency_ms * r.score if r.score is not None and r.score > 0 else r.latency_ms
        if best is None or (scored, r.id) < best:
            best = (scored, r.id)
    return None if best is None else best[1]


def _format_addr(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


# -- the UDP side --------------------------------------------------------------------------------


class _ProbeFailed(Exception):
    pass


@dataclass
class _Pending:
    txid: bytes
    dest: tuple[str, int]
    sent_ns: int
    sent_perf: float
    future: asyncio.Future[tuple[float, stun.BindingResponse]]
    ignored: str | None = None


_ASYNC_ERRORS = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN,
                 errno.EPROTO, errno.EMSGSIZE}


class _StunSocket:
    """One UDP socket per family shared by every probe; answers matched by transaction ID and source."""

    def __init__(self, family: Family, loop: asyncio.AbstractEventLoop) -> None:
        self.family = family
        self.loop = loop
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        self.sock = socket.socket(af, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        try:
            if family == 6:
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            self.sock.bind(("0.0.0.0", 0) if family == 4 else ("::", 0))
        except OSError:
            self.sock.close()
            raise
        self.recverr = False
        if _LINUX:
            with contextlib.suppress(OSError):
                if family == 4:
                    self.sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
                else:
                    self.sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
                self.recverr = True
        self.timestamps = False
        if _SO_TIMESTAMPNS is not None:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                self.timestamps = True
        self.pending: dict[bytes, _Pending] = {}
        loop.add_reader(self.sock.fileno(), self._readable)

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def send(self, ip: str, port: int) -> _Pending:
        txid = stun.new_transaction_id()
        packet = stun.binding_request(txid)
        fut: asyncio.Future[tuple[float, stun.BindingResponse]] = self.loop.create_future()
        pending = _Pending(txid, (ip, port), 0, 0.0, fut)
        self.pending[txid] = pending
        for attempt in range(4):
            pending.sent_perf = time.perf_counter()
            pending.sent_ns = time.time_ns()
            try:
                self.sock.sendto(packet, (ip, port))
                return pending
            except OSError as err:
                # With IP_RECVERR, an ICMP error caused by *another* probe is reported by the next call on
                # the socket (and so cleared); only a repeated error is this probe's own.
                if self.recverr and attempt < 3 and err.errno in _ASYNC_ERRORS:
                    continue
                del self.pending[txid]
                raise _ProbeFailed(_describe_os_error(err)) from None
        raise AssertionError("unreachable")

    def forget(self, pending: _Pending) -> None:
        self.pending.pop(pending.txid, None)

    def _readable(self) -> None:
        self._drain_errors()
        for _ in range(256):
            try:
                data, anc, _flags, addr = self.sock.recvmsg(2048, 256)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drain_errors()
                continue
            now_perf = time.perf_counter()
            kernel_ns = _timestamp(anc)
            self._dispatch(data, addr, kernel_ns, now_perf)

    def _dispatch(self, data: bytes, addr: Any, kernel_ns: int | None, now_perf: float) -> None:
        if len(data) < stun.HEADER_LEN:
            return
        pending = self.pending.get(bytes(data[8:20]))
        if pending is None:
            # no such transaction (a wrong ID, garbage, or a late answer): ignored, but noted on a
            # probe waiting for an answer from that address
            pending = next((p for p in self.pending.values() if _same_addr(addr, p.dest)), None)
            if pending is not None and not pending.future.done():
                pending.ignored = "an answer with an unknown transaction ID was ignored"
            return
        if pending.future.done():
            return
        if not _same_addr(addr, pending.dest):
            pending.ignored = f"an answer from {_format_addr(addr[0], addr[1])} (not the server) was ignored"
            return
        try:
            resp = stun.parse_response(data, pending.txid)
        except stun.StunError as err:
            pending.ignored = f"an invalid answer was ignored ({err.reason})"
            return
        rtt_ms = (now_perf - pending.sent_perf) * 1000
        if kernel_ns is not None:
            precise = (kernel_ns - pending.sent_ns) / 1e6
            if 0 <= precise <= rtt_ms + 1:
                rtt_ms = precise
        pending.future.set_result((rtt_ms, resp))

    def _drain_errors(self) -> None:
        if not self.recverr:
            return
        for _ in range(256):
            try:
                data, anc, _flags, addr = self.sock.recvmsg(2048, 512, socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            code = _ee_errno(anc)
            pending = self.pending.get(bytes(data[8:20])) if len(data) >= 20 else None
            if pending is None and addr is not None:
                pending = next((p for p in self.pending.values() if _same_addr(addr, p.dest)), None)
            if pending is not None and not pending.future.done():
                text = f"{os.strerror(code).lower()} (ICMP)" if code else "ICMP error"
                if code == errno.ECONNREFUSED:
                    text = "connection refused (ICMP port unreachable)"
                pending.future.set_exception(_ProbeFailed(text))


def _timestamp(anc: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack_from("@qq", data)
            return int(sec) * 1_000_000_000 + int(nsec)
    return None


def _ee_errno(anc: list[tuple[int, int, bytes]]) -> int:
    for level, kind, data in anc:
        if (level, kind) in ((socket.IPPROTO_IP, _IP_RECVERR), (socket.IPPROTO_IPV6, _IPV6_RECVERR)) and len(data) >= 4:
            return int(struct.unpack_from("@I", data)[0])
    return 0


def _same_addr(addr: Any, dest: tuple[str, int]) -> bool:
    try:
        return bool(ipaddress.ip_address(str(addr[0]).split("%")[0]) == ipaddress.ip_address(dest[0])
                    and int(addr[1]) == dest[1])
    except (ValueError, IndexError, TypeError):
        return False


def _describe_os_error(err: OSError) -> str:
    if isinstance(err, socket.gaierror):
        return err.strerror or str(err)
    if err.errno == errno.ECONNREFUSED:
        return "connection refused"
    if err.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return (os.strerror(err.errno) if err.errno else str(err)).lower()
    return (err.strerror or str(err)).lower()


# -- the run -------------------------------------------------------------------------------------


@dataclass
class _FamilyOutcome:
    latency_ms: float | None = None
    node: str | None = None
    results: list[ProbeResult] = field(default_factory=list)


class _Runner:
    def __init__(self, plan: ProbePlan, dmap: DERPMap, *, timeout: float, stun_timeout: float, https: bool,
                 ca_file: str | None, progress: Callable[[RegionResult], None] | None) -> None:
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
        self.sockets: dict[int, _StunSocket | OSError] = {}
        self.resolved: dict[tuple[str, int], asyncio.Task[str]] = {}
        self.ssl_contexts: dict[tuple[bool, str], ssl.SSLContext] = {}

    def close(self) -> None:
        for s in self.sockets.values():
            if isinstance(s, _StunSocket):
                s.close()

    def _socket(self, family: Family) -> _StunSocket:
        got = self.sockets.get(family)
        if got is None:
            try:
                got = _StunSocket(family, self.loop)
            except OSError as err:
                got = err
            self.sockets[family] = got
        if isinstance(got, OSError):
            raise _ProbeFailed(f"no IPv{family} socket: {_describe_os_error(got)}")
        return got

    async def _resolve(self, host: str, family: Family) -> str:
        if is_ip(host):
            return host
        key = (host, family)
        task = self.resolved.get(key)
        if task is None:
            task = self.loop.create_task(_resolve_name(self.loop, host, family))
            self.resolved[key] = task
        return await asyncio.shield(task)

    # STUN --------------------------------------------------------------------------------------

    async def _probe(self, probe: Probe) -> ProbeResult:
        await asyncio.sleep(max(0.0, self.start + probe.delay - self.loop.time()))
        dest: str | None = None
        pending: _Pending | None = None
        sock: _StunSocket | None = None
        try:
            async with asyncio.timeout_at(self.stun_deadline):
                ip = await self._resolve(probe.host, probe.family)
                dest = _format_addr(ip, probe.port)
                sock = self._socket(probe.family)
                pending = sock.send(ip, probe.port)
                rtt_ms, resp = await pending.future
            return ProbeResult(probe, dest, latency_ms=rtt_ms, mapped=_format_addr(resp.ip, resp.port))
        except TimeoutError:
            phase = self.stun_deadline - self.start
            msg = f"no answer in the {phase:.1f} s STUN phase" if pending else f"timed out after {phase:.1f} s"
            if pending is not None and pending.ignored:
                msg += f"; {pending.ignored}"
            return ProbeResult(probe, dest, error=msg)
        except _ProbeFailed as err:
            return ProbeResult(probe, dest, error=str(err))
        except OSError as err:
            return ProbeResult(probe, dest, error=_describe_os_error(err))
        finally:
            if sock is not None and pending is not None:
                sock.forget(pending)

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

    def _ssl_context(self, node: DERPNode) -> ssl.SSLContext:
        pinned = node.cert_name.startswith("sha256-raw:")
        key = (node.insecure_for_tests or pinned, self.ca_file or "")
        ctx = self.ssl_contexts.get(key)
        if ctx is None:
            ctx = ssl.create_default_context()
            if key[0]:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            elif self.ca_file:
                ctx.load_verify_locations(cafile=self.ca_file)
            self.ssl_contexts[key] = ctx
        return ctx

    async def _https(self, node: DERPNode) -> float:
        """Latency of ``GET /derp/latency-check`` on an established TLS connection, in ms."""
        if node.ipv4 not in ("", "none"):
            host = node.ipv4
        elif node.ipv6 not in ("", "none"):
            host = node.ipv6
        else:
            host = node.host_name
            if not is_ip(host):
                host = await self._resolve(host, 4 if node.ipv4 != "none" else 6)
        port = node.effective_derp_port
        ctx = self._ssl_context(node)
        server_name = None if node.cert_name.startswith("sha256-raw:") else node.tls_name
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=server_name or "")
            if node.cert_name.startswith("sha256-raw:"):
                _check_pin(writer, node.cert_name)
            host_header = node.host_name if port == 443 else f"{_bracket(node.host_name)}:{port}"
            request = (f"GET {LATENCY_CHECK_PATH} HTTP/1.1\r\nHost: {host_header}\r\n"
                       "User-Agent: derptool\r\nAccept: */*\r\nConnection: close\r\n\r\n").encode()
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            elapsed = (time.perf_counter() - started) * 1000
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 0.2)
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise _ProbeFailed(f"not an HTTP answer: {status_line[:60]!r}")
        if int(parts[1]) > 299:
            raise _ProbeFailed(f"HTTP status {status_line.split(' ', 1)[1]}")
        return elapsed

    async def _https_region(self, node: DERPNode) -> tuple[float | None, str | None]:
        try:
            async with asyncio.timeout_at(self.deadline):
                return await self._https(node), None
        except TimeoutError:
            return None, f"HTTPS: no answer within {self.timeout:.1f} s"
        except _ProbeFailed as err:
            return None, f"HTTPS: {err}"
        except ssl.SSLCertVerificationError as err:
            return None, f"HTTPS: TLS verification failed: {err.verify_message}"
        except (ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as err:
            return None, f"HTTPS: {type(err).__name__}: {err}"
        except OSError as err:
            return None, f"HTTPS: {_describe_os_error(err)}"

    # a region ----------------------------------------------------------------------------------

    async def region(self, rp: RegionPlan) -> tuple[RegionResult, list[ProbeResult]]:
        from derptool.geo import geo_for

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


async def _resolve_name(loop: asyncio.AbstractEventLoop, host: str, family: Family) -> str:
    name = host.rstrip(".").lower()
    if name == "invalid" or name.endswith(".invalid"):
        # RFC 6761 section 6.4: never resolved, always a negative answer (and no DNS query).
        raise _ProbeFailed(f"cannot resolve {host}: .invalid names never resolve (RFC 6761)")
    try:
        infos = await loop.getaddrinfo(host, None, family=socket.AF_INET if family == 4 else socket.AF_INET6,
                                       type=socket.SOCK_DGRAM)
    except socket.gaierror as err:
        raise _ProbeFailed(f"cannot resolve {host} (IPv{family}): {err.strerror or err}") from None
    for info in infos:
        return str(info[4][0]).split("%")[0]
    raise _ProbeFailed(f"cannot resolve {host} (IPv{family}): no address")


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _check_pin(writer: asyncio.StreamWriter, cert_name: str) -> None:
    sslobj = writer.get_extra_info("ssl_object")
    der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
    want = cert_name.split(":", 1)[1].lower()
    if der is None or hashlib.sha256(der).hexdigest() != want:
        raise _ProbeFailed("TLS certificate does not match the sha256-raw pin in CertName")


def _summarise(report: Report) -> None:
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
    report.preferred_region = preferred_region(report.regions)
    report.regions.sort(key=lambda r: (r.latency_ms is None, r.latency_ms or 0.0, r.id))


async def run(dmap: DERPMap, *, map_source: str = "", plan: ProbePlan | None = None,
              timeout: float = DEFAULT_TIMEOUT, stun_timeout: float | None = None, https: bool = False,
              ipv4: bool = True, ipv6: bool = True, ca_file: str | None = None,
              progress: Callable[[RegionResult], None] | None = None) -> Report:
    """Measure every region of *dmap* (or of *plan*) at once and return the :class:`Report`.

    *timeout* bounds the whole run; the STUN phase lasts at most *stun_timeout* (default: 3 s, or 60 % of a
    shorter timeout). *https* measures every region over HTTPS too (its latency then comes from HTTPS);
    otherwise HTTPS measures only regions without a UDP answer. *ca_file* adds a CA to trust for HTTPS.
    """
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    if stun_timeout is None:
        stun_timeout = min(STUN_PHASE, timeout * 0.6)
    stun_timeout = min(stun_timeout, timeout)
    plan = plan or make_plan(dmap, ipv4=ipv4, ipv6=ipv6)
    report = Report(map_source=map_source, started=time.time())
    t0 = time.perf_counter()
    runner = _Runner(plan, dmap, timeout=timeout, stun_timeout=stun_timeout, https=https, ca_file=ca_file,
                     progress=progress)
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
        runner.close()
        for t in runner.resolved.values():
            t.cancel()
    report.duration_s = time.perf_counter() - t0
    _summarise(report)
    return report


def measure(dmap: DERPMap, **kwargs: Any) -> Report:
    """Run :func:`run` in a fresh event loop (for callers that are not async)."""
    coro: Coroutine[Any, Any, Report] = run(dmap, **kwargs)
    return asyncio.run(coro)
