"""Hostile Prometheus answers (``impact --prometheus``): NaN and infinite samples, region_id labels that are
not plain region IDs, wrong JSON types anywhere. A series that cannot be used is left out with a notice, an
answer with none left is one error line; nothing crashes and nothing unusable passes silently."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derptool.errors import InputError
from derptool.fleet.prometheus import PromQuery, region_id_label, reports_from_response, sample_value
from tests.hostile.harness import answer, assert_refused, peer, run

QUERY = PromQuery()


def vector(*series: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": list(series)}}


def series(rid: Any = "1", value: Any = "0.02", site: Any = "office") -> dict[str, Any]:
    return {"metric": {"instance": site, "region_id": rid}, "value": [1.0, value]}


@pytest.mark.parametrize(
    "rid", ["\uff11", "-5", "+5", "0", "00", " 1", "1 ", "1.0", "1e3", "99999999999", "2147483648", "", "٣", 1, None]
)
def test_region_id_labels_are_read_strictly(rid: Any) -> None:
    assert region_id_label(rid) is None
    result = reports_from_response(vector(series(rid), series("2")), QUERY, "p")
    assert list(result.reports[0].latencies_ms) == [2]
    assert any("no usable region_id" in note for note in result.notes)


@pytest.mark.parametrize("rid", ["1", "900", "2147483647", "0001"])
def test_plain_region_ids_are_read(rid: str) -> None:
    assert region_id_label(rid) == int(rid)


@pytest.mark.parametrize("value", ["NaN", "+Inf", "-Inf", "nan", "1e999", "-0.5", "", "0x10", 5, None, ["1"]])
def test_samples_that_are_no_latency_are_left_out_with_a_notice(value: Any) -> None:
    result = reports_from_response(vector(series(value=value), series("2")), QUERY, "p")
    assert list(result.reports[0].latencies_ms) == [2]
    assert result.notes and "NaN" in result.notes[-1]


def test_an_answer_of_only_nan_samples_is_an_error_not_a_silent_pass() -> None:
    with pytest.raises(InputError, match="has no derptool_region_latency_seconds series"):
        reports_from_response(vector(series(value="NaN"), series("2", "+Inf")), QUERY, "p")


@pytest.mark.parametrize(
    "body",
    [
        vector({"metric": 5, "value": [1, "1"]}),
        vector({"metric": {"instance": ["a"], "region_id": "1"}, "value": [1, "1"]}),
        vector({"metric": {"instance": {"x": 1}, "region_id": "1"}, "value": [1, "1"]}),
        vector(["not", "a", "series"]),
        vector(None),
        {"status": "success", "data": {"resultType": "matrix", "result": []}},
        {"status": "error", "error": "bad\nquery \x1b[31m" + "x" * 5000},
        {"status": "success", "data": []},
        [],
        "success",
    ],
)
def test_wrong_shapes_are_one_input_error(body: Any) -> None:
    with pytest.raises(InputError) as info:
        reports_from_response(body, QUERY, "p")
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value) and len(str(info.value)) < 600


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (vector(series(value="NaN")), 2),
        (vector(series(rid="\uff11")), 2),
        (vector(series(rid="-5")), 2),
        ({"status": "error", "error": "line one\nline two"}, 2),
    ],
    ids=["NaN sample", "full-width region_id", "negative region_id", "two-line error"],
)
def test_the_command_says_it_in_one_line(body: Any, code: int) -> None:
    raw = json.dumps(body).encode()
    with peer(answer(200, raw, {"Content-Type": "application/json"})) as url:
        assert_refused(run(["impact", "--prometheus", url, "--region", "nyc", "-m", "snapshot"]), code, url)


def test_sample_value_reads_what_prometheus_sends() -> None:
    assert sample_value([1.5, "0.25"]) == 0.25
    assert sample_value([1.5, "NaN"]) is None


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_labels = st.dictionaries(st.sampled_from(["instance", "region_id", "job", ""]), _json | st.text(), max_size=3)
_series = st.fixed_dictionaries({"metric": _labels | _json, "value": st.lists(_json | st.text(), max_size=3) | _json})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        _json,
        st.builds(lambda r: vector(*r), st.lists(_series, max_size=5)),
        st.builds(lambda d: {"status": "success", "data": d}, _json),
    )
)
def test_fuzz_answers_raise_nothing_but_input_error(body: Any) -> None:
    try:
        result = reports_from_response(body, QUERY, "p")
    except InputError as err:
        assert "\n" not in err.message
        return
    for report in result.reports:
        assert all(0 < rid <= 2**31 - 1 for rid in report.latencies_ms)
        assert all(v == v and v not in (float("inf"), float("-inf")) for v in report.latencies_ms.values())
