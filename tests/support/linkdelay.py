"""A fixed one-way delay on the packets a network namespace sends to one address, made in userspace.

``tc qdisc ... netem delay`` needs the kernel's ``sch_netem``, which some kernels (this project's build
machines among them) do not have. This does the same for one destination with a TUN device: the namespace
routes the destination into the device, this process reads each packet, holds it for the delay and sends it
on unchanged through a raw socket whose mark (:data:`MARK`) selects a routing table that leads out of the
real interface. Answers come back the normal way, so a round trip to the destination takes *delay* longer,
for every protocol (STUN over UDP, DERP over TLS) alike.

Run it inside the namespace (``python -m tests.support.linkdelay DEVICE DELAY_MS``); it creates the TUN
device *DEVICE* and runs until killed. :func:`route_through` then sends a destination through it. Needs root.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable

MARK = 0x77
"""Firewall mark (and routing table number) of the packets this process sends on."""
_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000


def open_tun(name: str) -> int:
    """Create the TUN device *name* (layer 3, no packet info header); its file descriptor."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
    return fd


def route_through(
    run: Callable[..., object], device: str, destination: str, *, source: str, gateway: str, interface: str
) -> None:
    """Send the packets for *destination* through *device* (a running delayer) and its delayed ones on via
    *gateway* on *interface*. *run* runs one command inside the namespace."""
    run("ip", "link", "set", device, "up")
    run("ip", "route", "add", f"{destination}/32", "dev", device, "src", source)
    run("ip", "route", "add", "default", "via", gateway, "dev", interface, "table", str(MARK))
    run("ip", "rule", "add", "fwmark", str(MARK), "lookup", str(MARK), "priority", "100")
    # Answers arrive on *interface* from an address routed to *device*: no reverse path filter.
    for conf in ("all", "default", interface):
        run("sh", "-c", f"echo 0 > /proc/sys/net/ipv4/conf/{conf}/rp_filter")


def serve(device: str, delay_s: float) -> None:
    """Forward every packet read from *device* after *delay_s*, in order, until the process ends."""
    fd = open_tun(device)
    out = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # the IP header is ours
    out.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, MARK)
    queue: collections.deque[tuple[float, bytes]] = collections.deque()
    ready = threading.Condition()

    def send_due() -> None:
        while True:
            with ready:
                while not queue:
                    ready.wait()
                due, packet = queue.popleft()
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            dst = socket.inet_ntoa(packet[16:20])
            with contextlib.suppress(OSError):  # as on a link: a packet that cannot go on is lost
                out.sendto(packet, (dst, 0))

    threading.Thread(target=send_due, daemon=True).start()
    while True:
        packet = os.read(fd, 65536)
        if len(packet) < 20 or packet[0] >> 4 != 4:
            continue  # IPv4 only (the destination is an IPv4 address)
        with ready:
            queue.append((time.monotonic() + delay_s, packet))
            ready.notify()


if __name__ == "__main__":
    serve(sys.argv[1], float(sys.argv[2]) / 1000)
