"""Port-mapping probes (UPnP IGD, NAT-PMP, PCP) as netcheck sends them: packets, and a real miniupnpd.

The end-to-end test runs Debian's ``miniupnpd`` on the router of a network-namespace test bed
(``tests/support/netns.py``) and probes it from the client namespace; it needs root, ``ip``, ``nft`` and
``miniupnpd`` and says so when it skips.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from derptool.net import portmap
from tests.support import netns
from tests.support.prereq import first_missing, missing_command, need
from tests.support.repo import REPO

ROOT = REPO


# -- packets ------------------------------------------------------------------------------------


def test_request_packets_are_what_netcheck_sends() -> None:
    assert portmap.pmp_public_address_request() == b"\x00\x00"
    pcp = portmap.pcp_announce_request("10.77.0.2")
    assert len(pcp) == 24 and pcp[:8] == b"\x02\x00\x00\x00\x00\x00\x00\x00"
    assert pcp[8:] == b"\0" * 10 + b"\xff\xff" + bytes([10, 77, 0, 2])  # IPv4-mapped
    assert portmap.pcp_announce_request("2001:db8::1")[8:] == bytes.fromhex("20010db8000000000000000000000001")
    assert portmap.ssdp_search() == (
        b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nST: ssdp:all\r\nMAN: "ssdp:discover"\r\nMX: 2\r\n\r\n'
    )
    assert b"ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n" in portmap.ssdp_search(portmap.IGD)


def test_pmp_responses() -> None:
    ok = bytes([0, 0x80]) + struct.pack("!HI", 0, 77) + bytes([198, 20, 0, 1])
    assert portmap.parse_pmp_response(ok) == portmap.PmpResponse(0x80, 0, 77, "198.20.0.1")
    assert portmap.parse_pmp_response(ok[:8] + bytes(4)) == portmap.PmpResponse(0x80, 0, 77, None)  # 0.0.0.0
    assert portmap.parse_pmp_response(ok + b"\0") is None  # a public-address reply is exactly 12 bytes
    assert portmap.parse_pmp_response(ok[:11]) is None
    assert portmap.parse_pmp_response(b"\x01" + ok[1:]) is None  # another version
    udp_map = bytes([0, 0x81]) + struct.pack("!HIHHI", 0, 5, 4242, 4242, 7200)
    assert portmap.parse_pmp_response(udp_map) == portmap.PmpResponse(0x81, 0, 5)
    assert portmap.parse_pmp_response(udp_map[:12]) is None


def test_pcp_responses() -> None:
    pkt = bytes([2, 0x80, 0, 0]) + struct.pack("!II", 120, 99) + bytes(16)
    assert portmap.parse_pcp_response(pkt) == portmap.PcpResponse(0x80, 0, 120, 99)
    assert portmap.parse_pcp_response(pkt[:23]) is None
    assert portmap.parse_pcp_response(b"\x00" + pkt[1:]) is None


def test_ssdp_responses() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: urn:schemas-upnp-org:device:"
        b"InternetGatewayDevice:1\r\nUSN: uuid:x::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
        b"EXT:\r\nSERVER: test/1 UPnP/1.1 MiniUPnPd/2.3.1\r\nlocation: http://10.77.0.1:5000/rootDesc.xml"
        b"\r\n\r\n"
    )
    got = portmap.parse_ssdp_response(answer)
    assert got is not None and got.location == "http://10.77.0.1:5000/rootDesc.xml"
    assert got.server.endswith("MiniUPnPd/2.3.1") and got.st.endswith("InternetGatewayDevice:1")
    assert portmap.is_igd_answer(answer)
    assert not portmap.is_igd_answer(answer.replace(b"InternetGatewayDevice", b"MediaServer"))
    assert not portmap.is_igd_answer(portmap.ssdp_search(portmap.IGD))  # a request, not an answer
    assert portmap.parse_ssdp_response(b"\xff\xfe") is None
    assert portmap.parse_ssdp_response(b"HTTP/1.1 404 Not Found\r\n\r\n") is None


def test_default_gateway_from_the_kernel_table(tmp_path: Path) -> None:
    table = tmp_path / "route"
    table.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth1\t00000000\t0200A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0\n"
        "eth0\t00000000\t01004D0A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
        "eth0\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    )
    assert portmap.default_gateway(str(table)) == "10.77.0.1"  # the lower metric
    table.write_text("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n")
    assert portmap.default_gateway(str(table)) is None
    assert portmap.default_gateway(str(tmp_path / "missing")) is None


def test_no_gateway_is_an_error_value_not_an_exception() -> None:
    got = portmap.probe("127.0.0.1", pxp_port=1, ssdp_port=1, multicast=False, timeout=0.1)
    assert (got.upnp, got.pmp, got.pcp) == (False, False, False) and got.error is None
    assert got.protocols == []


# -- a real miniupnpd on a namespace router ----------------------------------------------------


def _skip_reason() -> str | None:
    return first_missing(netns.missing_requirements(), missing_command("miniupnpd"))


PUBLIC_IP = "198.20.0.1"
"""The router's declared public address (miniupnpd refuses documentation ranges); never contacted."""


@pytest.fixture(scope="module")
def lab() -> Iterator[netns.Lab]:
    need(_skip_reason())
    with netns.Lab() as lab:
        netns.nat_topology(lab, "easy")
        yield lab


def _miniupnpd(lab: netns.Lab, tmp: Path, *, natpmp: bool, upnp: bool) -> subprocess.Popen[str]:
    conf = tmp / "miniupnpd.conf"
    conf.write_text(
        f"ext_ifname=r1\nlistening_ip=r0\nport=0\nenable_natpmp={'yes' if natpmp else 'no'}\n"
        f"enable_upnp={'yes' if upnp else 'no'}\nsecure_mode=yes\nsystem_uptime=yes\n"
        "uuid=3a0c3a5c-0000-4000-8000-000000000001\n"
        "allow 1024-65535 10.77.0.0/24 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n"
    )
    proc = lab.popen(
        "router",
        ["miniupnpd", "-d", "-o", PUBLIC_IP, "-f", str(conf), "-P", str(tmp / "pid")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 5
    wanted = [port for port, on in ((":5351 ", natpmp), (":1900 ", upnp)) if on]
    while time.monotonic() < deadline:  # ready once listening on 5351 (NAT-PMP/PCP) and 1900 (SSDP) as enabled
        listening = lab.run("router", "ss", "-lun", check=False).stdout
        if all(port in listening for port in wanted):
            return proc
        time.sleep(0.05)
    raise RuntimeError("miniupnpd did not start")


def _probe_from_client(lab: netns.Lab) -> dict[str, object]:
    code = (
        "import json; from derptool.net.portmap import probe; r = probe(timeout=1.0); "
        "print(json.dumps({**r.to_data(), 'protocols': r.protocols, "
        "'servers': [d.server for d in r.upnp_devices]}))"
    )
    out = lab.run("client", sys.executable, "-c", code, timeout=30)
    data: dict[str, object] = json.loads(out.stdout)
    return data


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:  # miniupnpd busy removing its rules: do not hide the test's own error
        proc.kill()
        proc.wait(5)


def test_miniupnpd_all_three_protocols(lab: netns.Lab, tmp_path: Path) -> None:
    proc = _miniupnpd(lab, tmp_path, natpmp=True, upnp=True)
    try:
        got = _probe_from_client(lab)
    finally:
        _stop(proc)
    assert got["gateway"] == "10.77.0.1" and got["error"] is None
    assert got["protocols"] == ["UPnP", "NAT-PMP", "PCP"]
    assert got["public_ip"] == PUBLIC_IP
    assert any("MiniUPnPd" in s for s in got["servers"])  # type: ignore[attr-defined]


def test_miniupnpd_upnp_only(lab: netns.Lab, tmp_path: Path) -> None:
    proc = _miniupnpd(lab, tmp_path, natpmp=False, upnp=True)
    try:
        got = _probe_from_client(lab)
    finally:
        _stop(proc)
    assert got["protocols"] == ["UPnP"] and got["public_ip"] is None


def test_nothing_on_the_router_means_no_port_mapping_quickly(lab: netns.Lab) -> None:
    t0 = time.monotonic()
    got = _probe_from_client(lab)
    assert got["protocols"] == [] and got["error"] is None
    assert time.monotonic() - t0 < 5  # the probe itself is bounded by 250 ms


# -- PortMapping in the reports of latency and nat (tailscale netcheck's PortMapping line) -----------


def _report_map(tmp: Path) -> Path:
    from tests.support.netns import PUBLIC_V4

    path = tmp / "map.json"
    path.write_text(
        json.dumps(
            {
                "Regions": {
                    "900": {
                        "RegionID": 900,
                        "RegionCode": "lab",
                        "RegionName": "Lab",
                        "Nodes": [
                            {
                                "Name": "900a",
                                "RegionID": 900,
                                "HostName": PUBLIC_V4[0],
                                "IPv4": PUBLIC_V4[0],
                                "IPv6": "none",
                                "STUNPort": 3490,
                                "STUNOnly": True,
                            }
                        ],
                    }
                }
            }
        )
    )
    return path


def test_latency_and_nat_report_port_mapping_from_miniupnpd(lab: netns.Lab, tmp_path: Path) -> None:
    from tests.support.netns import PUBLIC_V4

    responder = lab.popen(
        "public",
        [sys.executable, "-m", "tests.support.stun_responder", "--bind", f"{PUBLIC_V4[0]}:3490"],
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
    )
    assert responder.stdout is not None and "listening" in responder.stdout.readline()
    proc = _miniupnpd(lab, tmp_path, natpmp=True, upnp=True)
    path = str(_report_map(tmp_path))
    try:
        latency = lab.run(
            "client",
            sys.executable,
            "-m",
            "derptool",
            "latency",
            "--map",
            path,
            "--port-mapping",
            "-f",
            "json",
            "--timeout",
            "2s",
            timeout=30,
        )
        table = lab.run(
            "client",
            sys.executable,
            "-m",
            "derptool",
            "latency",
            "--map",
            path,
            "--port-mapping",
            "--timeout",
            "2s",
            timeout=30,
        )
        nat_out = lab.run(
            "client",
            sys.executable,
            "-m",
            "derptool",
            "nat",
            "--map",
            path,
            "--port-mapping",
            "-f",
            "json",
            "--timeout",
            "2",
            timeout=30,
        )
        without = lab.run(
            "client",
            sys.executable,
            "-m",
            "derptool",
            "latency",
            "--map",
            path,
            "-f",
            "json",
            "--timeout",
            "2s",
            timeout=30,
        )
    finally:
        _stop(proc)
        responder.terminate()
        responder.wait(5)
    data = json.loads(latency.stdout)
    assert data["udp"] is True and data["preferred_region"] == 900
    pm = data["port_mapping"]
    assert (pm["upnp"], pm["pmp"], pm["pcp"], pm["gateway"], pm["public_ip"]) == (
        True,
        True,
        True,
        "10.77.0.1",
        PUBLIC_IP,
    )
    assert "PortMapping: UPnP, NAT-PMP, PCP" in table.stdout, table.stdout
    nat_data = json.loads(nat_out.stdout)
    assert nat_data["nat_type"] in ("easy", "unknown") and nat_data["port_mapping"]["pmp"] is True, json.dumps(nat_data)
    assert json.loads(without.stdout)["port_mapping"] is None  # not asked for: nothing sent to the gateway
