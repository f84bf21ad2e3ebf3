"""The geofence proven on a real tailnet: headscale, two derpers and two tailscaled clients (see
``tests/support/tailnet.py``), direct UDP between the clients dropped, so every packet is relayed.

One module-scoped run collects the evidence and the tests below each check one claim of it:

1. before: the clients connect through DERP, the map they hold has both regions, echoed bytes go only
   over the ``derp`` path; the region whose derper carried them is the one to omit, and
   ``derptool watch --omitted SEL`` exits 1 exactly on the clients homed there;
2. ``derptool omit --region SEL --format headscale-yaml`` is written to headscale's ``derp.paths`` file;
3. after: every client's home region is the other one (status, metrics, the map it holds, ``tailscale
   ping``), ``derptool watch --omitted SEL`` exits 0, and while bytes are echoed the omitted derper counts
   no packet and holds no connection, while the remaining derper counts them.

Measured along the way: before the geofence, ``derptool latency`` on the map headscale serves agrees with
each client's own ``tailscale netcheck`` (same preferred region, the client's home; each region's latency
within :data:`LATENCY_TOLERANCE_MS`; region 4 is farther by a known delay, see ``tests/support/tailnet.py``).
After it, ``derptool check --relay`` passes on both derpers while ``derptool watch`` on the omitted one,
which no client uses any more, counts exactly the checks' relayed packets; once that derper is stopped,
``check`` on its region exits 1.

Needs root and the binaries of ``.ci/build-go-peers``; skips saying which is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support import tailnet as tn
from tests.support.prereq import needs

pytestmark = [pytest.mark.root, needs(tn.missing_requirements())]

ECHO_PORT = 7777
ECHO_BYTES = 100_096
"""A multiple of 256."""
WATCH_S = 3.0
"""Length of each watched interval; the echo runs inside it."""
REHOME_TIMEOUT = 75.0
"""A client whose home region vanished picks a new one at its next netcheck (every ~20-26 s)."""
LATENCY_TOLERANCE_MS = 5.0
"""How far ``derptool latency`` and ``tailscale netcheck`` may differ on one region. Both time STUN round trips
(each keeps its fastest) from the same namespace over the same path, whose only real delay is the fixed
20 ms added on the way to region 4; what differs is when each process gets the CPU between sending and
reading the clock, a few ms at worst on a busy 2-core machine. 5 ms is a quarter of the gap between the
regions: two measurements within it cannot rank the regions differently."""
CHECK_WATCH_S = 2.0
"""Length of the interval watched on the omitted derper while ``derptool check --relay`` runs on it."""

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


def echo(net: tn.Tailnet, src: tn.Client, dst: tn.Client, size: int = ECHO_BYTES) -> int:
    """Send *size* bytes from *src* to the echo server behind *dst* (``tailscale nc``); bytes echoed back."""
    proc = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            net.lab.name(src.name),
            net.bins["tailscale"],
            "--socket",
            str(src.socket),
            "nc",
            dst.tailscale_ip,
            str(ECHO_PORT),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    stdin, stdout = proc.stdin, proc.stdout
    assert stdin is not None and stdout is not None
    payload = bytes(range(256)) * (size // 256)

    def write() -> None:
        stdin.write(payload)
        stdin.flush()

    threading.Thread(target=write, daemon=True).start()
    got = 0
    deadline = time.monotonic() + 20
    try:
        while got < len(payload) and time.monotonic() < deadline:
            chunk = os.read(stdout.fileno(), 65536)
            if not chunk:
                break
            got += len(chunk)
    finally:
        proc.kill()
        proc.wait()
    return got


def ping(net: tn.Tailnet, src: tn.Client, dst: tn.Client) -> str:
    """``tailscale ping`` from *src* to *dst* until a pong (a peer just learnt of may need a few tries)."""
    out = ""

    def pong() -> bool:
        nonlocal out
        proc = net.lab.run(
            src.name,
            net.bins["tailscale"],
            "--socket",
            str(src.socket),
            "ping",
            "--until-direct=false",
            "-c",
            "3",
            dst.tailscale_ip,
            check=False,
            timeout=30,
        )
        out = proc.stdout
        return "pong from" in out

    tn.wait_for(f"a pong from {dst.name}", pong, timeout=30, poll=0.5)
    return out


def home(net: tn.Tailnet, client: tn.Client) -> str:
    """The client's home DERP region code as ``tailscale status`` shows it (empty when none)."""
    return str(net.status(client)["Self"].get("Relay", ""))


def client_map_regions(net: tn.Tailnet, client: tn.Client) -> set[int]:
    """Region IDs of the DERP map *client* holds (``tailscale debug derp-map``)."""
    return {int(k) for k in json.loads(net.tailscale(client, "debug", "derp-map").stdout)["Regions"]}


def verdicts(net: tn.Tailnet, selector: str) -> list[dict[str, Any]]:
    """``derptool watch --once --format json --omitted SEL`` on each client: exit code and report."""
    out = []
    for c in net.clients:
        proc = net.derptool(
            "watch", "--socket", str(c.socket), "--once", "--format", "json", "-i", "0.2", "--omitted", selector
        )
        assert proc.returncode in (0, 1), proc.stderr
        out.append({"exit": proc.returncode, **json.loads(proc.stdout)})
    return out


def watched_interval(net: tn.Tailnet) -> dict[str, Any]:
    """One ``WATCH_S`` interval during which client1 echoes through client2, watched from every side:
    ``derptool watch --once --format json`` on both clients and on both derpers' metrics."""

    def on_client(c: tn.Client) -> Callable[[], Any]:
        return lambda: net.derptool(
            "watch", "--socket", str(c.socket), "--once", "--format", "json", "-i", str(WATCH_S)
        )

    def on_derper(r: tn.Region) -> Callable[[], Any]:
        match = r"^derp_(packets_received|bytes_received)$"
        return lambda: net.derper_watch(r, "--once", "--format", "json", "-i", str(WATCH_S), "--match", match)

    jobs: dict[str, Callable[[], Any]] = {c.name: on_client(c) for c in net.clients}
    for r in tn.REGIONS:
        jobs[r.code] = on_derper(r)

    stop = threading.Event()

    def echo_until_stopped() -> list[int]:
        rounds = []
        while not stop.is_set():  # traffic all through every watcher's interval, however late it starts
            rounds.append(echo(net, net.clients[0], net.clients[1]))
        return rounds

    with ThreadPoolExecutor(len(jobs) + 1) as pool:
        traffic = pool.submit(echo_until_stopped)
        futures = {name: pool.submit(fn) for name, fn in jobs.items()}
        results = {name: f.result() for name, f in futures.items()}
        stop.set()
        out: dict[str, Any] = {"echoed": traffic.result()}
    for name, proc in results.items():
        assert proc.returncode == 0, f"watch {name}: {proc.stderr}"
        out[name] = json.loads(proc.stdout)
    return out


def measure(net: tn.Tailnet, client: tn.Client, served: Path) -> dict[str, Any]:
    """From inside *client*'s namespace: its own ``tailscale netcheck`` (the CLI measures with the map its
    tailscaled holds) and ``derptool latency --map`` *served* (that same map), one after the other."""
    netcheck = json.loads(net.tailscale(client, "netcheck", "--format", "json").stdout)
    latency = net.derptool("latency", "--map", str(served), "--format", "json", role=client.name)
    assert latency.returncode == 0, latency.stderr
    return {"netcheck": netcheck, "derptool": json.loads(latency.stdout)}


def check_all(net: tn.Tailnet) -> dict[str, Any]:
    """``derptool check all --relay --format json`` against headscale's full map (every derper), from the hub:
    its exit code and report."""
    proc = net.derptool(
        "check",
        "all",
        "--map",
        str(net.full_map),
        "--relay",
        "--ca-file",
        str(net.ca_file),
        "--timeout",
        "2",
        "--format",
        "json",
        role="hub",
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    return {"exit": proc.returncode, **json.loads(proc.stdout)}


def checked_interval(net: tn.Tailnet, omitted: tn.Region) -> dict[str, Any]:
    """``derptool check all --relay``, again and again while ``derptool watch`` watches the omitted region's
    derper for ``CHECK_WATCH_S``: no client uses that derper any more, so every packet it counts is one the
    checks relayed."""
    stop = threading.Event()

    def check_until_stopped() -> list[dict[str, Any]]:
        runs = []
        while not stop.is_set():
            runs.append(check_all(net))
        return runs

    with ThreadPoolExecutor(2) as pool:
        checks = pool.submit(check_until_stopped)
        watched = net.derper_watch(
            omitted,
            "--once",
            "--format",
            "json",
            "-i",
            str(CHECK_WATCH_S),
            "--match",
            r"^derp_(packets|bytes)_received$",
        )
        stop.set()
        runs = checks.result()
    assert watched.returncode == 0, watched.stderr
    return {"watch": json.loads(watched.stdout), "runs": runs}


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    net = tn.start(tmp_path_factory.mktemp("tailnet"))
    try:
        yield collect(net)
    finally:
        net.close()


def collect(net: tn.Tailnet) -> dict[str, Any]:
    c1, c2 = net.clients
    ev: dict[str, Any] = {"startup_s": net.startup_s}
    net.lab.popen(c2.name, [sys.executable, "-c", _ECHO_SERVER])
    tn.wait_for("client1 and client2 to have home regions", lambda: bool(home(net, c1) and home(net, c2)), timeout=30)
    # Before: the region whose derper carried the echo is the one the geofence will remove. (A sender
    # relays through the receiver's home derper, and a reply goes back the way the packet came, so the
    # derper that carried it is the home of at least one client.)
    ev["before_homes"] = [home(net, c) for c in net.clients]
    ev["before_maps"] = [client_map_regions(net, c) for c in net.clients]
    # The map headscale serves, as the clients hold it; derptool and each client's netcheck measure it.
    served = net.workdir / "served-map.json"
    served.write_text(net.tailscale(c1, "debug", "derp-map").stdout)
    begin = time.monotonic()
    ev["measured"] = [measure(net, c, served) for c in net.clients]
    ev["measure_s"] = time.monotonic() - begin
    ev["before_ping"] = ping(net, c1, c2)
    ev["before"] = watched_interval(net)

    def received(r: tn.Region) -> float:
        return float(sum(c["delta"] for c in ev["before"][r.code]["changes"] if c["name"] == "derp_bytes_received"))

    omitted = max(tn.REGIONS, key=received)
    kept = next(r for r in tn.REGIONS if r is not omitted)
    selector = omitted.country.lower()  # "us" or "de": a country selector, as a user writes it
    ev.update(omitted=omitted, kept=kept, selector=selector)
    ev["before_verdicts"] = verdicts(net, selector)

    # The geofence: derptool writes the overlay headscale reads from derp.paths.
    written = net.derptool(
        "omit", "--map", str(net.workdir / "derpmap.json"), "--region", selector, "--format", "headscale-yaml"
    )
    assert written.returncode == 0, written.stderr
    ev["omit_yaml"] = written.stdout
    tmp = net.omit_map.with_suffix(".tmp")
    tmp.write_text(written.stdout)
    tmp.replace(net.omit_map)
    applied = time.monotonic()
    tn.wait_for(
        "every client's map to lose the omitted region",
        lambda: all(omitted.id not in client_map_regions(net, c) for c in net.clients),
        timeout=30,
    )
    ev["map_pushed_s"] = time.monotonic() - applied
    tn.wait_for(
        f"every client to re-home to {kept.code}",
        lambda: all(home(net, c) == kept.code for c in net.clients),
        timeout=REHOME_TIMEOUT,
        poll=1.0,
    )
    ev["rehomed_s"] = time.monotonic() - applied

    # After.
    ev["after_maps"] = [client_map_regions(net, c) for c in net.clients]
    ev["after_ping"] = ping(net, c1, c2)
    ev["after"] = watched_interval(net)
    ev["after_verdicts"] = verdicts(net, selector)
    ev["after_policy_exit"] = net.derptool(
        "watch", "--socket", str(c1.socket), "--once", "-i", "0.2", "--policy", str(net.omit_map)
    ).returncode
    ev["omitted_connections"] = net.derper_value(omitted, "derp_current_connections")
    ev["kept_connections"] = net.derper_value(kept, "derp_current_connections")
    ev["udp_dropped"] = net.udp_drops()

    # derptool check --relay on both derpers (the omitted one still runs; it is only out of the map), then
    # on the omitted region once its derper is stopped.
    begin = time.monotonic()
    ev["checked"] = checked_interval(net, omitted)
    net.stop_derper(omitted)
    ev["stopped_check"] = check_all(net)
    ev["check_s"] = time.monotonic() - begin
    print(
        f"\ntailnet up in {net.startup_s:.1f}s; map pushed {ev['map_pushed_s']:.1f}s and clients re-homed "
        f"{ev['rehomed_s']:.1f}s after the omit file was written; DERP share before "
        f"{ev['before']['client1']['tailscale']['derp_share']}, "
        f"after {ev['after']['client1']['tailscale']['derp_share']}; latency/netcheck on both clients "
        f"{ev['measure_s']:.1f}s, checks {ev['check_s']:.1f}s"
    )
    (net.workdir / "evidence.json").write_text(json.dumps(ev, default=str, indent=1))
    return ev


# -- the claims ----------------------------------------------------------------------------------------


def test_tailnet_comes_up_quickly(evidence: dict[str, Any]) -> None:
    assert evidence["startup_s"] < 30


def test_before_both_regions_and_all_traffic_relayed(evidence: dict[str, Any]) -> None:
    both = {r.id for r in tn.REGIONS}
    assert evidence["before_maps"] == [both, both]
    assert set(evidence["before_homes"]) <= {r.code for r in tn.REGIONS}
    assert "via DERP(" in evidence["before_ping"]
    before = evidence["before"]
    assert before["echoed"] and set(before["echoed"]) == {ECHO_BYTES}  # every round came back whole
    for name in ("client1", "client2"):
        ts = before[name]["tailscale"]
        assert ts["derp_share"] == 1.0, ts
        paths = {p["path"]: p for p in ts["paths"]}
        assert paths["derp"]["in_bytes_per_s"] * before[name]["interval_s"] > ECHO_BYTES / 2
        assert all(p["in_bytes"] == 0 and p["out_bytes"] == 0 for k, p in paths.items() if k != "derp")


def test_before_watch_flags_the_home_region_the_geofence_will_remove(evidence: dict[str, Any]) -> None:
    omitted = evidence["omitted"]
    flagged = 0
    for status_home, verdict in zip(evidence["before_homes"], evidence["before_verdicts"], strict=True):
        home_region = verdict["tailscale"]["home_region"]
        assert home_region["code"] == status_home  # the metric agrees with tailscale status
        is_omitted = home_region["id"] == omitted.id
        assert verdict["exit"] == (1 if is_omitted else 0)
        assert verdict["geofence"]["home_omitted"] is is_omitted
        if is_omitted:
            assert home_region["country"] == omitted.country
            flagged += 1
    assert flagged >= 1  # the derper that carried the echo is some client's home


def test_omit_writes_a_headscale_overlay_removing_exactly_that_region(evidence: dict[str, Any]) -> None:
    omitted = evidence["omitted"]
    assert f"  {omitted.id}: null  # {omitted.code} (region {omitted.id})" in evidence["omit_yaml"]
    assert evidence["omit_yaml"].count(": null") == 1


def test_after_every_client_is_homed_in_the_remaining_region(evidence: dict[str, Any]) -> None:
    kept = evidence["kept"]
    assert evidence["after_maps"] == [{kept.id}, {kept.id}]
    assert f"via DERP({kept.code})" in evidence["after_ping"]
    for verdict in evidence["after_verdicts"]:
        assert verdict["exit"] == 0
        assert verdict["geofence"]["home_omitted"] is False
        assert verdict["tailscale"]["home_region"]["id"] == kept.id
    assert evidence["after_policy_exit"] == 0


def test_after_traffic_still_flows_only_through_derp(evidence: dict[str, Any]) -> None:
    after = evidence["after"]
    assert after["echoed"] and set(after["echoed"]) == {ECHO_BYTES}
    for name in ("client1", "client2"):
        ts = after[name]["tailscale"]
        assert ts["derp_share"] == 1.0
    assert evidence["udp_dropped"] > 0  # the clients did try to go direct; the hub dropped it


def test_after_the_omitted_derper_carries_nothing(evidence: dict[str, Any]) -> None:
    omitted, kept = evidence["omitted"], evidence["kept"]
    before, after = evidence["before"], evidence["after"]
    # Before, the omitted region's derper relayed the echo.
    assert any(
        c["name"] == "derp_bytes_received" and c["delta"] > ECHO_BYTES / 2 for c in before[omitted.code]["changes"]
    )
    # After: not one packet received while the echo ran through the other derper, and no client connected.
    assert after[omitted.code]["changes"] == []
    received = {c["name"]: c for c in after[kept.code]["changes"]}
    assert received["derp_bytes_received"]["delta"] > ECHO_BYTES
    assert evidence["omitted_connections"] == 0
    assert evidence["kept_connections"] == 2


def test_derptool_latency_agrees_with_each_clients_netcheck(evidence: dict[str, Any]) -> None:
    nearest = min(tn.REGIONS, key=lambda r: r.delay_ms)
    for home_code, measured in zip(evidence["before_homes"], evidence["measured"], strict=True):
        theirs, ours = measured["netcheck"], measured["derptool"]
        # One preferred region: derptool's, the client's netcheck's and the client's home are the nearest.
        assert home_code == nearest.code
        assert ours["preferred_region"] == theirs["PreferredDERP"] == nearest.id
        regions = {r["id"]: r for r in ours["regions"]}
        assert set(regions) == {r.id for r in tn.REGIONS}
        for r in tn.REGIONS:
            go_ms = theirs["RegionLatency"][str(r.id)] / 1e6  # Go reports nanoseconds
            py_ms = regions[r.id]["latency_ms"]
            assert regions[r.id]["method"] == "stun"
            assert abs(py_ms - go_ms) <= LATENCY_TOLERANCE_MS, (r.code, py_ms, go_ms)
            assert min(py_ms, go_ms) >= r.delay_ms  # nothing beats the added delay: both saw it
        assert [r["id"] for r in ours["regions"]] == sorted(regions, key=lambda i: regions[i]["latency_ms"])


def nodes_by_region(report: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The node reports of a ``derptool check --format json`` report by region ID (one node per region)."""
    nodes = {n["region_id"]: n for n in report["nodes"]}
    assert len(nodes) == len(report["nodes"])
    return nodes


def test_check_relay_passes_on_each_derper(evidence: dict[str, Any]) -> None:
    runs = evidence["checked"]["runs"]
    assert runs
    keys = set()
    for run in runs:
        assert run["exit"] == 0 and run["ok"] is True, run
        nodes = nodes_by_region(run)
        assert set(nodes) == {r.id for r in tn.REGIONS}
        for r in tn.REGIONS:
            node = nodes[r.id]
            assert node["address"] == r.address
            steps = {c["name"]: c for c in node["checks"]}
            assert {n: c["status"] for n, c in steps.items() if c["status"] != "pass"} == {"dns": "skip"}
            relay = steps["relay"]
            assert relay["sent"] == relay["received"] == 5 and relay["loss"] == 0.0
            keys.add(node["public_key"])
    assert len(keys) == len(tn.REGIONS)  # each derper its own key, the same in every run


def test_watch_on_the_omitted_derper_counts_the_checks_relayed_packets(evidence: dict[str, Any]) -> None:
    """No client uses the omitted derper; what ``derptool watch`` sees on it is the checks' 64-byte packets
    (a warm-up and 5 timed round trips per run, each packet received twice: A to B and back)."""
    changes = {c["name"]: c["delta"] for c in evidence["checked"]["watch"]["changes"]}
    packets, received = changes["derp_packets_received"], changes["derp_bytes_received"]
    assert packets >= 2 * (1 + 5)
    assert received == 64 * packets


def test_check_exits_1_for_the_omitted_region_once_its_derper_is_stopped(evidence: dict[str, Any]) -> None:
    omitted, kept = evidence["omitted"], evidence["kept"]
    stopped = evidence["stopped_check"]
    assert stopped["exit"] == 1 and stopped["ok"] is False, stopped
    nodes = nodes_by_region(stopped)
    statuses = {c["name"]: c["status"] for c in nodes[omitted.id]["checks"]}
    assert nodes[omitted.id]["ok"] is False
    assert statuses["stun"] == "fail" and statuses["tls"] == "fail", statuses
    assert statuses["relay"] == "skip"
    assert nodes[kept.id]["ok"] is True  # the other derper still passes
