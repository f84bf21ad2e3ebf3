"""Home (preferred) region choice with netcheck's history: Go's TestAddReportHistoryAndSetPreferredDERP table."""

from __future__ import annotations

from typing import Any

import pytest

from derptool.derpmap import parse_derpmap
from derptool.net.netcheck import HomeChooser, choose_home
from derptool.net.netcheck.home import HISTORY_S

S = 1000.0  # a bare number in a report is seconds, as in Go's table; latencies are in milliseconds
FRAME = 8.0  # netcheck's PreferredDERPFrameTime (s)
KEEPALIVE = 60.0  # DERP keep-alive (s)


def rep(*pairs: Any) -> dict[int, float]:
    """("d1", 2, "d2", 3) -> {1: 2000 ms, 2: 3000 ms}; floats are already milliseconds."""
    out = {}
    for name, v in zip(pairs[::2], pairs[1::2], strict=True):
        out[int(name[1:])] = v * S if isinstance(v, int) else v
    return out


START = 123.0
# name, steps [(seconds after the previous step, latencies)], RegionScore, last DERP activity by region
# (absolute seconds), forced home, wanted home after the last step, wanted history length
GO_HOME_CASES: list[
    tuple[
        str,
        list[tuple[float, dict[int, float]]],
        dict[int, float] | None,
        dict[int, float] | None,
        int | None,
        int | None,
        int,
    ]
] = [
    ("first_reading", [(0, rep("d1", 2, "d2", 3))], None, None, None, 1, 1),
    ("with_two", [(0, rep("d1", 2, "d2", 3)), (1, rep("d1", 4, "d2", 3))], None, None, None, 1, 2),
    (
        "but_now_d1_gone",
        [(0, rep("d1", 2, "d2", 3)), (1, rep("d1", 4, "d2", 3)), (1, rep("d2", 3))],
        None,
        None,
        None,
        2,
        3,
    ),
    (
        "d1_is_back",
        [(0, rep("d1", 2, "d2", 3)), (1, rep("d1", 4, "d2", 3)), (1, rep("d2", 3)), (1, rep("d1", 4, "d2", 3))],
        None,
        None,
        None,
        1,
        4,
    ),
    (
        "things_clean_up",
        [
            (0, rep("d1", 1, "d2", 2)),
            (1, rep("d1", 1, "d2", 2)),
            (1, rep("d1", 1, "d2", 2)),
            (1, rep("d1", 1, "d2", 2)),
            (600, rep("d3", 3)),
        ],
        None,
        None,
        None,
        3,
        1,
    ),
    (
        "preferred_derp_hysteresis_no_switch",
        [(0, rep("d1", 4, "d2", 5)), (1, rep("d1", 4, "d2", 3))],
        None,
        None,
        None,
        1,
        2,
    ),
    (
        "preferred_derp_hysteresis_no_switch_absolute",
        [(0, rep("d1", 4.0, "d2", 5.0)), (1, rep("d1", 4.0, "d2", 1.0))],
        None,
        None,
        None,
        1,
        2,
    ),
    (
        "preferred_derp_hysteresis_do_switch",
        [(0, rep("d1", 4, "d2", 5)), (1, rep("d1", 4, "d2", 1))],
        None,
        None,
        None,
        2,
        2,
    ),
    ("derp_home_params", [(1, rep("d1", 10, "d2", 8))], {1: 2 / 3}, None, None, 1, 1),
    ("derp_home_params_high_latency", [(1, rep("d1", 100, "d2", 10))], {1: 2 / 3}, None, None, 2, 1),
    ("derp_home_params_invalid", [(1, rep("d1", 4, "d2", 5))], {1: 0.0, 2: -1.0}, None, None, 1, 1),
    (
        "saw_derp_traffic",
        [(0, rep("d1", 2, "d2", 3)), (2, rep("d1", 4, "d2", 3)), (2, rep("d2", 3))],
        None,
        {1: START + 2 + FRAME / 2},
        None,
        1,
        3,
    ),
    (
        "saw_derp_traffic_history",
        [(0, rep("d1", 2, "d2", 3)), (2, rep("d1", 4, "d2", 3)), (2, rep("d2", 3))],
        None,
        {1: START + 4 - FRAME - 1e-9},
        None,
        2,
        3,
    ),
    (
        "preferred_derp_hysteresis_no_switch_pct",
        [(0, rep("d1", 34.0, "d2", 35.0)), (1, rep("d1", 34.0, "d2", 23.0))],
        None,
        None,
        None,
        1,
        2,
    ),
    ("forced_two", [(1, rep("d1", 2, "d2", 3)), (2, rep("d1", 4, "d2", 3))], None, None, 2, 2, 2),
    ("forced_two_unavailable", [(1, rep("d1", 2, "d2", 1)), (2, rep("d1", 4))], None, None, 2, 1, 2),
    (
        "forced_two_no_probe_recent_activity",
        [(1, rep("d1", 2)), (2, rep("d1", 4))],
        None,
        {1: START, 2: START + 1},
        2,
        2,
        2,
    ),
    (
        "forced_two_no_probe_no_recent_activity",
        [(1, rep("d1", 2)), (FRAME + 1, rep("d1", 4))],
        None,
        {1: START, 2: START},
        2,
        1,
        2,
    ),
    (
        "no_data_keep_home",
        [(0, rep("d1", 2, "d2", 3)), (30, rep()), (2, rep()), (2, rep()), (2, rep()), (2, rep())],
        None,
        {1: START},
        None,
        1,
        6,
    ),
    (
        "no_data_home_expires",
        [(0, rep("d1", 2, "d2", 3)), (30, rep()), (2 * KEEPALIVE, rep())],
        None,
        {1: START},
        None,
        None,
        3,
    ),
]


def _map(scores: dict[int, float] | None) -> Any:
    return parse_derpmap(
        {"Regions": {}, **({"HomeParams": {"RegionScore": {str(k): v for k, v in scores.items()}}} if scores else {})}
    )


@pytest.mark.parametrize(
    ("name", "steps", "scores", "heard", "force", "want", "want_len"), GO_HOME_CASES, ids=[c[0] for c in GO_HOME_CASES]
)
def test_go_add_report_history_and_set_preferred_derp_cases(
    name: str,
    steps: list[tuple[float, dict[int, float]]],
    scores: dict[int, float] | None,
    heard: dict[int, float] | None,
    force: int | None,
    want: int | None,
    want_len: int,
) -> None:
    chooser = HomeChooser(_map(scores), force=force)
    now = START
    got = None
    for after, latencies in steps:
        now += after
        got = chooser.update(latencies, now, last_heard=heard)
    assert got == want
    assert chooser.home == want
    assert len(chooser.history) == want_len


def test_history_always_keeps_a_full_report() -> None:
    # Go's TestRecentReportsRetainFullNetcheck: one report a minute for an hour, a full one (every region)
    # whenever more than 5 minutes passed since the last; the history always covers every region.
    chooser = HomeChooser()
    last_full = float("-inf")
    for i in range(60):
        now = 1_700_000_000.0 + 60 * i
        full = now - last_full > 300
        if full:
            last_full = now
        chooser.update({r: 10.0 for r in ((1, 2, 3) if full else (1, 2))}, now)
        assert set(chooser.best_recent()) == {1, 2, 3}, f"report {i}"


def test_history_window_is_five_minutes_plus_a_report_timeout() -> None:
    chooser = HomeChooser()
    chooser.update({1: 5.0, 2: 40.0}, 0.0)
    chooser.update({1: 50.0, 2: 40.0}, HISTORY_S)  # the 5 ms of region 1 is still in the window
    assert chooser.best_recent() == {1: 5.0, 2: 40.0} and chooser.home == 1
    chooser.update({1: 50.0, 2: 40.0}, HISTORY_S + 0.5)  # now it is gone: 40 vs 50 is not enough to move...
    assert chooser.best_recent() == {1: 50.0, 2: 40.0} and chooser.home == 1
    assert chooser.update({1: 50.0, 2: 20.0}, HISTORY_S + 1) == 2  # ...30 ms and below two thirds is


def test_avoid_and_no_measure_no_home_are_never_home() -> None:
    node = {"Name": "n", "RegionID": 1, "HostName": "n.example.test"}
    dmap = parse_derpmap(
        {
            "Regions": {
                "1": {"RegionID": 1, "RegionCode": "a", "RegionName": "A", "Avoid": True, "Nodes": [node]},
                "2": {
                    "RegionID": 2,
                    "RegionCode": "b",
                    "RegionName": "B",
                    "NoMeasureNoHome": True,
                    "Nodes": [{**node, "Name": "m", "RegionID": 2}],
                },
                "3": {
                    "RegionID": 3,
                    "RegionCode": "c",
                    "RegionName": "C",
                    "Nodes": [{**node, "Name": "o", "RegionID": 3}],
                },
            }
        }
    )
    chooser = HomeChooser(dmap)
    assert chooser.update({1: 1.0, 2: 1.0, 3: 90.0}, 0.0) == 3
    assert chooser.update({1: 1.0, 2: 1.0}, 1.0) is None


def test_choose_home_single_report_rule() -> None:
    assert choose_home({1: 30.0, 2: 25.0}) == 2
    assert choose_home({1: 30.0, 2: 25.0}, previous=1) == 1
    assert choose_home({1: 30.0, 2: 15.0}, previous=1) == 2
    assert choose_home({1: 30.0, 2: 30.0}) == 1  # ties: lowest region ID
    assert choose_home({}, previous=1) is None
    assert choose_home({2: 50.0}, previous=1) == 2  # the old home did not answer
    assert choose_home({2: 5.0}, previous=1, previous_heard=True) == 1  # ...but was heard over DERP
