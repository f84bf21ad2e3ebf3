"""The DERP client and relay probe, against Tailscale's real derper (v1.102.5) on loopback.

The derper tests skip where the binary is missing (see tests/support/derper.py for how to build it). Each
kind of server starts once for this module: a single derper, a meshed pair, and two that verify clients.
The stand-in server is used only for what derper will not do (drip bytes, send a wrong magic).
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import time
from pathlib import Path

import pytest
import trustme

from derptool.errors import DerpClientRejected, DerpError
from derptool.net.derp import frames
from derptool.net.derp.client import (
    DerpClient,
    DerpEndpoint,
    Health,
    KeepAlive,
    OtherFrame,
    PeerGone,
    PeerPresent,
    Pong,
    ReceivedPacket,
    Restarting,
    parse_message,
)
from derptool.net.derp.handshake import client_info, parse_server_info
from derptool.net.derp.keys import NodePrivate, NodePublic
from derptool.net.derp.relay import relay_probe
from tests.support.derp_server import DerpServer
from tests.support.derper import Derper, DerperBed
from tests.support.ports import free_port
from tests.support.prereq import missing_go_peer, needs

needs_derper = needs(missing_go_peer("derper"))


@pytest.fixture(scope="module")
def single(bed: DerperBed) -> Derper:
    return bed.start("derp.test")


@pytest.fixture(scope="module")
def mesh(bed: DerperBed) -> list[Derper]:
    return bed.start_mesh(("derpa.test", "derpb.test"))


@pytest.fixture(scope="module")
def verifying(bed: DerperBed) -> Derper:
    """derper --verify-clients with no tailscaled behind it (its socket does not exist), plus a mesh key."""
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


@pytest.fixture(scope="module")
def admission(bed: DerperBed) -> Derper:
    """derper with an admission URL that cannot be reached and fail-open off: every client is refused."""
    return bed.start(
        "admit.test",
        extra=["-verify-client-url", f"http://127.0.0.1:{free_port()}/admit", "-verify-client-url-fail-open=false"],
    )


@pytest.fixture(scope="module")
def ctx(bed: DerperBed) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=bed.ca_file)


def endpoint(server: Derper, ctx: ssl.SSLContext, **kw: object) -> DerpEndpoint:
    return DerpEndpoint("127.0.0.1", server.port, server.hostname, ctx, **kw)  # type: ignore[arg-type]


# -- keys and frames, offline ------------------------------------------------------------------------


def test_node_key_text_round_trip() -> None:
    key = NodePrivate.generate()
    text = str(key.public)
    assert text.startswith("nodekey:") and len(text) == len("nodekey:") + 64
    assert NodePublic.parse(text) == key.public
    assert NodePrivate.parse(key.text()).public == key.public
    assert "privkey" not in repr(key)
    for bad in ("nodekey:12", "nodekey:" + "zz" * 32, "privkey:" + "00" * 31):
        with pytest.raises(ValueError, match="64 hex digits"):
            NodePublic.parse(bad)


def test_sealed_box_opens_only_for_the_right_pair() -> None:
    alice, bob, eve = NodePrivate(), NodePrivate(), NodePrivate()
    sealed = alice.seal_to(bob.public, b"secret")
    assert len(sealed) == frames.NONCE_LEN + len(b"secret") + 16
    assert bob.open_from(alice.public, sealed) == b"secret"
    with pytest.raises(ValueError, match="does not open"):
        eve.open_from(alice.public, sealed)
    with pytest.raises(ValueError, match="does not open"):
        bob.open_from(alice.public, sealed[:-1] + bytes([sealed[-1] ^ 1]))


def test_client_info_is_what_a_server_can_open() -> None:
    server, client = NodePrivate(), NodePrivate()
    payload = client_info(client, server.public, mesh_key="ab" * 32, is_prober=True)
    assert payload[:32] == client.public.raw
    info = json.loads(server.open_from(NodePublic(payload[:32]), payload[32:]))
    assert info == {"version": 2, "CanAckPings": True, "meshKey": "ab" * 32, "IsProber": True, "AppName": "derptool"}
    plain = json.loads(server.open_from(client.public, client_info(client, server.public)[32:]))
    assert "meshKey" not in plain and "IsProber" not in plain


def test_server_info_parsing() -> None:
    server, client = NodePrivate(), NodePrivate()
    sealed = server.seal_to(client.public, b'{"version":2,"TokenBucketBytesPerSecond":1000,"TokenBucketBytesBurst":5}')
    info = parse_server_info(client, server.public, sealed)
    assert (info.version, info.token_bucket_bytes_per_second, info.token_bucket_bytes_burst) == (2, 1000, 5)
    with pytest.raises(DerpError, match="does not open"):
        parse_server_info(client, NodePrivate().public, sealed)
    with pytest.raises(DerpError, match="not a sealed message"):
        parse_server_info(client, server.public, b"short")
    with pytest.raises(DerpError, match="not a JSON object"):
        parse_server_info(client, server.public, server.seal_to(client.public, b"[1]"))


def test_parse_message_each_frame_type() -> None:
    key = NodePrivate().public
    assert parse_message(frames.FrameType.RECV_PACKET, key.raw + b"data") == ReceivedPacket(key, b"data")
    assert parse_message(frames.FrameType.PEER_GONE, key.raw + b"\x01") == PeerGone(key, 1)
    assert parse_message(frames.FrameType.PEER_GONE, key.raw) == PeerGone(key, 0)
    v4 = b"\0" * 10 + b"\xff\xff" + bytes([192, 0, 2, 7]) + struct.pack("!H", 41641) + b"\x03"
    assert parse_message(frames.FrameType.PEER_PRESENT, key.raw + v4) == PeerPresent(key, "192.0.2.7:41641", 3)
    v6 = socket.inet_pton(socket.AF_INET6, "2001:db8::1") + struct.pack("!H", 443)
    assert parse_message(frames.FrameType.PEER_PRESENT, key.raw + v6) == PeerPresent(key, "[2001:db8::1]:443", 0)
    assert parse_message(frames.FrameType.PEER_PRESENT, key.raw) == PeerPresent(key, None, 0)
    assert parse_message(frames.FrameType.KEEP_ALIVE, b"") == KeepAlive()
    assert parse_message(frames.FrameType.PING, b"12345678") == b"12345678"
    assert parse_message(frames.FrameType.PONG, b"12345678") == Pong(b"12345678")
    assert parse_message(frames.FrameType.HEALTH, b"overloaded") == Health("overloaded")
    assert parse_message(frames.FrameType.RESTARTING, struct.pack("!II", 500, 9000)) == Restarting(500, 9000)
    assert parse_message(0x42, b"x") == OtherFrame(0x42, b"x")
    assert parse_message(frames.FrameType.RECV_PACKET, b"short") == OtherFrame(frames.FrameType.RECV_PACKET, b"short")


def test_relay_probe_rejects_bad_arguments() -> None:
    ep = DerpEndpoint("127.0.0.1", 1, "x.test", ssl.create_default_context())
    for kw in ({"count": 0}, {"size": 8}, {"size": 70000}, {"timeout": 0}):
        with pytest.raises(ValueError):
            relay_probe(ep, **kw)  # type: ignore[arg-type]


# -- against the stand-in: faults derper does not produce ----------------------------------------------


@pytest.fixture(scope="module")
def standin_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, str, str]:
    ca = trustme.CA()
    leaf = ca.issue_cert("standin.test")
    d = tmp_path_factory.mktemp("standin")
    leaf.cert_chain_pems[0].write_to_path(str(d / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(d / "key.pem"))
    return ca, str(d / "cert.pem"), str(d / "key.pem")


def _standin_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def test_a_dripping_server_cannot_hold_the_handshake_past_its_deadline(
    standin_cert: tuple[trustme.CA, str, str],
) -> None:
    ca, cert, key = standin_cert
    with DerpServer(cert, key, drip=0.05) as srv:  # ~180 bytes of answer: 9 s at this pace
        ep = DerpEndpoint("127.0.0.1", srv.port, "standin.test", _standin_ctx(ca))
        started = time.monotonic()
        with pytest.raises(DerpError, match=r"no answer within 1 s"):
            DerpClient.connect(ep, timeout=1.0)
        assert time.monotonic() - started < 2.0


def test_not_a_derp_server_and_a_wrong_magic(standin_cert: tuple[trustme.CA, str, str]) -> None:
    ca, cert, key = standin_cert
    with DerpServer(cert, key, derp=False) as srv:
        ep = DerpEndpoint("127.0.0.1", srv.port, "standin.test", _standin_ctx(ca))
        with pytest.raises(DerpError, match=r"answered 404.*not a DERP server"):
            DerpClient.connect(ep, timeout=3)
    with DerpServer(cert, key, bad_magic=True) as srv:
        ep = DerpEndpoint("127.0.0.1", srv.port, "standin.test", _standin_ctx(ca))
        with pytest.raises(DerpError, match=r"no server-key frame.*magic"):
            DerpClient.connect(ep, timeout=3)


def test_nothing_listening_is_a_derp_error() -> None:
    ep = DerpEndpoint("127.0.0.1", free_port(), "nobody.test", ssl.create_default_context())
    with pytest.raises(DerpError, match="cannot connect"):
        DerpClient.connect(ep, timeout=2)
    result = relay_probe(ep, timeout=2)
    assert not result.ok and result.error and "cannot connect" in result.error and result.sent == 0


# -- against the real derper ---------------------------------------------------------------------


@needs_derper
def test_handshake_with_derper(single: Derper, ctx: ssl.SSLContext) -> None:
    with DerpClient.connect(endpoint(single, ctx), timeout=5) as client:
        assert client.server_key == NodePublic(single.public_key)
        assert client.greeting.http_status == 101
        assert client.greeting.headers["derp-public-key"] == single.public_key.hex()
        assert client.server_info.version == frames.PROTOCOL_VERSION
        assert client.connect_seconds > 0


@needs_derper
def test_fast_start_skips_the_http_answer(single: Derper, ctx: ssl.SSLContext) -> None:
    with DerpClient.connect(endpoint(single, ctx), timeout=5, fast_start=True) as client:
        assert client.greeting.http_status is None
        assert client.server_key == NodePublic(single.public_key)
        assert client.ping(timeout=3) > 0


@needs_derper
def test_packets_between_two_clients(single: Derper, ctx: ssl.SSLContext) -> None:
    ep = endpoint(single, ctx)
    me = NodePrivate()
    with DerpClient.connect(ep, private=me) as a, DerpClient.connect(ep) as b:
        assert a.public_key == me.public
        a.send(b.public_key, b"first")
        a.send(b.public_key, b"second")
        assert b.recv(timeout=3) == ReceivedPacket(me.public, b"first")
        assert b.recv(timeout=3) == ReceivedPacket(me.public, b"second")
        big = bytes(range(256)) * 256
        b.send(a.public_key, big)
        assert a.recv(timeout=3) == ReceivedPacket(b.public_key, big)
        with pytest.raises(ValueError, match="at most"):
            a.send(b.public_key, big + b"!")


@needs_derper
def test_ping_pong_and_waiting_keeps_other_messages(single: Derper, ctx: ssl.SSLContext) -> None:
    ep = endpoint(single, ctx)
    with DerpClient.connect(ep) as a, DerpClient.connect(ep) as b:
        b.send(a.public_key, b"before the pong")
        time.sleep(0.1)  # the packet reaches a's socket before the pong does
        rtt = a.ping(timeout=3)
        assert 0 < rtt < 3
        assert a.recv(timeout=1) == ReceivedPacket(b.public_key, b"before the pong")
        with pytest.raises(TimeoutError):
            a.recv(timeout=0.2)


@needs_derper
def test_expected_key_and_wrong_trust(single: Derper, ctx: ssl.SSLContext) -> None:
    with pytest.raises(DerpError, match="expected nodekey:"):
        DerpClient.connect(endpoint(single, ctx), expect_key=NodePrivate().public)
    with pytest.raises(DerpError, match="certificate not trusted"):
        DerpClient.connect(endpoint(single, ssl.create_default_context()), timeout=3)
    # derper serves its certificate only to clients asking for its host name
    with pytest.raises(DerpError, match="TLS with"):
        DerpClient.connect(endpoint(single, ctx, server_name="other.test"), timeout=3)


@needs_derper
def test_relay_probe_through_one_derper(single: Derper, ctx: ssl.SSLContext) -> None:
    result = relay_probe(endpoint(single, ctx), count=10, timeout=5)
    assert result.ok, result.error
    assert (result.sent, result.received, result.loss) == (10, 10, 0.0)
    assert len(result.rtts_ms) == 10 and all(r > 0 for r in result.rtts_ms)
    assert result.rtt_ms is not None and min(result.rtts_ms) <= result.rtt_ms <= max(result.rtts_ms)
    assert result.server_keys == [single.node_key] and not result.mesh
    data = result.to_data()
    assert data["ok"] and data["loss"] == 0.0 and data["rtt_ms"] > 0 and data["node_b"] is None
    json.dumps(data)


@needs_derper
def test_relay_probe_across_a_derper_mesh(mesh: list[Derper], ctx: ssl.SSLContext) -> None:
    a, b = mesh
    result = relay_probe(endpoint(a, ctx), endpoint(b, ctx), count=5, timeout=10)
    assert result.ok, result.error
    assert result.mesh and result.received == 5 and result.loss == 0.0
    assert result.server_keys == sorted([a.node_key, b.node_key])


@needs_derper
def test_packets_cross_the_mesh_only_with_the_mesh(mesh: list[Derper], single: Derper, ctx: ssl.SSLContext) -> None:
    a, _ = mesh
    # derp.test is not in the mesh: a packet sent via derpa.test never reaches a client on derp.test
    result = relay_probe(endpoint(a, ctx), endpoint(single, ctx), count=2, timeout=1.5)
    assert not result.ok
    assert result.error and "through the mesh within 1.5 s" in result.error
    same = relay_probe(endpoint(a, ctx), endpoint(a, ctx), timeout=3)
    assert same.error and "same server key" in same.error


@needs_derper
def test_verify_clients_is_reported_clearly(verifying: Derper, bed: DerperBed, ctx: ssl.SSLContext) -> None:
    started = time.monotonic()
    with pytest.raises(DerpClientRejected, match=r"--verify-clients"):
        DerpClient.connect(endpoint(verifying, ctx), timeout=1.5)
    assert time.monotonic() - started < 3
    result = relay_probe(endpoint(verifying, ctx), timeout=1.5)
    assert result.rejected and not result.ok and result.error and "verif" in result.error
    # the mesh key lets a prober in, as derpprobe's clients get in
    mesh_key = Path(bed.mesh_psk_file()).read_text().strip()
    admitted = relay_probe(endpoint(verifying, ctx), timeout=5, mesh_key=mesh_key)
    assert admitted.ok, admitted.error


@needs_derper
def test_admission_url_refusal_is_reported_at_once(admission: Derper, ctx: ssl.SSLContext) -> None:
    with pytest.raises(DerpClientRejected, match="closed the connection after our client info"):
        DerpClient.connect(endpoint(admission, ctx), timeout=5)
    result = relay_probe(endpoint(admission, ctx), timeout=5)
    assert result.rejected and result.sent == 0
