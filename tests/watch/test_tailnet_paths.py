"""Per-peer paths proven on the real test tailnet (``tests/support/tailnet.py``: headscale, two derpers, two
``tailscaled`` clients in their own network namespaces behind a hub whose nftables drop every forwarded UDP
packet).

While client1 streams bytes to an echo server behind client2:

1. blocked: ``derptool watch --once --format json`` on client1's LocalAPI shows client2 on ``derp`` through
   client2's home region (what client2's own status calls its home), moving bytes both ways; client2 sees
   client1 the same way through client1's home;
2. the hub's UDP drop is lifted, and a :class:`~derptool.watch.WatchSession` following client2 sees it move
   to ``direct`` at client2's own address and port, with the move's time counted in ``since_s`` and in the
   session's route history;
3. after: ``derptool watch --once --format json --peer client2`` shows ``direct``, no region, the endpoint,
   and the client's user metrics agree (bytes on the direct path, the DERP share below one half).

Needs root and the binaries of ``.ci/build-go-peers``; skips saying which is missing, or fails under CI=true.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from derptool.watch import PeerPath, Target, WatchSession
from tests.support import tailnet as tn
from tests.support.prereq import needs

pytestmark = [pytest.mark.root, needs(tn.missing_requirements())]

ECHO_PORT = 7777
DIRECT_TIMEOUT = 60.0
"""Once UDP passes, magicsock finds the direct path at its next disco ping round (every few seconds while
traffic flows)."""

_ECHO_SERVER = f"""
import socket, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", {ECHO_PORT})); srv.listen()
def serve(c):
    with c:
        while data := c.recv(65536):
            c.sendall(data)
while True:
    threading.Thread(target=serve, args=(srv.accept()[0],), daemon=True).start()
"""

_TRAFFIC = """
import subprocess, sys, threading, time
cmd = [sys.argv[1], "--socket", sys.argv[2], "nc", sys.argv[3], sys.argv[4]]
while True:  # about 160 kB/s each way, through whatever path the peers use; a new nc if one ends
    nc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    threading.Thread(target=lambda: [None for _ in iter(lambda: nc.stdout.read1(65536), b"")], daemon=True).start()
    try:
        while nc.poll() is None:
            nc.stdin.write(b"x" * 16384)
            nc.stdin.flush()
            time.sleep(0.1)
    except BrokenPipeError:
        pass
    time.sleep(0.5)
"""


def home(net: tn.Tailnet, client: tn.Client) -> str:
    """*client*'s home DERP region code, from its own status."""
    return str(net.status(client)["Self"].get("Relay", ""))


def watch_json(net: tn.Tailnet, client: tn.Client, *args: str) -> dict[str, Any]:
    proc = net.derptool("watch", "--socket", str(client.socket), "--once", "--format", "json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def peer_named(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in data["peers"] if p["name"] == name)


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    net = tn.start(tmp_path_factory.mktemp("tailnet"))
    try:
        yield collect(net)
    finally:
        net.close()


def collect(net: tn.Tailnet) -> dict[str, Any]:
    c1, c2 = net.clients
    ev: dict[str, Any] = {"c2_address": f"{c2.address}:{c2.port}"}
    net.lab.popen(c2.name, [sys.executable, "-c", _ECHO_SERVER])
    tn.wait_for("both clients to have home regions", lambda: bool(home(net, c1) and home(net, c2)), timeout=30)
    ev["homes"] = {c.name: home(net, c) for c in net.clients}
    net.lab.popen(
        c1.name,
        [sys.executable, "-c", _TRAFFIC, net.bins["tailscale"], str(c1.socket), c2.tailscale_ip, str(ECHO_PORT)],
    )
    tn.wait_for(  # the first WireGuard handshake waits for client2's DERP home to reach client1's map
        "bytes to flow between client1 and client2",
        lambda: all(p.get("RxBytes", 0) > 0 for c in net.clients for p in net.status(c).get("Peer", {}).values()),
        timeout=30,
    )

    # 1. Blocked: both sides through DERP.
    ev["blocked"] = {c.name: watch_json(net, c, "-i", "2") for c in net.clients}
    ev["udp_dropped"] = net.udp_drops()

    # 2. The block lifted, while a session follows client2 from client1.
    session = WatchSession(Target(socket=str(c1.socket)), peer="client2")
    seen: list[PeerPath] = []
    time.sleep(1)
    seen += session.step().peers or []
    net.lab.run("hub", "nft", "delete", "table", "inet", "tailnet_test")
    lifted = time.monotonic()
    while time.monotonic() - lifted < DIRECT_TIMEOUT:
        time.sleep(session.due_in(1.0))
        seen += session.step().peers or []
        if seen and seen[-1].route.path == "direct":
            break
    ev["direct_after_s"] = time.monotonic() - lifted
    ev["seen"] = seen
    ev["routes"] = list(session.history.peers[seen[-1].key].routes) if seen else []
    time.sleep(2)  # a full interval on the direct path for the final watch
    ev["direct"] = watch_json(net, c1, "-i", "2", "--peer", "client2")
    print(
        f"\ntailnet up in {net.startup_s:.1f}s; client2 direct {ev['direct_after_s']:.1f}s after UDP was let through; "
        f"routes seen: {[(round(t, 1), r.path, r.region or r.endpoint) for t, r in ev['routes']]}"
    )
    return ev


def test_blocked_peers_are_relayed_through_each_others_home_region(evidence: dict[str, Any]) -> None:
    assert evidence["udp_dropped"] > 0  # the direct path was tried and refused
    homes = evidence["homes"]
    for me, other in (("client1", "client2"), ("client2", "client1")):
        seen = peer_named(evidence["blocked"][me], other)
        assert seen["path"] == "derp", seen
        assert seen["region"] == homes[other] and seen["endpoint"] is None
        assert seen["rx_bytes_per_s"] > 10_000 and seen["tx_bytes_per_s"] > 10_000  # the stream, both ways
    assert evidence["blocked"]["client1"]["tailscale"]["derp_share"] == 1.0


def test_the_session_sees_the_peer_move_to_direct_when_udp_passes(evidence: dict[str, Any]) -> None:
    seen: list[PeerPath] = evidence["seen"]
    assert seen[0].route.path == "derp" and seen[0].route.region == evidence["homes"]["client2"]
    last = seen[-1]
    assert last.route.path == "direct", f"still {last.route} {evidence['direct_after_s']:.0f}s after the block lifted"
    assert last.route.endpoint == evidence["c2_address"] and last.route.region is None
    assert last.since_s == 0.0  # on it since this very status: the session saw the move
    routes = [r.path for _, r in evidence["routes"]]
    assert routes[0] == "derp" and routes[-1] == "direct"


def test_after_the_move_the_json_and_the_metrics_agree_on_direct(evidence: dict[str, Any]) -> None:
    data = evidence["direct"]
    (only,) = data["peers"]
    assert only["name"] == "client2" and only["path"] == "direct"
    assert only["region"] is None and only["endpoint"] == evidence["c2_address"]
    assert only["rx_bytes_per_s"] > 10_000 and only["tx_bytes_per_s"] > 10_000
    assert only["since_s"] is None or only["since_s"] >= 0
    paths = {p["path"]: p for p in data["tailscale"]["paths"]}
    assert paths["direct_ipv4"]["in_bytes_per_s"] > 10_000
    assert data["tailscale"]["derp_share"] < 0.5
