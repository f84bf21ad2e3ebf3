"""THE STUN socket of derptool: one UDP socket per address family, shared by every probe sent from it.

``latency`` (:mod:`derptool.net.netcheck`), ``nat`` (:mod:`derptool.net.natprobe`) and the STUN step of
``check`` all send and receive through :class:`StunSocket`, so a stray packet or an ICMP error means the
same thing to each of them. One receive path:

* an answer is matched to its probe by transaction ID in one dict lookup;
* an answer from another address or port than the probe was sent to is ignored (and counted);
* an answer to a probe already finished (late) or with an ID never sent (stray) is dropped after that
  one lookup; a stray is noted on the probes waiting for its source (a second dict lookup, by address);
* on Linux, ICMP errors are read from the socket's error queue (``IP_RECVERR``/``IPV6_RECVERR``): a closed
  port fails the pending probes to that destination at once instead of at the deadline;
* kernel receive timestamps (``SO_TIMESTAMPNS``) make round trips independent of event-loop delays, and
  the receive buffer is large, so a burst of answers from a thousand regions is not dropped by the kernel.

:meth:`StunSocket.request` is the asyncio API; :class:`BlockingStunClient` drives the same sockets from
synchronous code. Besides the STUN socket, this module holds the two route lookups that open a UDP socket
without sending anything (:func:`usable_families`, :func:`route_source`): no other module of
:mod:`derptool.net` opens a UDP socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import socket
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from derptool.errors import ProbeFailed, StunTimeout
from derptool.net import stun
from derptool.net.describe import describe_error
from derptool.net.dial import join_host_port

_LINUX = sys.platform.startswith("linux")
_IP_RECVERR = 11
_IPV6_RECVERR = 25
# SO_TIMESTAMPNS is 35 on the asm-generic ABI (x86, arm, riscv, powerpc ...), other values elsewhere.
_SO_TIMESTAMPNS = (
    35
    if _LINUX
    and os.uname()
    .machine.lower()
    .startswith(("x86", "amd64", "i386", "i686", "aarch64", "arm", "riscv", "ppc", "s390", "loongarch"))
    else None
)
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33 if _LINUX else None)

RECEIVE_BUFFER = 4 << 20
"""Bytes of kernel receive buffer asked for (the kernel may grant less without privileges)."""
_FINISHED_KEPT = 1 << 16
"""Transaction IDs of finished probes remembered, so their late answers are told from strays."""
_ASYNC_ERRORS = {
    errno.ECONNREFUSED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.EHOSTDOWN,
    errno.EPROTO,
    errno.EMSGSIZE,
}

Address = tuple[str, int]


@dataclass(frozen=True)
class StunAnswer:
    """A probe's answer: the round trip and what the server said."""

    rtt_ms: float
    response: stun.BindingResponse

    @property
    def mapped(self) -> str:
        """The address the server saw us at, as ``ip:port`` (``[ip]:port`` for IPv6)."""
        return join_host_port(self.response.ip, self.response.port)


class Pending:
    """A request in flight: its future gets a :class:`StunAnswer` or a :class:`ProbeFailed`."""

    __slots__ = ("dest", "future", "ignored", "sent_ns", "sent_perf", "txid")

    def __init__(self, txid: bytes, dest: Address, future: asyncio.Future[StunAnswer]) -> None:
        self.txid = txid
        self.dest = dest
        """Where the request went (the IP in canonical text form)."""
        self.future = future
        self.sent_ns = 0
        self.sent_perf = 0.0
        self.ignored: str | None = None
        """Why the last packet that looked meant for this probe was ignored, if one was."""


@dataclass
class StunStats:
    """What the socket received, by how it was handled."""

    answers: int = 0
    late: int = 0
    """Answers to probes already finished (answered, failed or given up), dropped by ID."""
    stray: int = 0
    """Packets with a transaction ID never sent from this socket, or too short to carry one."""
    foreign: int = 0
    """Answers with a probe's ID from another address or port than the probe's server."""
    invalid: int = 0
    """Packets with a probe's ID from its server that are not a valid binding response."""
    icmp: int = 0
    """ICMP errors read from the error queue."""

    def note(self) -> str | None:
        """One line about ignored packets (strays, foreign sources, invalid answers), or None."""
        parts = [
            f"{n} {what}"
            for n, what in (
                (self.stray, "with an unknown transaction ID"),
                (self.foreign, "from another address than the probed server"),
                (self.invalid, "not a valid STUN answer"),
            )
            if n
        ]
        return f"ignored STUN packets: {', '.join(parts)}" if parts else None

    def add(self, other: StunStats) -> None:
        """Add *other*'s counts to these."""
        for name in ("answers", "late", "stray", "foreign", "invalid", "icmp"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _canonical(ip: str, af: int) -> str:
    """*ip* as the kernel writes it back (so received addresses compare as plain strings)."""
    try:
        return socket.inet_ntop(af, socket.inet_pton(af, ip.split("%", 1)[0]))
    except (OSError, ValueError):
        return ip


class StunSocket:
    """One UDP socket of one family shared by every probe; see the module docstring for the receive rules.

    Create it inside the event loop that will use it (or pass *loop*); close it when done.
    """

    def __init__(
        self,
        family: int,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        bind_ip: str | None = None,
        bind_port: int = 0,
        receive_buffer: int = RECEIVE_BUFFER,
    ) -> None:
        self.family = family
        self.loop = loop or asyncio.get_running_loop()
        self._af = socket.AF_INET if family == 4 else socket.AF_INET6
        self.sock = socket.socket(self._af, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            if family == 6:
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            self._grow_buffer(receive_buffer)
            self.sock.bind((bind_ip or ("0.0.0.0" if family == 4 else "::"), bind_port))
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
        self.stats = StunStats()
        self.pending: dict[bytes, Pending] = {}
        self._by_dest: dict[Address, dict[bytes, Pending]] = {}
        self._finished: dict[bytes, None] = {}
        self._closed = False
        self.loop.add_reader(self.sock.fileno(), self._readable)

    def _grow_buffer(self, size: int) -> None:
        if _SO_RCVBUFFORCE is not None:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, size)
                return
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    @property
    def local_port(self) -> int:
        """The local UDP port every probe of this socket is sent from."""
        return int(self.sock.getsockname()[1])

    def close(self) -> None:
        """Stop reading and close the socket; probes still pending fail."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        for p in list(self.pending.values()):
            if not p.future.done():
                p.future.set_exception(ProbeFailed("the STUN socket was closed"))
                p.future.exception()  # retrieved: nobody may be waiting any more
        self.pending.clear()
        self._by_dest.clear()

    # -- sending -------------------------------------------------------------------------------------

    def send(self, ip: str, port: int) -> Pending:
        """Send a fresh binding request to *ip*:*port*; raise :class:`ProbeFailed` if it cannot go out.

        Await ``pending.future`` for the answer and call :meth:`forget` when done with it.
        """
        txid = stun.new_transaction_id()
        packet = stun.binding_request(txid)
        pending = Pending(txid, (_canonical(ip, self._af), port), self.loop.create_future())
        self.pending[txid] = pending
        self._by_dest.setdefault(pending.dest, {})[txid] = pending
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
                self.forget(pending)
                raise ProbeFailed(describe_error(err)) from None
        raise AssertionError("unreachable")

    def forget(self, pending: Pending) -> None:
        """Stop expecting an answer for *pending*; a late answer is then dropped by its ID."""
        if self.pending.pop(pending.txid, None) is None:
            return
        waiting = self._by_dest.get(pending.dest)
        if waiting is not None:
            waiting.pop(pending.txid, None)
            if not waiting:
                del self._by_dest[pending.dest]
        self._finished[pending.txid] = None
        if len(self._finished) > _FINISHED_KEPT:
            del self._finished[next(iter(self._finished))]

    async def request(self, ip: str, port: int, *, deadline: float, retransmit: float | None = None) -> StunAnswer:
        """Ask *ip*:*port* for our address until the loop time *deadline*.

        With *retransmit*, a new request (with its own transaction ID, so each round trip is measured from
        its own request) goes out every *retransmit* seconds until one is answered. Raises
        :class:`ProbeFailed` (an ICMP error, a send error) or :class:`StunTimeout` at the deadline.
        """
        sent: list[Pending] = []
        try:
            while True:
                sent.append(self.send(ip, port))
                left = deadline - self.loop.time()
                wait = left if retransmit is None else min(left, retransmit)
                if wait > 0:
                    done, _ = await asyncio.wait(
                        [p.future for p in sent], timeout=wait, return_when=asyncio.FIRST_COMPLETED
                    )
                    for fut in done:
                        return fut.result()
                if retransmit is None or self.loop.time() >= deadline - 0.001:
                    raise StunTimeout(next((p.ignored for p in reversed(sent) if p.ignored), None))
        finally:
            for p in sent:
                self.forget(p)
                if p.future.done() and not p.future.cancelled():
                    p.future.exception()  # mark retrieved: only the first outcome counts

    # -- receiving -----------------------------------------------------------------------------------

    def _readable(self) -> None:
        self._drain_errors()
        for _ in range(256):
            try:
                data, anc, _flags, addr = self.sock.recvmsg(stun.MAX_PACKET_SIZE, 256)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drain_errors()
                continue
            now_perf = time.perf_counter()
            self._dispatch(data, addr, anc, now_perf)

    def _dispatch(self, data: bytes, addr: tuple[str, int], anc: list[tuple[int, int, bytes]], now_perf: float) -> None:
        txid = data[8:20]
        pending = self.pending.get(txid)
        if pending is None:
            if txid in self._finished:
                self.stats.late += 1
                return
            self.stats.stray += 1
            waiting = self._by_dest.get(self._source(addr))
            if waiting:
                for p in waiting.values():
                    p.ignored = "an answer with an unknown transaction ID was ignored"
            return
        if pending.future.done():
            self.stats.late += 1
            return
        source = self._source(addr)
        if source != pending.dest:
            self.stats.foreign += 1
            pending.ignored = f"an answer from {join_host_port(*source)} (not the server) was ignored"
            return
        try:
            resp = stun.parse_response(data, pending.txid)
        except stun.StunError as err:
            self.stats.invalid += 1
            pending.ignored = f"an invalid answer was ignored ({err.reason})"
            return
        rtt_ms = (now_perf - pending.sent_perf) * 1000
        kernel_ns = _timestamp(anc) if self.timestamps else None
        if kernel_ns is not None:
            precise = (kernel_ns - pending.sent_ns) / 1e6
            if 0 <= precise <= rtt_ms + 1:
                rtt_ms = precise
        self.stats.answers += 1
        pending.future.set_result(StunAnswer(rtt_ms, resp))

    @staticmethod
    def _source(addr: tuple[str, int]) -> Address:
        ip = addr[0]
        return (ip.split("%", 1)[0] if "%" in ip else ip, addr[1])

    def _drain_errors(self) -> None:
        if not self.recverr:
            return
        for _ in range(256):
            try:
                data, anc, _flags, addr = self.sock.recvmsg(2048, 512, socket.MSG_ERRQUEUE)
            except OSError:  # BlockingIOError: the queue is empty
                return
            self.stats.icmp += 1
            code = _ee_errno(anc)
            text = f"{os.strerror(code).lower()} (ICMP)" if code else "ICMP error"
            if code == errno.ECONNREFUSED:
                text = "connection refused (ICMP port unreachable)"
            # The error queue hands back the request that caused the error, sent to *addr*: every probe
            # waiting on that destination fails now (they would all meet the same fate).
            victims: list[Pending] = []
            if addr is not None:
                victims = list(self._by_dest.get(self._source(addr), {}).values())
            if not victims and len(data) >= stun.HEADER_LEN:
                own = self.pending.get(data[8:20])
                victims = [own] if own is not None else []
            for p in victims:
                if not p.future.done():
                    p.future.set_exception(ProbeFailed(text))


class BlockingStunClient:
    """The same :class:`StunSocket` for synchronous callers: a private event loop runs each exchange.

    Use as a context manager. :meth:`socket` opens (once) the socket of a family, so its local port can be
    read before or after :meth:`query`; every query of a family goes out from that one socket.
    """

    def __init__(self, *, bind_ip: str | None = None, bind_port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self._bind_ip = bind_ip
        self._bind_port = bind_port
        self._sockets: dict[int, StunSocket] = {}

    def socket(self, family: int) -> StunSocket:
        """The socket of *family* (4 or 6), opened on first use; raises ``OSError`` when it cannot be."""
        sock = self._sockets.get(family)
        if sock is None:
            sock = self._sockets[family] = StunSocket(
                family, self.loop, bind_ip=self._bind_ip, bind_port=self._bind_port
            )
        return sock

    @property
    def stats(self) -> StunStats:
        """The counts of every socket together."""
        total = StunStats()
        for s in self._sockets.values():
            total.add(s.stats)
        return total

    def query(
        self, dests: Sequence[Address], *, timeout: float, retransmit: float | None = None
    ) -> list[StunAnswer | ProbeFailed]:
        """Ask every destination at once (each from its family's socket); one result per destination.

        A result is the :class:`StunAnswer`, or the :class:`ProbeFailed` (:class:`StunTimeout` when no
        answer came within *timeout*) that says why not.
        """

        async def one(ip: str, port: int, deadline: float) -> StunAnswer | ProbeFailed:
            try:
                family = 6 if ":" in ip else 4
                return await self.socket(family).request(ip, port, deadline=deadline, retransmit=retransmit)
            except ProbeFailed as err:
                return err
            except OSError as err:
                return ProbeFailed(describe_error(err))

        async def every() -> list[StunAnswer | ProbeFailed]:
            deadline = self.loop.time() + timeout
            return list(await asyncio.gather(*(one(ip, port, deadline) for ip, port in dests)))

        return self.loop.run_until_complete(every())

    def close(self) -> None:
        """Close the sockets and the loop."""
        for s in self._sockets.values():
            s.close()
        self._sockets.clear()
        self.loop.close()

    def __enter__(self) -> BlockingStunClient:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


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


def route_source(family: int, ip: str, port: int) -> str | None:
    """The source address the kernel would use towards *ip*:*port* (a route lookup: nothing is sent)."""
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    try:
        with socket.socket(af, socket.SOCK_DGRAM) as s:
            s.connect((ip, port))
            return str(s.getsockname()[0]).split("%", 1)[0]
    except OSError:
        return None


def usable_families() -> set[int]:
    """Address families this machine can reach the Internet over (netcheck's HaveV4/HaveV6).

    A family counts when a route to a documentation address exists and its source address is usable: not
    link-local, and for IPv6 a global address (a ULA does not reach the Internet). Only a route lookup:
    ``connect`` on a UDP socket sends nothing.
    """
    out: set[int] = set()
    for family, probe_ip in ((4, "192.0.2.1"), (6, "2001:db8::1")):
        found = route_source(family, probe_ip, 9)
        if found is None:
            continue
        source = ipaddress.ip_address(found)
        if source.is_loopback or source.is_link_local or source.is_unspecified:
            continue
        if family == 6 and not source.is_global:
            continue
        out.add(family)
    return out
