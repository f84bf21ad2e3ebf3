"""The UDP side: one STUN socket per address family shared by every probe.

Answers are matched to probes by transaction ID *and* source address; anything else is ignored (and
noted on the probe waiting for that address). On Linux, ICMP errors are read from the socket's error
queue (``IP_RECVERR``), which returns the request that caused them, so a closed port fails its own probe
at once; kernel receive timestamps (``SO_TIMESTAMPNS``) make round trips independent of loop delays.
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
from dataclasses import dataclass
from typing import Any

from derptool.net import stun
from derptool.net.netcheck.plan import Family
from derptool.net.netcheck.report import format_addr

_LINUX = sys.platform.startswith("linux")
_IP_RECVERR = 11
_IPV6_RECVERR = 25
# SO_TIMESTAMPNS is 35 on the asm-generic ABI (x86, arm, riscv, powerpc ...), other values elsewhere.
_SO_TIMESTAMPNS = 35 if _LINUX and os.uname().machine.lower().startswith(
    ("x86", "amd64", "i386", "i686", "aarch64", "arm", "riscv", "ppc", "s390", "loongarch")) else None


class ProbeFailed(Exception):
    """A probe failed; the message says why."""


@dataclass
class Pending:
    """A request in flight: its future gets (round trip in ms, response) or a :class:`ProbeFailed`."""

    txid: bytes
    dest: tuple[str, int]
    sent_ns: int
    sent_perf: float
    future: asyncio.Future[tuple[float, stun.BindingResponse]]
    ignored: str | None = None


_ASYNC_ERRORS = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN,
                 errno.EPROTO, errno.EMSGSIZE}


class StunSocket:
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
        self.pending: dict[bytes, Pending] = {}
        loop.add_reader(self.sock.fileno(), self._readable)

    @property
    def local_port(self) -> int:
        """The local UDP port every probe of this family is sent from."""
        return int(self.sock.getsockname()[1])

    def close(self) -> None:
        """Stop reading and close the socket."""
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def send(self, ip: str, port: int) -> Pending:
        """Send a fresh binding request to *ip*:*port*; raise :class:`ProbeFailed` if it cannot go out."""
        txid = stun.new_transaction_id()
        packet = stun.binding_request(txid)
        fut: asyncio.Future[tuple[float, stun.BindingResponse]] = self.loop.create_future()
        pending = Pending(txid, (ip, port), 0, 0.0, fut)
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
                raise ProbeFailed(describe_os_error(err)) from None
        raise AssertionError("unreachable")

    def forget(self, pending: Pending) -> None:
        """Stop expecting an answer for *pending*; a late answer is then ignored."""
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
            pending.ignored = f"an answer from {format_addr(addr[0], addr[1])} (not the server) was ignored"
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
                pending.future.set_exception(ProbeFailed(text))


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


def describe_os_error(err: OSError) -> str:
    if isinstance(err, socket.gaierror):
        return err.strerror or str(err)
    if err.errno == errno.ECONNREFUSED:
        return "connection refused"
    if err.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return (os.strerror(err.errno) if err.errno else str(err)).lower()
    return (err.strerror or str(err)).lower()


def usable_families() -> set[int]:
    """Address families this machine can reach the Internet over (netcheck's HaveV4/HaveV6).

    A family counts when a route to a documentation address exists and its source address is usable: not
    link-local, and for IPv6 a global address (a ULA does not reach the Internet). Only a route lookup:
    ``connect`` on a UDP socket sends nothing.
    """
    out: set[int] = set()
    for family, af, probe_ip in ((4, socket.AF_INET, "192.0.2.1"), (6, socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(af, socket.SOCK_DGRAM) as s:
                s.connect((probe_ip, 9))
                source = ipaddress.ip_address(str(s.getsockname()[0]).split("%")[0])
        except OSError:
            continue
        if source.is_loopback or source.is_link_local or source.is_unspecified:
            continue
        if family == 6 and not source.is_global:
            continue
        out.add(family)
    return out
