"""Loopback ports for the tests' own servers: one helper, used everywhere a free or closed port is needed."""

from __future__ import annotations

import socket


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out on *host* and that was released at once.

    It is free for a moment (a server the test starts next binds it), and nothing listens on it (a client
    sent there meets a closed port).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port on *host* that nothing listens on (see :func:`free_port`)."""
    return free_port(socket.SOCK_DGRAM, host)
