"""Linux network namespaces for tests: a client behind a router (with or without NAT) and a "public" side.

Everything is made with ``ip`` and ``nft`` inside namespaces this module creates; the host's own
interfaces, routes and ruleset are never touched, and nothing is routed out of the host. Needs root.

::

    with Lab() as lab:
        nat_topology(lab, "easy")
        lab.run("client", "ping", "-c1", PUBLIC_V4[0])

Topology made by :func:`nat_topology`::

    client  c0 10.77.0.2/24, fd77::2/64  ── veth ──  r0 10.77.0.1, fd77::1   router
    router  r1 198.51.100.1/24, 2001:db8:100::1/64 ── veth ──  p0 198.51.100.2 and .3,   public
                                                               2001:db8:100::2 and ::3

The router forwards; its nftables table ``derptool_test`` decides what it does to the client's traffic:
``routed`` (nothing), ``easy`` (``masquerade``), ``hard`` (``masquerade fully-random``) or ``blocked``
(drop forwarded UDP).
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
from collections.abc import Sequence
from types import TracebackType
from typing import Literal

from tests.support.prereq import first_missing, missing_command, missing_root

CLIENT_V4 = "10.77.0.2"
CLIENT_V6 = "fd77::2"
PUBLIC_V4 = ("198.51.100.2", "198.51.100.3")
PUBLIC_V6 = ("2001:db8:100::2", "2001:db8:100::3")

Mode = Literal["routed", "easy", "hard", "blocked"]

_counter = itertools.count()


def missing_requirements() -> str | None:
    """Why namespace tests cannot run here, or None when they can."""
    return first_missing(missing_root("creates network namespaces"), missing_command("ip"), missing_command("nft"))


def remove_stale() -> None:
    """Delete namespaces an earlier, killed test run of this module left behind (their PID is gone)."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        name = line.split(" ", 1)[0]
        found = re.fullmatch(r"dtn(\d+)x\d+-\w+", name)
        if found and not os.path.exists(f"/proc/{found.group(1)}"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True)


class Lab:
    """A set of namespaces named uniquely for this process; :meth:`close` removes them and their processes."""

    def __init__(self) -> None:
        remove_stale()
        self.prefix = f"dtn{os.getpid()}x{next(_counter)}"
        self.namespaces: dict[str, str] = {}
        self.processes: list[subprocess.Popen[str]] = []

    def name(self, role: str) -> str:
        """The real namespace name of *role*."""
        return self.namespaces[role]

    def add(self, role: str) -> str:
        """Create the namespace for *role* with loopback up."""
        name = f"{self.prefix}-{role}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, text=True)
        self.namespaces[role] = name
        # No duplicate address detection on interfaces made here: addresses usable at once.
        self.run(
            role,
            "sh",
            "-c",
            "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad && echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad",
        )
        self.run(role, "ip", "link", "set", "lo", "up")
        return name

    def run(
        self, role: str, *args: str, check: bool = True, input: str | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside *role*'s namespace and wait for it."""
        cmd = ["ip", "netns", "exec", self.name(role), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def popen(self, role: str, args: Sequence[str], **kwargs: object) -> subprocess.Popen[str]:
        """Start a long-running command inside *role*'s namespace; :meth:`close` ends it."""
        proc: subprocess.Popen[str] = subprocess.Popen(  # type: ignore[call-overload]
            ["ip", "netns", "exec", self.name(role), *args], text=True, **kwargs
        )
        self.processes.append(proc)
        return proc

    def veth(self, role_a: str, if_a: str, role_b: str, if_b: str) -> None:
        """Connect two namespaces with a veth pair (created directly inside them) and bring both ends up."""
        subprocess.run(
            [
                "ip",
                "link",
                "add",
                if_a,
                "netns",
                self.name(role_a),
                "type",
                "veth",
                "peer",
                "name",
                if_b,
                "netns",
                self.name(role_b),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        self.run(role_a, "ip", "link", "set", if_a, "up")
        self.run(role_b, "ip", "link", "set", if_b, "up")

    def close(self) -> None:
        """End the processes started here (by PID), then delete the namespaces."""
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.processes.clear()
        for name in self.namespaces.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True)
        self.namespaces.clear()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


_NFT = {
    "routed": "",
    "easy": """
table inet derptool_test {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "r1" masquerade
    }
}
""",
    "hard": """
table inet derptool_test {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "r1" masquerade fully-random
    }
}
""",
    "blocked": """
table inet derptool_test {
    chain forward {
        type filter hook forward priority filter; policy accept;
        meta l4proto udp drop
    }
}
""",
}


def nat_topology(lab: Lab, mode: Mode) -> None:
    """Build client ─ router ─ public in *lab*, the router doing *mode* to the client's traffic."""
    for role in ("client", "router", "public"):
        lab.add(role)
    lab.veth("client", "c0", "router", "r0")
    lab.veth("router", "r1", "public", "p0")
    lab.run("client", "ip", "addr", "add", f"{CLIENT_V4}/24", "dev", "c0")
    lab.run("client", "ip", "-6", "addr", "add", f"{CLIENT_V6}/64", "dev", "c0", "nodad")
    lab.run("client", "ip", "route", "add", "default", "via", "10.77.0.1")
    lab.run("client", "ip", "-6", "route", "add", "default", "via", "fd77::1")
    lab.run("router", "ip", "addr", "add", "10.77.0.1/24", "dev", "r0")
    lab.run("router", "ip", "-6", "addr", "add", "fd77::1/64", "dev", "r0", "nodad")
    lab.run("router", "ip", "addr", "add", "198.51.100.1/24", "dev", "r1")
    lab.run("router", "ip", "-6", "addr", "add", "2001:db8:100::1/64", "dev", "r1", "nodad")
    # /proc/sys/net shows the namespace of the process reading it (no need for procps' sysctl).
    lab.run(
        "router",
        "sh",
        "-c",
        "echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/ipv6/conf/all/forwarding",
    )
    for v4, v6 in zip(PUBLIC_V4, PUBLIC_V6, strict=True):
        lab.run("public", "ip", "addr", "add", f"{v4}/24", "dev", "p0")
        lab.run("public", "ip", "-6", "addr", "add", f"{v6}/64", "dev", "p0", "nodad")
    # Only the un-NATed (routed) client is reached through these; with NAT replies go to the router.
    lab.run("public", "ip", "route", "add", "10.77.0.0/24", "via", "198.51.100.1")
    lab.run("public", "ip", "-6", "route", "add", "fd77::/64", "via", "2001:db8:100::1")
    if _NFT[mode]:
        lab.run("router", "nft", "-f", "-", input=_NFT[mode])
