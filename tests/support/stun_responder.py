"""A STUN responder for tests and benchmarks: answers Tailscale-style binding requests after a delay.

Standard library only (it does not import derptool, so it is an independent check of the client and
runs anywhere a Python interpreter does, e.g. inside a network namespace)::

    with StunResponder() as responder:
        ep = responder.add("127.0.3.1", delay_ms=40)
        ...  # probe ep.host, ep.port
        ep.applied_ms  # the delays really applied, one per answered request

Like derper, it answers only binding requests with SOFTWARE ``tailnode`` and a correct FINGERPRINT.
Each endpoint can misbehave: stay silent, or send a faulty packet first (``faults``): a response with a
wrong transaction ID, a correct response from another socket (``spoof``), random bytes (``garbage``)
or a cut-off response (``truncated``). Faults go out as soon as the request arrives, before the real
answer (if ``silent`` is false), so a client that accepted them would measure the wrong latency.

Timing: the benches use it as an instrument, so it keeps time. A delay counts from the request's
arrival in the kernel (``SO_TIMESTAMPNS``); the loop sleeps until 2 ms before the next answer is due
and then polls (epoll sleeps in whole milliseconds), sends due answers between received requests, and
writes its ``--log`` only when no answer is pending (a full pipe would block it). Answers leave within
tens of microseconds of due at 1 000 regions x 3 nodes; ``applied_ms`` and the log record what really
happened, including a stall of the machine.

From a shell: ``python -m tests.support.stun_responder --bind 127.0.0.1:3478 [--delay-ms N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gc
import heapq
import ipaddress
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

COOKIE = 0x2112A442
_SO_TIMESTAMPNS = 35 if sys.platform.startswith("linux") else None
"""Kernel receive timestamps (asm-generic value; a wrong guess elsewhere only loses the precision)."""
_SPIN = 0.002
"""How long before an answer is due the loop stops sleeping and polls."""
FAULTS = ("wrong-txid", "spoof", "garbage", "truncated")


def _fingerprint(data: bytes) -> bytes:
    return struct.pack("!HHI", 0x8028, 4, (zlib.crc32(data) ^ 0x5354554E) & 0xFFFFFFFF)


def tailscale_txid(packet: bytes) -> bytes | None:
    """The transaction ID of a Tailscale-style binding request, or None for anything else."""
    if len(packet) < 20 or len(packet) % 4:
        return None
    mtype, length, cookie = struct.unpack_from("!HHI", packet)
    if mtype != 0x0001 or cookie != COOKIE or length != len(packet) - 20:
        return None
    pos, software, last, fp_ok = 20, False, 0, False
    while pos + 4 <= len(packet):
        atype, alen = struct.unpack_from("!HH", packet, pos)
        value = packet[pos + 4 : pos + 4 + alen]
        if len(value) != alen:
            return None
        if atype == 0x8022 and value == b"tailnode":
            software = True
        if atype == 0x8028:
            fp_ok = alen == 4 and _fingerprint(packet[:pos]) == packet[pos : pos + 8]
        last = atype
        pos += 4 + alen + (-alen % 4)
    if pos != len(packet) or not software or last != 0x8028 or not fp_ok:
        return None
    return packet[8:20]


def _kernel_time(anc: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack_from("@qq", data)
            return int(sec) * 1_000_000_000 + int(nsec)
    return None


def success_response(txid: bytes, ip: str, port: int) -> bytes:
    """A binding success response with XOR-MAPPED-ADDRESS and FINGERPRINT."""
    addr = ipaddress.ip_address(ip)
    key = struct.pack("!I", COOKIE) + txid
    xored = bytes(a ^ k for a, k in zip(addr.packed, key, strict=False))
    value = struct.pack("!BBH", 0, 1 if addr.version == 4 else 2, port ^ (COOKIE >> 16)) + xored
    attrs = struct.pack("!HH", 0x0020, len(value)) + value
    head = struct.pack("!HHI", 0x0101, len(attrs) + 8, COOKIE) + txid
    return head + attrs + _fingerprint(head + attrs)


@dataclass
class Endpoint:
    """One bound UDP address with its behaviour and what it did."""

    host: str
    port: int
    delay_ms: float = 0.0
    silent: bool = False
    faults: tuple[str, ...] = ()
    mapped: tuple[str, int] | None = None
    """Address to report instead of the requester's (to emulate a NAT mapping)."""
    applied_ms: list[float] = field(default_factory=list)
    """Delays really applied (from receipt of a request to the answer leaving), one per answer."""
    requests: int = 0
    ignored: int = 0
    """Packets that were not Tailscale-style binding requests."""
    sock: socket.socket | None = field(default=None, repr=False)
    spoof_sock: socket.socket | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """``host:port`` (IPv6 in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class StunResponder:
    """Serve any number of :class:`Endpoint` in one background thread; a context manager."""

    def __init__(self, log: bool = False) -> None:
        self.endpoints: list[Endpoint] = []
        self._log = log
        self._log_lines: list[tuple[str, tuple[str, int], float]] = []
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._queue: list[tuple[float, int, Endpoint, bytes, tuple[str, int], float]] = []
        self._seq = 0
        self._stop = False
        self._thread: threading.Thread | None = None

    def add(
        self,
        host: str,
        port: int = 0,
        *,
        delay_ms: float = 0.0,
        silent: bool = False,
        faults: Sequence[str] = (),
        mapped: tuple[str, int] | None = None,
    ) -> Endpoint:
        """Bind *host*:*port* (0 picks a free port) and return its :class:`Endpoint`."""
        for f in faults:
            if f not in FAULTS:
                raise ValueError(f"unknown fault {f!r}; choose from {', '.join(FAULTS)}")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((host, port))
        sock.setblocking(False)
        if _SO_TIMESTAMPNS is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        ep = Endpoint(
            host=host,
            port=sock.getsockname()[1],
            delay_ms=delay_ms,
            silent=silent,
            faults=tuple(faults),
            mapped=mapped,
            sock=sock,
        )
        if "spoof" in ep.faults:
            ep.spoof_sock = socket.socket(family, socket.SOCK_DGRAM)
            ep.spoof_sock.bind((host, 0))
        with self._lock:
            self.endpoints.append(ep)
            self._sel.register(sock, selectors.EVENT_READ, ep)
        self._wake()
        return ep

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> StunResponder:
        self._thread = threading.Thread(target=self._run, name="stun-responder", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop = True
        self._wake()
        if self._thread is not None:
            self._thread.join(5)
        for ep in self.endpoints:
            for s in (ep.sock, ep.spoof_sock):
                if s is not None:
                    s.close()
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> StunResponder:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    # -- the loop --------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop:
            self._send_due()
            timeout = None
            if self._queue:
                left = self._queue[0][0] - time.perf_counter()
                # epoll sleeps in whole milliseconds, rounded up: block until shortly before the next answer
                # is due, then poll without sleeping so it leaves on time (tens of microseconds late at most)
                timeout = left - _SPIN if left > _SPIN else 0.0
            else:
                # only with no answer pending: a full pipe to a slow reader would block this thread
                self._flush_log()
            for key, _ in self._sel.select(timeout):
                if key.data is None:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(4096)
                    continue
                self._receive(key.data)
        self._flush_log()

    def _send_due(self) -> None:
        queue = self._queue
        while queue and queue[0][0] <= time.perf_counter():
            _, _, ep, data, peer, received = heapq.heappop(queue)
            self._send(ep, data, peer, received)

    def _receive(self, ep: Endpoint) -> None:
        assert ep.sock is not None
        while True:
            try:
                packet, anc, _, peer = ep.sock.recvmsg(2048, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ICMP errors reported on the socket
                return
            received = time.perf_counter()
            kernel_ns = _kernel_time(anc)
            if kernel_ns is not None:
                # count from the packet's arrival in the kernel, not from when this thread woke up
                ago = (time.time_ns() - kernel_ns) / 1e9
                if 0 <= ago < 1:
                    received -= ago
            txid = tailscale_txid(packet)
            if txid is None:
                ep.ignored += 1
                continue
            ep.requests += 1
            ip, port = ep.mapped or (peer[0], peer[1])
            answer = success_response(txid, ip, port)
            for fault in ep.faults:
                self._fault(ep, fault, txid, answer, peer)
            if not ep.silent:
                self._seq += 1
                heapq.heappush(self._queue, (received + ep.delay_ms / 1000, self._seq, ep, answer, peer, received))
            self._send_due()  # a burst of requests must not hold back answers already due

    def _fault(self, ep: Endpoint, fault: str, txid: bytes, answer: bytes, peer: tuple[str, int]) -> None:
        assert ep.sock is not None
        if fault == "wrong-txid":
            bad = bytes(b ^ 0xFF for b in txid)
            ep.sock.sendto(success_response(bad, *(ep.mapped or peer[:2])), peer)
        elif fault == "spoof" and ep.spoof_sock is not None:
            ep.spoof_sock.sendto(answer, peer)
        elif fault == "garbage":
            ep.sock.sendto(os.urandom(48), peer)
        elif fault == "truncated":
            ep.sock.sendto(answer[:-6], peer)

    def _send(self, ep: Endpoint, data: bytes, peer: tuple[str, int], received: float) -> None:
        assert ep.sock is not None
        # recorded just before the send, so a client that has its answer always finds it here
        applied = (time.perf_counter() - received) * 1000
        ep.applied_ms.append(applied)
        try:
            ep.sock.sendto(data, peer)
        except OSError:
            ep.applied_ms.pop()
            return
        if self._log:  # written out when the loop next waits, so logging never delays an answer
            self._log_lines.append((ep.address, peer, applied))

    def _flush_log(self) -> None:
        if self._log_lines:
            print(
                "\n".join(
                    json.dumps({"bind": bind, "peer": f"{peer[0]}:{peer[1]}", "delay_ms": round(applied, 4)})
                    for bind, peer, applied in self._log_lines
                ),
                flush=True,
            )
            self._log_lines.clear()


def _parse_bind(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--bind wants ADDR:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: serve until SIGINT/SIGTERM; print the bound addresses as one JSON line."""
    ap = argparse.ArgumentParser(prog="python -m tests.support.stun_responder", description="STUN responder for tests")
    ap.add_argument(
        "--bind",
        action="append",
        type=_parse_bind,
        required=True,
        help="ADDR:PORT to serve (repeatable; port 0 picks one)",
    )
    ap.add_argument("--delay-ms", type=float, default=0.0, help="delay before each answer")
    ap.add_argument("--delays-ms", default="", help="comma-separated delay per --bind, overriding --delay-ms")
    ap.add_argument("--silent", action="store_true", help="never answer")
    ap.add_argument("--fault", action="append", default=[], choices=FAULTS, help="send this bad packet first")
    ap.add_argument("--log", action="store_true", help="print a JSON line per answer with the applied delay")
    args = ap.parse_args(argv)
    delays = [float(d) for d in args.delays_ms.split(",")] if args.delays_ms else []
    if delays and len(delays) != len(args.bind):
        ap.error("--delays-ms needs one value per --bind")
    responder = StunResponder(log=args.log)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with responder:
        for i, (host, port) in enumerate(args.bind):
            responder.add(
                host, port, delay_ms=delays[i] if delays else args.delay_ms, silent=args.silent, faults=args.fault
            )
        print(json.dumps({"listening": [ep.address for ep in responder.endpoints]}), flush=True)
        if args.log and hasattr(fcntl, "F_SETPIPE_SZ"):
            with contextlib.suppress(OSError):  # room for a whole round of log lines
                fcntl.fcntl(sys.stdout.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
        # nothing here makes reference cycles; a collection would stall the answers for milliseconds
        gc.freeze()
        gc.disable()
        while not stop.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
