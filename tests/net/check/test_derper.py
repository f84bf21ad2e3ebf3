"""``derptool check`` against Tailscale's real derper (v1.102.5) on loopback: every step, both address
families, load balancers, certificate expiry, relay and mesh, verify-clients, the Prometheus exporter.

Skips where the derper binary is missing (tests/support/derper.py says how to build it). Each server kind
starts once for the module. The stand-in server is used only for a server that drips its answers.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from derptool.cli import app
from derptool.net import check
from derptool.net.check.exporter import CheckCollector, exposition
from derptool.net.exporter import Exporter
from tests.support.derp_server import DerpServer
from tests.support.derper import Derper, DerperBed
from tests.support.ports import free_port

runner = CliRunner()
STEPS = ["dns", "stun", "tls", "cert_name", "cert_expiry", "latency_check", "generate_204", "derp"]


@pytest.fixture(scope="module")
def dual(bed: DerperBed) -> tuple[Derper, Derper]:
    """One server key on 127.0.0.1 and ::1 (two derpers sharing key, name, ports): a dual-stack node."""
    v4 = bed.start("dual.test")
    v6 = bed.start(
        "dual.test", host="::1", port=v4.port, stun_port=v4.stun_port, private_key=v4.private_key, same_cert_as=v4
    )
    return v4, v6


@pytest.fixture(scope="module")
def split(bed: DerperBed) -> tuple[Derper, Derper]:
    """Two different servers behind one name, one per address family: what a load balancer looks like."""
    v4 = bed.start("split.test")
    v6 = bed.start("split.test", host="::1", port=v4.port, stun_port=v4.stun_port, same_cert_as=v4)
    return v4, v6


@pytest.fixture(scope="module")
def mesh(bed: DerperBed) -> list[Derper]:
    return bed.start_mesh(("mesha.test", "meshb.test"))


@pytest.fixture(scope="module")
def loner(bed: DerperBed) -> Derper:
    return bed.start("loner.test")


@pytest.fixture(scope="module")
def short_lived(bed: DerperBed) -> Derper:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    return bed.start("soon.test", cert=bed.ca.issue_cert("soon.test", not_after=soon))


@pytest.fixture(scope="module")
def verifying(bed: DerperBed) -> Derper:
    return bed.start(
        "verify.test",
        extra=[
            "-verify-clients",
            "-socket",
            str(bed.directory / "no-tailscaled.sock"),
            "-mesh-psk-file",
            bed.mesh_psk_file(),
        ],
    )


def node(server: Derper, name: str, region: int = 900, *, ipv6: str = "none") -> dict[str, Any]:
    return {
        "Name": name,
        "RegionID": region,
        "HostName": server.hostname,
        "IPv4": "127.0.0.1",
        "IPv6": ipv6,
        "STUNPort": server.stun_port,
        "DERPPort": server.port,
    }


def write_map(tmp_path: Path, *nodes: dict[str, Any]) -> str:
    regions: dict[str, Any] = {}
    for n in nodes:
        rid = n["RegionID"]
        regions.setdefault(
            str(rid), {"RegionID": rid, "RegionCode": f"r{rid}", "RegionName": f"Region {rid}", "Nodes": []}
        )["Nodes"].append(n)
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"Regions": regions}))
    return str(path)


def run_check(bed: DerperBed, map_file: str, *args: str, selector: str = "900") -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["check", selector, "--map", map_file, "--ca-file", bed.ca_file, "-f", "json", *args])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def steps(node_data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in node_data["checks"]}


# -- every step against the real server ----------------------------------------------------------------


def test_every_step_passes_against_derper(bed: DerperBed, loner: Derper, tmp_path: Path) -> None:
    code, data = run_check(bed, write_map(tmp_path, node(loner, "900a")), "--relay")
    assert code == 0 and data["ok"], data
    (n,) = data["nodes"]
    got = steps(n)
    assert list(got) == [*STEPS, "relay"]
    assert got["dns"]["status"] == "skip" and "using the map's address 127.0.0.1" in got["dns"]["detail"]
    assert all(got[s]["status"] == "pass" for s in [*STEPS[1:], "relay"]), got
    assert n["family"] == 4 and n["address"] == "127.0.0.1"
    assert got["stun"]["mapped"].startswith("127.0.0.1:") and got["stun"]["rtt_ms"] > 0
    assert got["tls"]["handshake_ms"] > 0 and "chain trusted" in got["tls"]["detail"]
    assert got["cert_expiry"]["expires_in_s"] > 14 * 86400
    assert got["latency_check"]["http_status"] == 200 and got["generate_204"]["http_status"] == 204
    assert n["public_key"] == loner.node_key == got["derp"]["public_key"]
    assert got["derp"]["public_keys"] == [loner.node_key] and "client admitted" in got["derp"]["detail"]
    assert got["relay"]["sent"] == got["relay"]["received"] == 5 and got["relay"]["loss"] == 0
    assert got["relay"]["rtt_ms"] > 0


def test_a_name_with_both_families_is_checked_on_each(
    bed: DerperBed, dual: tuple[Derper, Derper], tmp_path: Path
) -> None:
    v4, _ = dual
    code, data = run_check(bed, write_map(tmp_path, node(v4, "900d", ipv6="::1")))
    assert code == 0, data
    assert [(n["family"], n["address"]) for n in data["nodes"]] == [(4, "127.0.0.1"), (6, "::1")]
    for n in data["nodes"]:
        assert all(c["status"] != "fail" for c in n["checks"])
        assert n["public_key"] == v4.node_key
    assert "[::1]:" in steps(data["nodes"][1])["stun"]["detail"]
    # IPv6 off in the map: only IPv4 is checked
    code, data = run_check(bed, write_map(tmp_path, node(v4, "900d")))
    assert [n["family"] for n in data["nodes"]] == [4]


def test_different_servers_behind_one_name_are_a_load_balancer(
    bed: DerperBed, split: tuple[Derper, Derper], tmp_path: Path
) -> None:
    v4, v6 = split
    code, data = run_check(bed, write_map(tmp_path, node(v4, "900s", ipv6="::1")))
    assert code == 1
    for n in data["nodes"]:
        lb = steps(n)["server_key"]
        assert lb["status"] == "fail" and lb["load_balancer"] is True
        assert lb["public_keys"] == sorted([v4.node_key, v6.node_key])
        assert "load balancer" in lb["detail"]


def test_one_family_down_is_reported_on_its_own(bed: DerperBed, loner: Derper, tmp_path: Path) -> None:
    code, data = run_check(bed, write_map(tmp_path, node(loner, "900a", ipv6="::1")), "-t", "2")
    assert code == 1
    v4, v6 = data["nodes"]
    assert v4["ok"] and v4["family"] == 4
    assert not v6["ok"] and v6["family"] == 6
    assert steps(v6)["tls"]["status"] == "fail" and "[::1]" in steps(v6)["tls"]["detail"]


def test_certificate_expiring_within_warn_days_fails(bed: DerperBed, short_lived: Derper, tmp_path: Path) -> None:
    map_file = write_map(tmp_path, node(short_lived, "900e"))
    code, data = run_check(bed, map_file)
    expiry = steps(data["nodes"][0])["cert_expiry"]
    assert code == 1 and expiry["status"] == "fail"
    assert "sooner than --warn-days 14" in expiry["detail"] and expiry["days_left"] == 1
    assert 0 < expiry["expires_in_s"] <= 2 * 86400
    code, data = run_check(bed, map_file, "--warn-days", "1")
    assert code == 0 and steps(data["nodes"][0])["cert_expiry"]["status"] == "pass"


def test_mesh_of_a_region_is_probed_both_ways(
    bed: DerperBed, mesh: list[Derper], loner: Derper, tmp_path: Path
) -> None:
    a, b = mesh
    code, data = run_check(bed, write_map(tmp_path, node(a, "900a"), node(b, "900b")), "--relay")
    assert code == 0, data
    (probe,) = data["mesh"]
    assert probe["ok"] and probe["node_a"] == "900a" and probe["node_b"] == "900b"
    assert probe["received"] == probe["sent"] == 5 and probe["rtt_ms"] > 0
    assert probe["server_keys"] == sorted([a.node_key, b.node_key])
    # a node outside the mesh in the same region: each node relays, but nothing crosses between them
    code, data = run_check(bed, write_map(tmp_path, node(a, "900a"), node(loner, "900c")), "--relay", "-t", "1.5")
    assert code == 1
    assert all(n["ok"] for n in data["nodes"])
    (probe,) = data["mesh"]
    assert not probe["ok"] and "through the mesh" in probe["error"]
    text = runner.invoke(
        app, ["check", "900", "--map", str(tmp_path / "map.json"), "--ca-file", bed.ca_file, "--relay", "-t", "1.5"]
    ).stdout
    assert "mesh (a packet sent via one node reaches a client on the other):" in text
    assert "1 mesh probe(s) failed" in text


def test_verify_clients_is_not_a_generic_failure(bed: DerperBed, verifying: Derper, tmp_path: Path) -> None:
    map_file = write_map(tmp_path, node(verifying, "900v"))
    code, data = run_check(bed, map_file, "--relay", "-t", "1.5")
    got = steps(data["nodes"][0])
    assert code == 0, data
    assert got["derp"]["status"] == "pass" and got["derp"]["verify_clients"] is True
    assert got["derp"]["public_key"] == verifying.node_key and "--verify-clients" in got["derp"]["detail"]
    assert got["relay"]["status"] == "skip" and "verifies clients" in got["relay"]["detail"]
    code, data = run_check(bed, map_file, "--relay", "--mesh-key-file", bed.mesh_psk_file())
    got = steps(data["nodes"][0])
    assert code == 0 and got["relay"]["status"] == "pass" and "verify_clients" not in got["derp"]


def test_bad_mesh_key_file_and_unclosed_bracket_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "mesh.key"
    bad.write_text("not a key")
    result = runner.invoke(app, ["check", "127.0.0.1", "--mesh-key-file", str(bad)])
    assert result.exit_code == 2 and "64 lower-case hex digits" in result.output
    result = runner.invoke(app, ["check", "[::1"])
    assert result.exit_code == 2 and "must be closed with ]" in result.output
    assert "Traceback" not in result.output


# -- deadlines: a server that drips (the stand-in; derper never does this) ---------------------------------


def test_a_dripping_server_cannot_stretch_a_step_past_the_timeout(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("drip.test")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with DerpServer(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"), drip=0.25) as srv:
        target = check.NodeTarget("drip.test", derp_port=srv.port, stun_port=None, ipv4="127.0.0.1", ipv6="none")
        started = time.monotonic()
        report = check.run("drip", [target], timeout=1.0, ca_file=str(tmp_path / "ca.pem"))
        took = time.monotonic() - started
    got = {c.name: c for c in report.nodes[0].checks}
    for name in ("latency_check", "generate_204", "derp"):
        assert got[name].status == "fail" and "within 1 s" in got[name].detail, got[name]
    # three dripping steps of 1 s each (and a TLS handshake), not 0.25 s per byte of ~60-byte answers
    assert took < 3 * 1.0 + 1.5


# -- the exporter ----------------------------------------------------------------------------------------


def _http(port: int, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_exporter_serves_the_last_report(bed: DerperBed, mesh: list[Derper], tmp_path: Path) -> None:
    a, b = mesh
    targets = check.targets_from_map(_load(write_map(tmp_path, node(a, "900a"), node(b, "900b"))), [900])
    collector = CheckCollector()
    server = Exporter("127.0.0.1", 0)
    port = server.address[1]
    try:
        assert _http(port, "GET", "/metrics")[0] == 503
        assert _http(port, "GET", "/healthz")[0] == 503  # 200 once a round is published
        collector.update(check.run("900", targets, ca_file=bed.ca_file, relay=True))
        server.publish(exposition(collector))
        status, headers, body = _http(port, "GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
        head_status, head_headers, head_body = _http(port, "HEAD", "/metrics")
        assert head_status == 200 and head_body == b"" and head_headers["content-length"] == str(len(body))
        assert _http(port, "HEAD", "/healthz")[0] == 200 and _http(port, "GET", "/nope")[0] == 404
    finally:
        server.close()
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    for n, server_ in (("900a", a), ("900b", b)):
        base = {"node": n, "host": server_.hostname, "region_id": "900", "family": "4"}
        assert value("derptool_check_up", **base) == 1
        for step in ("stun", "tls", "cert_name", "cert_expiry", "latency_check", "generate_204", "derp", "relay"):
            assert value("derptool_check_step_success", **base, step=step) == 1
        assert 0 < value("derptool_check_stun_rtt_seconds", **base) < 1
        assert 0 < value("derptool_check_tls_handshake_seconds", **base) < 1
        assert value("derptool_check_cert_expiry_seconds", **base) > 365 * 86400
        assert 0 < value("derptool_check_relay_rtt_seconds", **base) < 1
        assert value("derptool_check_relay_loss_ratio", **base) == 0
    mesh_labels = {"region_id": "900", "node_a": "900a", "node_b": "900b"}
    assert value("derptool_check_mesh_up", **mesh_labels) == 1
    assert value("derptool_check_mesh_rtt_seconds", **mesh_labels) > 0
    assert value("derptool_check_runs_total") == 1
    assert value("derptool_check_run_duration_seconds") > 0
    dns = {"node": "900a", "host": a.hostname, "region_id": "900", "family": "4", "step": "dns"}
    assert ("derptool_check_step_success", tuple(sorted(dns.items()))) not in samples  # skipped: absent
    assert b"derptool_check_up{" in exposition(collector)


def _load(map_file: str) -> Any:
    from derptool.derpmap.sources import load_map

    return load_map(map_file).derp_map


def test_check_every_listen_runs_until_interrupted(bed: DerperBed, loner: Derper, tmp_path: Path) -> None:
    map_file = write_map(tmp_path, node(loner, "900a"))
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "derptool",
            "check",
            "900",
            "--map",
            map_file,
            "--ca-file",
            bed.ca_file,
            "--every",
            "0.3s",
            "--listen",
            f"127.0.0.1:{port}",
            "-f",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        runs = 0.0
        while time.monotonic() < deadline:
            try:
                status, _, body = _http(port, "GET", "/metrics")
            except OSError:
                status, body = 0, b""
            if status == 200:
                fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
                runs = fams["derptool_check_runs"].samples[0].value
                if runs >= 2:
                    break
            time.sleep(0.1)
        assert runs >= 2, proc.stderr.read() if proc.poll() is not None and proc.stderr else "no second run"
        assert _http(port, "GET", "/healthz")[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 130 and "interrupted" in err
    first = json.loads(out.split("\n}\n")[0] + "\n}")
    assert first["ok"] and first["nodes"][0]["public_key"] == loner.node_key


def test_count_stops_the_repetition(bed: DerperBed, loner: Derper, tmp_path: Path) -> None:
    map_file = write_map(tmp_path, node(loner, "900a"))
    result = runner.invoke(
        app, ["check", "900", "--map", map_file, "--ca-file", bed.ca_file, "--every", "0.1s", "--count", "2"]
    )
    assert result.exit_code == 0 and result.stdout.count("all checks passed") == 2
