"""Hostile HTTP servers, for every reader of one: a DERP map URL (``--map URL``, the live map), Prometheus
(``impact --prometheus``) and a metrics endpoint (``watch URL``).

Every read goes through :func:`derptool.net.http.get`: a whole-request deadline (drip-fed headers or body, a
server that never answers), a size cap (an endless body, a Content-Length of terabytes), and one line for a
body that is not what its headers say. Transport faults exit 3, content that is not what was asked for exits
2; nothing hangs past the deadline plus a second.
"""

from __future__ import annotations

import time

import pytest

from derptool.derpmap import sources
from derptool.errors import NetworkError
from derptool.fleet import prometheus
from derptool.watch import Target, scrape
from tests.hostile.harness import (
    DEEP_JSON,
    MISBEHAVIOURS,
    NAN_JSON,
    NOT_JSON,
    STATUS_500,
    Behaviour,
    assert_refused,
    peer,
    run,
)

DEADLINE = 1.0
"""The deadline the tests set (the documented ones are 10 s): a drip must be abandoned by this plus a second."""


@pytest.fixture(autouse=True)
def _short_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "DEADLINE", DEADLINE)
    monkeypatch.setattr(prometheus, "DEADLINE", DEADLINE)


TRANSPORT = list(MISBEHAVIOURS.values())
IDS = list(MISBEHAVIOURS)


@pytest.mark.parametrize(("behave", "mention"), TRANSPORT, ids=IDS)
def test_map_url(behave: Behaviour, mention: str) -> None:
    with peer(behave) as url:
        assert_refused(run(["map", "--map", url + "/derpmap.json"]), 3, mention, within=DEADLINE + 2)


@pytest.mark.parametrize(("behave", "mention"), TRANSPORT, ids=IDS)
def test_live_map_falls_back_by_the_deadline(behave: Behaviour, mention: str) -> None:
    """The live map's server misbehaving costs one notice and the deadline, then the snapshot (exit 0)."""
    with peer(behave) as url:
        out = run(["map", "-r", "nyc"], env={"DERPTOOL_DEFAULT_MAP_URL": url + "/derpmap/default"})
    assert out.code == 0 and out.seconds < DEADLINE + 2, out
    notices = out.stderr.splitlines()
    assert len(notices) == 1 and "using the bundled snapshot" in notices[0] and mention in notices[0]


@pytest.mark.parametrize(("behave", "mention"), TRANSPORT, ids=IDS)
def test_prometheus(behave: Behaviour, mention: str) -> None:
    with peer(behave) as url:
        out = run(["impact", "--prometheus", url, "--region", "nyc", "-m", "snapshot"])
    assert_refused(out, 3, "Prometheus", mention, within=DEADLINE + 2)


@pytest.mark.parametrize(("behave", "mention"), TRANSPORT, ids=IDS)
def test_metrics_endpoint(behave: Behaviour, mention: str) -> None:
    if mention == "redirect":
        mention = "HTTP 302"  # a metrics target is scraped where it is: redirects are not followed
    with peer(behave) as url:
        begin = time.monotonic()
        with pytest.raises(NetworkError) as info:
            scrape(Target.from_spec(url + "/metrics"), timeout=DEADLINE)
    assert time.monotonic() - begin < DEADLINE + 2
    assert "\n" not in str(info.value) and mention in str(info.value)


def test_watch_command_stops_a_drip_at_its_documented_deadline() -> None:
    """The command's own deadline (max(--interval, 5 s)), not a test's: one line, exit 3."""
    with peer(MISBEHAVIOURS["drip-fed body"][0]) as url:
        assert_refused(run(["watch", "--once", "-i", "0.1", url + "/metrics"]), 3, "within 5 s", within=8)


CONTENT: dict[str, tuple[Behaviour, int, int, int]] = {
    # behaviour: exit code of map --map URL, of impact --prometheus, of watch URL
    "HTML instead of JSON": (NOT_JSON, 2, 2, 2),
    "HTTP 500 with an escape sequence and two lines": (STATUS_500, 3, 3, 3),
    "JSON nested 50 000 deep": (DEEP_JSON, 2, 2, 2),
    "NaN in JSON": (NAN_JSON, 2, 2, 2),
}


@pytest.mark.parametrize(("behave", "as_map", "as_prometheus", "as_metrics"), CONTENT.values(), ids=list(CONTENT))
def test_content_that_is_not_what_was_asked(
    behave: Behaviour, as_map: int, as_prometheus: int, as_metrics: int
) -> None:
    with peer(behave) as url:
        for args, code in (
            (["map", "--map", url + "/m.json"], as_map),
            (["impact", "--prometheus", url, "--region", "nyc", "-m", "snapshot"], as_prometheus),
            (["watch", "--once", "-i", "0.05", url + "/metrics"], as_metrics),
        ):
            line = assert_refused(run(args), code)
            assert "\x1b" not in line, "a peer's escape sequence reached the terminal"


@pytest.mark.parametrize("behave", [MISBEHAVIOURS["drip-fed body"][0], MISBEHAVIOURS["drip-fed headers"][0]])
def test_captive_portal_check_stops_a_drip_at_its_timeout(behave: Behaviour) -> None:
    """``latency``'s captive-portal check: each endpoint's whole answer by the check's timeout."""
    from derptool.derpmap import parse_derpmap
    from derptool.net.captive import detect

    node = {"Name": "1a", "RegionID": 1, "HostName": "derp.invalid", "IPv4": "127.0.0.1", "CanPort80": True}
    dmap = parse_derpmap({"Regions": {"1": {"RegionID": 1, "RegionCode": "x", "RegionName": "X", "Nodes": [node]}}})
    with peer(behave) as url:
        begin = time.monotonic()
        result = detect(dmap, port=int(url.rsplit(":", 1)[1]), timeout=DEADLINE)
    assert time.monotonic() - begin < DEADLINE + 2
    assert result.found is None and "no complete answer within" in result.checks[0].detail
