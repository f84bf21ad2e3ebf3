"""A real tailnet on one machine: headscale, two derpers and tailscaled clients in network namespaces.

Everything runs in namespaces made by :class:`tests.support.netns.Lab`; nothing is routed out of them::

    hub      lo: 10.78.0.1 (headscale :8080), 10.78.0.2 (derper "nyc", region 1), 10.78.0.3 (derper "fra",
             region 4); h1 10.78.1.1/24 ── veth ── c1 10.78.1.2/24  client1 (tailscaled, UDP port 41641)
                           h2 10.78.2.1/24 ── veth ── c2 10.78.2.2/24  client2 (tailscaled, UDP port 41642)

The hub forwards between the clients but its nftables table drops (and counts) every forwarded UDP packet,
so WireGuard cannot go direct and every packet between the clients is relayed by a derper. The regions
take the IDs and codes of Tailscale's New York and Frankfurt regions so derptool's geography names them
(country US and DE): ``derptool omit --region us`` removes region 1.

Frankfurt is farther: every packet a client sends to its derper waits :attr:`Region.delay_ms` in the
client's namespace (:mod:`tests.support.linkdelay`, a userspace ``netem delay``), so a round trip to region 4
takes that much longer than one to region 1, every client is homed in region 1 until the geofence removes
it, and latency measurements have a known truth to agree on.

headscale reads its DERP map from two ``derp.paths`` files written by derptool: ``derp-full.yaml``
(``derptool map --format headscale-yaml``) and ``derp-omit.yaml`` (``derptool omit --format headscale-yaml``,
empty at first), and re-reads them every :data:`DERP_REFRESH` (``derp.update_frequency``), pushing a new
map to the clients when it changed.

Binaries come from ``tests/support/go/bin`` (built by ``.ci/build-go-peers``) or PATH; TLS for the derpers
from a ``trustme`` CA the clients trust through ``SSL_CERT_FILE``. Needs root (namespaces, nftables).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import linkdelay
from tests.support.netns import Lab
from tests.support.prereq import go_peer, missing_go_peer

BIN_DIR = Path(__file__).resolve().parent / "go" / "bin"
BINARIES = ("headscale", "derper", "tailscaled", "tailscale")
HEADSCALE = "10.78.0.1"
CONTROL_URL = f"http://{HEADSCALE}:8080"
DERP_REFRESH = "2s"
"""How often headscale re-reads its derp.paths files."""


@dataclass(frozen=True)
class Region:
    """A DERP region of the test map: one derper on its own hub address."""

    id: int
    code: str
    name: str
    address: str
    country: str
    delay_ms: float = 0.0
    """Added to the round trip from every client to this region's derper."""


REGIONS = (
    Region(1, "nyc", "New York City", "10.78.0.2", "US"),
    Region(4, "fra", "Frankfurt", "10.78.0.3", "DE", delay_ms=20.0),
)


@dataclass
class Client:
    """One tailscaled of the tailnet."""

    name: str
    address: str
    port: int
    socket: Path
    statedir: Path
    tailscale_ip: str = ""


@dataclass
class Tailnet:
    """A running test tailnet (see the module docstring); :meth:`close` ends it and removes the namespaces."""

    workdir: Path
    bins: dict[str, str]
    lab: Lab = field(default_factory=Lab)
    clients: list[Client] = field(default_factory=list)
    ca_file: Path = Path()
    full_map: Path = Path()
    omit_map: Path = Path()
    headscale_config: Path = Path()
    derpers: dict[int, subprocess.Popen[str]] = field(default_factory=dict)
    """The derper process of each region ID."""
    headscale_proc: subprocess.Popen[str] | None = None
    policy_file: Path | None = None
    """headscale's policy file (``policy.path``), when the tailnet was started with a policy."""
    startup_s: float = 0.0

    # -- running commands -------------------------------------------------------------------------

    def tailscale(self, client: Client, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run the ``tailscale`` CLI against *client*'s LocalAPI socket (inside its namespace)."""
        return self.lab.run(client.name, self.bins["tailscale"], "--socket", str(client.socket), *args, timeout=timeout)

    def status(self, client: Client) -> dict[str, Any]:
        """``tailscale status --json`` of *client*."""
        return json.loads(self.tailscale(client, "status", "--json").stdout)  # type: ignore[no-any-return]

    def headscale(self, *args: str) -> str:
        """Run the headscale CLI (it talks to the server over its unix socket); its stdout."""
        proc = subprocess.run(
            [self.bins["headscale"], "-c", str(self.headscale_config), *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"headscale {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def derptool(
        self, *args: str, role: str | None = None, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``derptool`` (this checkout) in the host namespace, or inside *role*'s namespace."""
        cmd = [sys.executable, "-m", "derptool", *args]
        if role is not None:
            return self.lab.run(role, *cmd, check=False, input=input, timeout=timeout)
        return subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=timeout)

    def derper_watch(self, region: Region, *args: str) -> subprocess.CompletedProcess[str]:
        """``derptool watch https://<derper>/debug/varz ARGS`` run inside the hub (derper's own metrics)."""
        return self.derptool(
            "watch", f"https://{region.address}/debug/varz", "--ca-file", str(self.ca_file), *args, role="hub"
        )

    def derper_value(self, region: Region, name: str) -> float:
        """One unlabelled series of *region*'s derper, scraped once from inside the hub."""
        script = (
            "import sys\n"
            "from derptool.watch import Target, scrape\n"
            f"snap = scrape(Target(url='https://{region.address}/debug/varz', ca_file={str(self.ca_file)!r}))\n"
            f"print(snap.value({name!r}))\n"
        )
        out = self.lab.run("hub", sys.executable, "-c", script).stdout.strip()
        return float(out)

    def udp_drops(self) -> int:
        """Forwarded UDP packets the hub dropped between the clients (the nftables counter)."""
        out = self.lab.run("hub", "nft", "-j", "list", "table", "inet", "tailnet_test").stdout
        for item in json.loads(out)["nftables"]:
            rule = item.get("rule")
            if rule and rule.get("chain") == "forward":
                for expr in rule["expr"]:
                    if "counter" in expr:
                        return int(expr["counter"]["packets"])
        raise AssertionError("no counter in the hub's forward chain")

    def set_policy(self, text: str) -> None:
        """Write headscale's policy file and make headscale reload it (SIGHUP), as an admin would."""
        if self.policy_file is None or self.headscale_proc is None:
            raise RuntimeError("the tailnet was started without a policy file")
        self.policy_file.write_text(text)
        self.headscale_proc.send_signal(signal.SIGHUP)

    def netmap(self, client: Client) -> dict[str, Any]:
        """*client*'s current network map as its LocalAPI gives it (``tailscale debug netmap``)."""
        return json.loads(self.tailscale(client, "debug", "netmap").stdout)  # type: ignore[no-any-return]

    def stop_derper(self, region: Region) -> None:
        """Stop *region*'s derper (SIGTERM, then wait for it to exit)."""
        proc = self.derpers[region.id]
        proc.terminate()
        proc.wait(timeout=10)

    def close(self) -> None:
        """End every process (by PID) and delete the namespaces."""
        self.lab.close()


def find_binaries() -> dict[str, str] | str:
    """Paths of the four binaries, or the reason they cannot be found."""
    found: dict[str, str] = {}
    for name in BINARIES:
        path = go_peer(name)
        if path is None:
            return missing_go_peer(name) or name
        found[name] = path
    return found


def missing_requirements() -> str | None:
    """Why the tailnet cannot start here, or None."""
    from tests.support.netns import missing_requirements as netns_missing

    why = netns_missing()
    if why is not None:
        return why
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun (the delayed link to region 4 is a TUN device; .ci/run creates it)"
    bins = find_binaries()
    return bins if isinstance(bins, str) else None


def wait_for(what: str, check: Callable[[], bool], *, timeout: float, poll: float = 0.2) -> None:
    """Poll *check* until it is true; AssertionError naming *what* after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)


def derp_map_data() -> dict[str, Any]:
    """The test's DERP map (tailcfg JSON): one node per region, TLS on 443, STUN on 3478, no IPv6."""
    return {
        "Regions": {
            str(r.id): {
                "RegionID": r.id,
                "RegionCode": r.code,
                "RegionName": r.name,
                "Nodes": [
                    {
                        "Name": f"{r.id}a",
                        "RegionID": r.id,
                        "HostName": f"derp-{r.code}.test",
                        "IPv4": r.address,
                        "IPv6": "none",
                        "STUNPort": 3478,
                        "DERPPort": 443,
                    }
                ],
            }
            for r in REGIONS
        }
    }


def _headscale_config(work: Path, paths: Sequence[Path], policy: Path | None = None) -> str:
    lines = [
        f"server_url: {CONTROL_URL}",
        f"listen_addr: {HEADSCALE}:8080",
        "metrics_listen_addr: 127.0.0.1:9090",
        "grpc_listen_addr: 127.0.0.1:50443",
        "grpc_allow_insecure: false",
        "noise:",
        f"  private_key_path: {work / 'noise_private.key'}",
        "prefixes:",
        "  v4: 100.64.0.0/10",
        "  v6: fd7a:115c:a1e0::/48",
        "  allocation: sequential",
        "derp:",
        "  server:",
        "    enabled: false",
        "  urls: []",
        "  paths:",
        *(f"    - {p}" for p in paths),
        "  auto_update_enabled: true",
        f"  update_frequency: {DERP_REFRESH}",
        "disable_check_updates: true",
        "ephemeral_node_inactivity_timeout: 30m",
        "database:",
        "  type: sqlite",
        "  sqlite:",
        f"    path: {work / 'db.sqlite'}",
        "    write_ahead_log: true",
        "log:",
        "  level: info",
        "  format: text",
        "policy:",
        "  mode: file",
        f'  path: "{policy or ""}"',
        "dns:",
        "  magic_dns: false",
        "  base_domain: tailnet.test",
        "  override_local_dns: false",
        "  nameservers:",
        "    global: []",
        "unix_socket: " + str(work / "headscale.sock"),
        'unix_socket_permission: "0770"',
        "logtail:",
        "  enabled: false",
        "randomize_client_port: false",
    ]
    return "\n".join(lines) + "\n"


_HUB_NFT = """
table inet tailnet_test {
    chain forward {
        type filter hook forward priority filter; policy accept;
        meta l4proto udp counter drop
    }
}
"""


def _log(work: Path, name: str) -> Any:
    return open(work / f"{name}.log", "w")  # the process writes it; closed when the test process ends


def start(workdir: Path, *, clients: int = 2, users: Sequence[str] = ("tester",), policy: str | None = None) -> Tailnet:
    """Bring the tailnet up (see the module docstring) and return it once every client is Running.

    Client *i* (from 1) belongs to ``users[(i - 1) % len(users)]``; with *policy*, headscale reads its
    policy from a file holding that text (:meth:`Tailnet.set_policy` changes it)."""
    import trustme

    begin = time.monotonic()
    bins = find_binaries()
    if isinstance(bins, str):
        raise RuntimeError(bins)
    net = Tailnet(workdir, bins)
    try:
        if policy is not None:
            net.policy_file = workdir / "policy.hujson"
            net.policy_file.write_text(policy)
        _start(net, clients, trustme.CA(), tuple(users))
    except BaseException:
        net.close()
        raise
    net.startup_s = time.monotonic() - begin
    return net


def _start(net: Tailnet, n_clients: int, ca: Any, users: tuple[str, ...] = ("tester",)) -> None:
    work, lab = net.workdir, net.lab
    env = {**os.environ, "TS_NO_LOGS_NO_SUPPORT": "true"}
    # The hub: headscale and the derpers on addresses of its loopback interface.
    lab.add("hub")
    for addr in (HEADSCALE, *(r.address for r in REGIONS)):
        lab.run("hub", "ip", "addr", "add", f"{addr}/32", "dev", "lo")
    lab.run("hub", "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
    lab.run("hub", "nft", "-f", "-", input=_HUB_NFT)
    for i in range(1, n_clients + 1):
        role = f"client{i}"
        lab.add(role)
        lab.veth(role, f"c{i}", "hub", f"h{i}")
        lab.run("hub", "ip", "addr", "add", f"10.78.{i}.1/24", "dev", f"h{i}")
        lab.run(role, "ip", "addr", "add", f"10.78.{i}.2/24", "dev", f"c{i}")
        lab.run(role, "ip", "route", "add", "default", "via", f"10.78.{i}.1")
        net.clients.append(Client(role, f"10.78.{i}.2", 41640 + i, work / f"{role}.sock", work / role))
        for r in REGIONS:
            if r.delay_ms:
                _delay(net, role, r, source=f"10.78.{i}.2", gateway=f"10.78.{i}.1", interface=f"c{i}")

    # TLS: one test CA; each derper a certificate for its host name and address.
    net.ca_file = work / "ca.pem"
    ca.cert_pem.write_to_path(str(net.ca_file))
    for r in REGIONS:
        # -hostname is the address: derper then serves any SNI (the clients send derp-<code>.test) and a
        # scrape of /debug/ by address verifies too. The certificate names both.
        certdir = work / f"certs-{r.code}"
        certdir.mkdir()
        cert = ca.issue_cert(f"derp-{r.code}.test", r.address)
        cert.cert_chain_pems[0].write_to_path(str(certdir / f"{r.address}.crt"))
        cert.private_key_pem.write_to_path(str(certdir / f"{r.address}.key"))
        # -c: each derper its own key in the work directory (as root, derper's default is the host's
        # /var/lib/derper/derper.key, which both would share).
        net.derpers[r.id] = lab.popen(
            "hub",
            [
                net.bins["derper"],
                "-c",
                str(work / f"derper-{r.code}.key"),
                "-a",
                f"{r.address}:443",
                "-http-port",
                "-1",
                "-stun-port",
                "3478",
                "-certmode",
                "manual",
                "-certdir",
                str(certdir),
                "-hostname",
                r.address,
            ],
            stdout=_log(work, f"derper-{r.code}"),
            stderr=subprocess.STDOUT,
            env={**env, "TS_ALLOW_DEBUG_IP": r.address},
        )  # /debug/ answers scrapes from the hub itself

    # The DERP map headscale serves, written by derptool.
    source = work / "derpmap.json"
    source.write_text(json.dumps(derp_map_data()))
    net.full_map, net.omit_map = work / "derp-full.yaml", work / "derp-omit.yaml"
    written = net.derptool("map", "--map", str(source), "--format", "headscale-yaml")
    if written.returncode != 0:
        raise RuntimeError(f"derptool map failed: {written.stderr}")
    net.full_map.write_text(written.stdout)
    net.omit_map.write_text("regions: {}\n")
    net.headscale_config = work / "headscale.yaml"
    net.headscale_config.write_text(_headscale_config(work, [net.full_map, net.omit_map], net.policy_file))
    net.headscale_proc = lab.popen(
        "hub",
        [net.bins["headscale"], "-c", str(net.headscale_config), "serve"],
        stdout=_log(work, "headscale"),
        stderr=subprocess.STDOUT,
        env=env,
    )

    # The clients start while headscale comes up.
    client_env = {**env, "SSL_CERT_FILE": str(net.ca_file)}
    for c in net.clients:
        c.statedir.mkdir()
        lab.popen(
            c.name,
            [
                net.bins["tailscaled"],
                "--tun=userspace-networking",
                "--statedir",
                str(c.statedir),
                "--socket",
                str(c.socket),
                "--port",
                str(c.port),
                "--no-logs-no-support",
            ],
            stdout=_log(work, f"tailscaled-{c.name}"),
            stderr=subprocess.STDOUT,
            env=client_env,
        )

    wait_for("headscale's unix socket", (work / "headscale.sock").exists, timeout=20)
    wait_for("headscale to answer", lambda: _try(lambda: net.headscale("users", "list")), timeout=20)
    for name in users:
        net.headscale("users", "create", name)
    ids = {u["name"]: str(u["id"]) for u in json.loads(net.headscale("users", "list", "-o", "json"))}
    create_key = ("preauthkeys", "create", "--reusable", "--expiration", "1h", "-o", "json", "--user")
    keys = [json.loads(net.headscale(*create_key, ids[name]))["key"] for name in users]
    for c in net.clients:
        wait_for(f"{c.name}'s LocalAPI socket", c.socket.exists, timeout=20)
    ups = [
        lab.popen(
            c.name,
            [
                net.bins["tailscale"],
                "--socket",
                str(c.socket),
                "up",
                "--login-server",
                CONTROL_URL,
                "--authkey",
                keys[k % len(keys)],
                "--hostname",
                c.name,
                "--accept-dns=false",
                "--timeout",
                "40s",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for k, c in enumerate(net.clients)
    ]
    for c, proc in zip(net.clients, ups, strict=True):
        out, _ = proc.communicate(timeout=45)
        if proc.returncode != 0:
            raise RuntimeError(f"tailscale up on {c.name} failed: {out.strip()}")
    for c in net.clients:
        c.tailscale_ip = net.tailscale(c, "ip", "-4").stdout.strip()


def _delay(net: Tailnet, role: str, region: Region, *, source: str, gateway: str, interface: str) -> None:
    """Delay what *role* sends to *region*'s derper by its ``delay_ms`` (see :mod:`tests.support.linkdelay`)."""
    device = f"slow{region.id}"
    net.lab.popen(role, [sys.executable, str(linkdelay.__file__), device, str(region.delay_ms)])
    wait_for(
        f"{role}'s delay device {device}",
        lambda: net.lab.run(role, "ip", "link", "show", device, check=False).returncode == 0,
        timeout=10,
    )
    linkdelay.route_through(
        lambda *args: net.lab.run(role, *args),
        device,
        region.address,
        source=source,
        gateway=gateway,
        interface=interface,
    )


def _try(fn: Callable[[], object]) -> bool:
    try:
        fn()
    except RuntimeError:
        return False
    return True
