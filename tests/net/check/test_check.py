"""``derptool check`` against real local servers: a STUN responder and a DERP-speaking TLS server.

Certificates come from a trustme test CA: valid, expired, for the wrong name, and from a CA the
checker is not told about.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from derptool.cli import app
from derptool.net import check
from tests.support.derp_server import DerpServer
from tests.support.ports import free_udp_port
from tests.support.stun_responder import StunResponder

runner = CliRunner()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _leaf_files(cert: trustme.LeafCert, directory: Path) -> tuple[str, str]:
    chain, key = directory / "chain.pem", directory / "key.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key))
    return str(chain), str(key)


@pytest.fixture
def stun_port() -> Iterator[int]:
    with StunResponder() as responder:
        yield responder.add("127.0.0.1").port


def _serve(cert: trustme.LeafCert, tmp_path: Path, **kw: Any) -> DerpServer:
    chain, key = _leaf_files(cert, tmp_path)
    return DerpServer(chain, key, **kw)


def _invoke(args: list[str], ca_file: str | None = None) -> tuple[int, dict[str, Any]]:
    env = {"DERPTOOL_CA_FILE": ca_file} if ca_file else {}
    res = runner.invoke(app, ["check", *args, "--format", "json", "--timeout", "2"], env=env)
    assert "Traceback" not in res.output
    return res.exit_code, json.loads(res.stdout) if res.stdout.strip().startswith("{") else {}


def _statuses(data: dict[str, Any], node: int = 0) -> dict[str, str]:
    return {c["name"]: c["status"] for c in data["nodes"][node]["checks"]}


def _detail(data: dict[str, Any], name: str, node: int = 0) -> str:
    return next(str(c["detail"]) for c in data["nodes"][node]["checks"] if c["name"] == name)


def test_healthy_server_passes_everything(ca: trustme.CA, ca_file: str, tmp_path: Path, stun_port: int) -> None:
    with _serve(ca.issue_cert("localhost"), tmp_path) as srv:
        code, data = _invoke([f"https://localhost:{srv.port}/", "--stun-port", str(stun_port)], ca_file)
        assert {"/derp/latency-check", "/generate_204", "/derp"} <= set(srv.paths)
    assert code == 0, data
    assert data["ok"] is True
    assert _statuses(data) == {
        name: "pass"
        for name in ("dns", "stun", "tls", "cert_name", "cert_expiry", "latency_check", "generate_204", "derp")
    }
    node = data["nodes"][0]
    assert node["public_key"] == "nodekey:" + srv.public_key.hex()
    assert node["address"] == "127.0.0.1"
    expiry = next(c for c in node["checks"] if c["name"] == "cert_expiry")
    assert expiry["days_left"] > 300
    assert "127.0.0.1:" in _detail(data, "stun")


def test_table_output(ca: trustme.CA, ca_file: str, tmp_path: Path, stun_port: int) -> None:
    with _serve(ca.issue_cert("localhost"), tmp_path) as srv:
        res = runner.invoke(
            app, ["check", f"localhost:{srv.port}", "--stun-port", str(stun_port)], env={"DERPTOOL_CA_FILE": ca_file}
        )
    assert res.exit_code == 0, res.output
    assert "all checks passed: 8 passed, 0 failed, 0 skipped" in res.stdout
    assert f"nodekey:{srv.public_key.hex()}" in res.stdout


def test_expired_certificate_fails(ca: trustme.CA, ca_file: str, tmp_path: Path, stun_port: int) -> None:
    now = dt.datetime.now(dt.UTC)
    cert = ca.issue_cert("localhost", not_before=now - dt.timedelta(days=100), not_after=now - dt.timedelta(days=3))
    with _serve(cert, tmp_path) as srv:
        code, data = _invoke([f"localhost:{srv.port}", "--stun-port", str(stun_port)], ca_file)
    assert code == 1
    st = _statuses(data)
    assert st["tls"] == "fail" and "expired" in _detail(data, "tls")
    assert st["cert_expiry"] == "fail" and "expired 3 days ago" in _detail(data, "cert_expiry")
    assert st["cert_name"] == "pass"
    # The server itself still works; the checks say so over an unverified connection.
    assert st["derp"] == "pass" and "not verified" in _detail(data, "derp")


def test_wrong_name_fails(ca: trustme.CA, ca_file: str, tmp_path: Path, stun_port: int) -> None:
    with _serve(ca.issue_cert("derp.example.net", "*.other.test"), tmp_path) as srv:
        code, data = _invoke([f"localhost:{srv.port}", "--stun-port", str(stun_port)], ca_file)
    assert code == 1
    st = _statuses(data)
    assert st["tls"] == "pass" and st["cert_name"] == "fail"
    assert "derp.example.net" in _detail(data, "cert_name") and "localhost" in _detail(data, "cert_name")


def test_untrusted_ca_fails_unless_insecure(tmp_path: Path, stun_port: int) -> None:
    other = trustme.CA()
    with _serve(other.issue_cert("localhost"), tmp_path) as srv:
        code, data = _invoke([f"localhost:{srv.port}", "--stun-port", str(stun_port)])
        assert code == 1 and _statuses(data)["tls"] == "fail"
        assert "issuer" in _detail(data, "tls")
        code, data = _invoke([f"localhost:{srv.port}", "--stun-port", str(stun_port), "--insecure"])
    assert code == 0
    assert "chain not verified (--insecure)" in _detail(data, "tls")


def test_region_selector_uses_map_ports_and_cert_name(
    ca: trustme.CA, ca_file: str, tmp_path: Path, stun_port: int
) -> None:
    other = trustme.CA()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with _serve(ca.issue_cert("derp.test"), tmp_path / "a") as a, _serve(other.issue_cert("x"), tmp_path / "b") as b:
        dmap = {
            "Regions": {
                "900": {
                    "RegionID": 900,
                    "RegionCode": "home",
                    "RegionName": "Home",
                    "Nodes": [
                        {
                            "Name": "900a",
                            "RegionID": 900,
                            "HostName": "localhost",
                            "CertName": "derp.test",
                            "IPv4": "127.0.0.1",
                            "IPv6": "none",
                            "STUNPort": stun_port,
                            "DERPPort": a.port,
                        },
                        {
                            "Name": "900b",
                            "RegionID": 900,
                            "HostName": "127.0.0.1",
                            "InsecureForTests": True,
                            "STUNPort": -1,
                            "DERPPort": b.port,
                        },
                        {
                            "Name": "900s",
                            "RegionID": 900,
                            "HostName": "127.0.0.1",
                            "STUNOnly": True,
                            "STUNPort": stun_port,
                        },
                    ],
                }
            }
        }
        path = tmp_path / "map.json"
        path.write_text(json.dumps(dmap))
        code, data = _invoke(["home", "--map", str(path)], ca_file)
    assert code == 0, data
    assert [n["node"] for n in data["nodes"]] == ["900a", "900b", "900s"]
    assert data["nodes"][0]["tls_name"] == "derp.test"
    assert "covers derp.test" in _detail(data, "cert_name", 0)
    assert data["nodes"][0]["public_key"] == "nodekey:" + a.public_key.hex()
    b_st = _statuses(data, 1)
    assert b_st["stun"] == "skip" and b_st["dns"] == "skip" and b_st["derp"] == "pass"
    assert "InsecureForTests" in _detail(data, "tls", 1)
    assert b_st["cert_name"] == "skip"  # not required without verification
    s_st = _statuses(data, 2)
    assert s_st["stun"] == "pass" and s_st["derp"] == "skip"


def test_not_a_derp_server_and_missing_stun(ca: trustme.CA, ca_file: str, tmp_path: Path) -> None:
    silent = free_udp_port()
    with _serve(ca.issue_cert("localhost"), tmp_path, derp=False, generate_204_status=200) as srv:
        code, data = _invoke([f"localhost:{srv.port}", "--stun-port", str(silent), "--timeout", "1"], ca_file)
    assert code == 1
    st = _statuses(data)
    assert st["stun"] == "fail"
    assert st["latency_check"] == "pass"
    assert st["generate_204"] == "fail" and "want 204" in _detail(data, "generate_204")
    assert st["derp"] == "fail" and "not a DERP server" in _detail(data, "derp")
    assert data["nodes"][0]["public_key"] is None


def test_bad_key_frame_fails(ca: trustme.CA, ca_file: str, tmp_path: Path, stun_port: int) -> None:
    with _serve(ca.issue_cert("localhost"), tmp_path, bad_magic=True) as srv:
        code, data = _invoke([f"localhost:{srv.port}", "--stun-port", str(stun_port)], ca_file)
    assert code == 1
    assert "magic" in _detail(data, "derp")


def test_nothing_listening(stun_port: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connection refused
        code, data = _invoke([f"127.0.0.1:{port}", "--stun-port", str(stun_port)])
    assert code == 1
    st = _statuses(data)
    assert st["dns"] == "skip" and st["stun"] == "pass" and st["tls"] == "fail"
    assert st["derp"] == "skip" and st["cert_name"] == "skip"


@pytest.mark.parametrize(
    "target", ["ftp://x.example", "https://", "bad_host!.example", "h.example:99999", "h.example:port", "[::1]x"]
)
def test_bad_targets_exit_2(target: str) -> None:
    res = runner.invoke(app, ["check", target])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "error:" in res.output


def test_unknown_selector_and_unreadable_map(tmp_path: Path) -> None:
    res = runner.invoke(app, ["check", "nosuchregion", "--map", "snapshot"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = runner.invoke(app, ["check", "nyc", "--map", str(tmp_path / "none.json")])
    assert res.exit_code == 2
    res = runner.invoke(app, ["check", "localhost", "--ca-file", str(tmp_path / "none.pem")])
    assert res.exit_code == 2 and "CA file" in res.output
    # The map URL is refused (loopback port 9): the map could not be had.
    res = runner.invoke(app, ["check", "nyc", "--map", "http://127.0.0.1:9/derpmap.json"])
    assert res.exit_code == 3 and "Traceback" not in res.output


def test_parse_target() -> None:
    t = check.parse_target("https://derp.example.com:8443/derp")
    assert t is not None and (t.host, t.derp_port, t.stun_port) == ("derp.example.com", 8443, 3478)
    t = check.parse_target("[::1]:444", stun_port=5000)
    assert t is not None and (t.host, t.derp_port, t.stun_port) == ("::1", 444, 5000)
    t = check.parse_target("derp.example.com", derp_port=9443)
    assert t is not None and t.derp_port == 9443
    assert check.parse_target("nyc") is None
    assert check.parse_target("900") is None
    assert check.parse_target("localhost") is not None


def test_read_server_key_rejects_bad_frames() -> None:
    import io

    key = bytes(range(32))
    good = b"\x01" + (40).to_bytes(4, "big") + check.DERP_MAGIC + key
    assert check.read_server_key(io.BytesIO(good)) == key
    for bad in (b"\x02" + good[1:], good[:20], b"\x01" + (8).to_bytes(4, "big") + check.DERP_MAGIC):
        with pytest.raises(ValueError):
            check.read_server_key(io.BytesIO(bad))


def test_cert_info_reads_names_and_dates(ca: trustme.CA) -> None:
    cert = ca.issue_cert("derp.example.com", "*.derp.test", "192.0.2.7")
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    info = check.cert_info(der)
    assert info.dns_names == ("derp.example.com", "*.derp.test")
    assert info.ip_addresses == ("192.0.2.7",)
    assert info.not_before < dt.datetime.now(dt.UTC) < info.not_after
    assert check.name_matches("a.derp.test", info) and not check.name_matches("a.b.derp.test", info)
    assert check.name_matches("192.0.2.7", info) and not check.name_matches("derp.test", info)
    with pytest.raises(ValueError):
        check.cert_info(der[:50])


def test_ipv6_literal_with_ip_certificate(ca: trustme.CA, ca_file: str, tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1 on this machine")
    with StunResponder() as responder, _serve(ca.issue_cert("::1"), tmp_path, host="::1") as srv:
        port = responder.add("::1").port
        code, data = _invoke([f"[::1]:{srv.port}", "--stun-port", str(port)], ca_file)
    assert code == 0, data
    st = _statuses(data)
    assert st["dns"] == "skip" and st["cert_name"] == "pass" and st["derp"] == "pass"
    assert "[::1]:" in _detail(data, "stun")


def test_sha256_raw_pin(tmp_path: Path) -> None:
    import hashlib

    cert = trustme.CA().issue_cert("anything.test")  # from a CA nobody trusts: only the pin vouches for it
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())).hexdigest()
    with _serve(cert, tmp_path) as srv:
        for pin, want in ((digest, 0), ("00" * 32, 1)):
            dmap = {
                "Regions": {
                    "950": {
                        "RegionID": 950,
                        "RegionCode": "pin",
                        "RegionName": "Pinned",
                        "Nodes": [
                            {
                                "Name": "950a",
                                "RegionID": 950,
                                "HostName": "127.0.0.1",
                                "CertName": f"sha256-raw:{pin}",
                                "STUNPort": -1,
                                "DERPPort": srv.port,
                            }
                        ],
                    }
                }
            }
            path = tmp_path / "map.json"
            path.write_text(json.dumps(dmap))
            code, data = _invoke(["950", "--map", str(path)])
            assert code == want, data
            st = _statuses(data)
            assert st["cert_name"] == "skip"
            assert st["tls"] == ("pass" if want == 0 else "fail")
            if want == 0:
                assert "not verified" not in _detail(data, "derp")


_DER = ssl.PEM_cert_to_DER_cert(trustme.CA().issue_cert("fuzz.test", "192.0.2.1").cert_chain_pems[0].bytes().decode())


@given(st.lists(st.tuples(st.integers(0, len(_DER) - 1), st.integers(0, 255)), max_size=4), st.integers(0, len(_DER)))
@settings(max_examples=300, deadline=None)
def test_cert_info_never_raises_anything_but_value_error(flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_DER)
    for pos, value in flips:
        data[pos] = value
    with contextlib.suppress(ValueError):
        check.cert_info(bytes(data[:cut]))
