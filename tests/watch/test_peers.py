"""``derptool.watch`` per peer: a status read as peer states, each peer's route and rates over a session,
finding the peer ``--peer`` names, and the session history behind the sparklines.

``tests/data/watch/status-derp.json`` and ``status-direct.json`` are client1's ``/localapi/v0/status`` in the
test tailnet (``tests/support/tailnet.py``, tailscale v1.102.5): while the hub dropped UDP between the
clients with bytes streaming to client2, then 8 s after the drop was lifted."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from derptool.cli.watch import sparkline
from derptool.errors import UsageError
from derptool.watch import History, PeerTracker, Route, build_report, find_peer, parse_snapshot, parse_status
from derptool.watch.scrape import Target
from derptool.watch.status import StatusSnapshot
from tests.watch.fake_localapi import DATA, peer, status


def snap(*peers: dict[str, Any], taken: float = 100.0, wall: float = 1_777_629_600.0) -> StatusSnapshot:
    return parse_status(status(*peers), taken=taken, wall=wall)


def test_a_status_reads_as_peer_states() -> None:
    got = snap(
        peer("laptop", cur_addr="192.0.2.7:41641", rx=10, tx=20, handshake="2026-05-01T10:00:00.123456789Z"),
        wall=1_777_629_612.0,
    )
    assert got.backend_state == "Running" and got.self_name == "client1"
    (state,) = got.peers.values()
    assert state.name == "laptop" and state.dns_name == "laptop.tailnet.test."
    assert state.tailscale_ips == ("100.64.0.9", "fd7a:115c:a1e0::9")
    assert (state.relay, state.cur_addr, state.rx_bytes, state.tx_bytes) == ("nyc", "192.0.2.7:41641", 10, 20)
    assert state.last_handshake == pytest.approx(1_777_629_600.123456)
    assert state.active and state.online


def test_real_statuses_read_as_derp_then_direct() -> None:
    derp = parse_status(json.loads((DATA / "status-derp.json").read_text()), taken=10.0, wall=0.0)
    direct = parse_status(json.loads((DATA / "status-direct.json").read_text()), taken=20.0, wall=0.0)
    assert derp.backend_state == "Running" and derp.self_name == "client1"
    (before,) = derp.peers.values()
    assert (before.name, before.tailscale_ips) == ("client2", ("100.64.0.1", "fd7a:115c:a1e0::1"))
    tracker = PeerTracker(derp)
    assert tracker.since[before.key][0] == Route("derp", region="nyc")
    (after,) = tracker.update(direct)
    assert after.route == Route("direct", endpoint="10.78.2.2:41642")
    assert after.rx_bytes_per_s == (2090076 - 293244) / 10.0
    assert after.since_s == 0.0
    assert after.state.last_handshake is not None and after.state.last_write is not None


def test_go_zero_times_mean_never_and_shared_in_nodes_are_left_out() -> None:
    shared = {**peer("guest"), "ShareeNode": True}
    got = snap(peer("laptop"), shared)
    assert [p.name for p in got.peers.values()] == ["laptop"]
    assert next(iter(got.peers.values())).last_handshake is None


@pytest.mark.parametrize(
    ("fields", "route"),
    [
        ({"active": False, "cur_addr": "192.0.2.7:41641"}, Route("idle")),
        ({"relay": "fra"}, Route("derp", region="fra")),
        ({"cur_addr": "192.0.2.7:41641"}, Route("direct", endpoint="192.0.2.7:41641")),
        ({"cur_addr": "[2001:db8::7]:41641"}, Route("direct", endpoint="[2001:db8::7]:41641")),
        ({"peer_relay": "198.51.100.4:7777:vni:12"}, Route("peer-relay", endpoint="198.51.100.4:7777")),
        ({"relay": ""}, Route("idle")),  # active but no path known: nothing to show
    ],
)
def test_route_follows_what_tailscale_status_shows(fields: dict[str, Any], route: Route) -> None:
    tracker = PeerTracker(snap())
    (got,) = tracker.update(snap(peer("laptop", **fields), taken=101.0))
    assert got.route == route
    assert got.to_data()["path"] == route.path


def test_rates_are_the_byte_deltas_over_the_time_between_statuses() -> None:
    tracker = PeerTracker(snap(peer("a", rx=1000, tx=500), peer("b", rx=9000, tx=9000)))
    got = {p.name: p for p in tracker.update(snap(peer("a", rx=5000, tx=2500), peer("b", rx=100, tx=9000), taken=102))}
    assert got["a"].rx_bytes_per_s == 2000.0 and got["a"].tx_bytes_per_s == 1000.0
    assert got["b"].rx_bytes_per_s == 50.0  # went down: re-added, counts from zero
    assert got["b"].tx_bytes_per_s == 0.0
    new = {p.name: p for p in tracker.update(snap(peer("a", rx=5000, tx=2500), peer("c", rx=400), taken=106))}
    assert new["c"].rx_bytes_per_s == 100.0  # new in this interval: all its bytes moved in it
    assert new["a"].bytes_per_s == 0.0


def test_since_is_null_until_the_session_sees_a_move_then_counts_from_it() -> None:
    tracker = PeerTracker(snap(peer("a"), peer("b", cur_addr="192.0.2.1:1")))
    first = {p.name: p for p in tracker.update(snap(peer("a"), peer("b", cur_addr="192.0.2.1:1"), taken=102))}
    assert first["a"].since_s is None and first["b"].since_s is None
    moved = {p.name: p for p in tracker.update(snap(peer("a", cur_addr="192.0.2.2:2"), peer("b"), taken=104))}
    assert moved["a"].since_s == 0.0 and moved["a"].route.path == "direct"
    assert moved["b"].since_s == 0.0 and moved["b"].route == Route("derp", region="nyc")
    later = {p.name: p for p in tracker.update(snap(peer("a", cur_addr="192.0.2.2:2"), peer("b"), taken=110.5))}
    assert later["a"].since_s == 6.5 and later["b"].since_s == 6.5
    # A new endpoint (or region) is a new path: the clock starts again.
    again = {p.name: p for p in tracker.update(snap(peer("a", cur_addr="192.0.2.3:3"), peer("b"), taken=111))}
    assert again["a"].since_s == 0.0 and again["b"].since_s == 7.0


def test_peers_are_sorted_relayed_first_then_busiest() -> None:
    peers = [
        peer("idle1", active=False),
        peer("direct-busy", cur_addr="192.0.2.1:1", rx=9_000_000),
        peer("derp-quiet", rx=10),
        peer("relay", peer_relay="198.51.100.4:7777:vni:1"),
        peer("derp-busy", relay="fra", rx=5000),
        peer("direct-quiet", cur_addr="192.0.2.2:2"),
    ]
    order = [p.name for p in PeerTracker(snap()).update(snap(*peers, taken=101))]
    assert order == ["derp-busy", "derp-quiet", "relay", "direct-busy", "direct-quiet", "idle1"]


def test_the_json_entry_has_exactly_the_documented_keys() -> None:
    (got,) = PeerTracker(snap()).update(snap(peer("a", rx=300, relay="fra"), taken=103))
    assert got.to_data() == {
        "name": "a",
        "path": "derp",
        "region": "fra",
        "endpoint": None,
        "rx_bytes_per_s": 100.0,
        "tx_bytes_per_s": 0.0,
        "since_s": 0.0,
    }


def test_last_handshake_age_is_measured_against_the_status_wall_clock() -> None:
    (got,) = PeerTracker(snap()).update(
        snap(peer("a", handshake="2026-05-01T10:00:00Z"), taken=101, wall=1_777_629_645.0)
    )
    assert got.last_handshake_age_s == 45.0


@pytest.mark.parametrize("wanted", ["laptop", "LAPTOP", "laptop.tailnet.test.", "laptop.tailnet.test", "100.64.0.9"])
def test_find_peer_by_name_dns_name_or_address(wanted: str) -> None:
    got = snap(peer("laptop"), peer("phone", ip="100.64.0.10"))
    assert got.peers[find_peer(got, wanted)].name == "laptop"


def test_an_unknown_peer_is_a_usage_error_naming_the_peers_on_one_line() -> None:
    got = snap(peer("laptop"), peer("ph\none\x1b[2J", ip="100.64.0.10"))
    with pytest.raises(UsageError) as err:
        find_peer(got, "desktop")
    assert str(err.value) == "--peer 'desktop': no such peer; the peers are: laptop, ph?one?[2J"
    many = snap(*(peer(f"n{i:02d}") for i in range(25)))
    with pytest.raises(UsageError, match=r"n19 and 5 more$"):
        find_peer(many, "x")
    with pytest.raises(UsageError, match="this client has no peers"):
        find_peer(snap(), "x")


def test_history_keeps_rates_routes_and_gaps_for_series_seen_late() -> None:
    history = History(size=4)
    tracker = PeerTracker(snap(peer("a")))
    before = parse_snapshot((DATA / "tailscaled-1.prom").read_text(), taken=0.0)
    after = parse_snapshot((DATA / "tailscaled-2.prom").read_text(), taken=2.0)
    quiet = parse_snapshot((DATA / "tailscaled-2.prom").read_text(), taken=4.0)
    moves = [peer("a", rx=200), peer("a", rx=400, cur_addr="192.0.2.1:1"), peer("a", rx=400, cur_addr="192.0.2.1:1")]
    for i, (b, a) in enumerate([(before, after), (after, quiet), (quiet, quiet)]):
        report = build_report(Target(url="http://x"), b, a, peers=tracker.update(snap(moves[i], taken=102 + 2 * i)))
        history.add(report, 2.0 + 2 * i)
    assert history.elapsed_s == 6.0
    assert list(history.derp_share) == [1.0, None, None]  # nothing moved after the first interval
    assert history.rx[0] == pytest.approx((575852 - 237116) / 2.0) and history.rx[1] == 0.0
    assert list(history.series['tailscaled_inbound_bytes_total{path="derp"}'])[1:] == [0.0, 0.0]
    (key,) = history.peers
    assert list(history.peers[key].rx) == [100.0, 100.0, 0.0]
    assert [(t, r.path) for t, r in history.peers[key].routes] == [(2.0, "derp"), (4.0, "direct")]
    for _ in range(5):
        history.add(build_report(Target(url="http://x"), quiet, quiet), 10.0)
    assert len(history.rx) == 4  # bounded


def test_sparkline_scales_from_zero_to_the_highest_and_leaves_gaps() -> None:
    assert sparkline([0.0, 1.0, 2.0, 4.0, 8.0]) == "▁▂▃▅█"
    assert sparkline([None, 5.0, None]) == " █ "
    assert sparkline([0.0, 0.0]) == "▁▁"
    assert sparkline([float("nan"), 1.0]) == " █"
    assert sparkline(list(range(100)), width=10) == sparkline(list(range(90, 100)), width=10)
    assert re.fullmatch(r"[▁-█]{3}", sparkline([-2.0, 0.0, 2.0]))
