"""Hostile metrics text (``watch URL``): NaN and infinite tailscaled samples, a home region gauge that is no
region, text that is not the exposition format. A tailscaled series that cannot be a number it must be is one
error line (exit 2), never a crash, a NaN in the JSON output, or a geofence verdict computed from it."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derptool.errors import ProtocolError
from derptool.watch.samples import parse_snapshot
from derptool.watch.tailscale import client_traffic, home_region_id
from tests.hostile.harness import answer, assert_refused, peer, run

TRAFFIC = (
    "# TYPE tailscaled_inbound_bytes_total counter\n"
    'tailscaled_inbound_bytes_total{path="derp"} %s\n'
    "# TYPE tailscaled_home_derp_region_id gauge\n"
    "tailscaled_home_derp_region_id %s\n"
)


def metrics(value: str = "100", home: str = "1") -> bytes:
    return (TRAFFIC % (value, home)).encode()


@pytest.mark.parametrize("home", ["NaN", "+Inf", "-Inf", "-5", "1.5", "1e300", "2147483648"])
def test_a_home_region_gauge_that_is_no_region_is_one_line(home: str) -> None:
    with peer(answer(200, metrics(home=home))) as url:
        line = assert_refused(run(["watch", "--once", "-i", "0.05", url + "/metrics", "--omitted", "nyc"]), 2)
    assert "tailscaled_home_derp_region_id" in line


@pytest.mark.parametrize("value", ["NaN", "+Inf", "-Inf"])
def test_a_tailscaled_counter_that_is_not_finite_is_one_line(value: str) -> None:
    with peer(answer(200, metrics(value=value))) as url:
        line = assert_refused(run(["watch", "--once", "-i", "0.05", "--format", "json", url + "/metrics"]), 2)
    assert "tailscaled_inbound_bytes_total" in line


def test_nan_in_other_series_is_shown_and_the_json_stays_json() -> None:
    """A NaN in a series that is not tailscaled's is a legitimate value (a summary with no observations)."""
    text = b'# TYPE rpc_seconds summary\nrpc_seconds{quantile="0.5"} NaN\nrpc_seconds_count 0\n'
    with peer(answer(200, text)) as url:
        out = run(["watch", "--once", "-i", "0.05", "--format", "json", url + "/metrics"])
    assert out.code == 0, out.stderr
    assert "NaN" not in out.stdout
    json.loads(out.stdout)


@pytest.mark.parametrize(
    "text",
    [
        b"\x00\x01\x02",
        b'# TYPE x counter\nx{a="\xff"} 1\n',
        b'x{a="unclosed} 1\n',
        b"x 1 2 3 4\n",
        b"x " + b"9" * 5000 + b"\n",
        b"x{" + b'a="b",' * 10000 + b"} 1\n",
    ],
)
def test_text_that_is_not_the_exposition_format_is_one_line(text: bytes) -> None:
    with peer(answer(200, text)) as url:
        out = run(["watch", "--once", "-i", "0.05", url + "/metrics"])
    assert out.code in (0, 2)
    if out.code == 2:
        assert_refused(out, 2)


def test_home_region_id_accepts_region_ids() -> None:
    assert home_region_id(1.0) == 1
    assert home_region_id(900.0) == 900
    with pytest.raises(ProtocolError):
        home_region_id(0.5)


_value = st.sampled_from(["NaN", "+Inf", "-Inf", "0", "-1", "1e308", "1e999", "3.5", "x", ""]) | st.floats().map(repr)
_line = st.builds(
    lambda name, label, value: f'{name}{{path="{label}"}} {value}',
    st.sampled_from(["tailscaled_inbound_bytes_total", "tailscaled_home_derp_region_id", "other", "x_total"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters='"\\\n'), max_size=6),
    _value,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_line | st.text(max_size=30), max_size=8), st.lists(_line, max_size=4))
def test_fuzz_metrics_text_raises_nothing_but_protocol_error(first: list[str], second: list[str]) -> None:
    try:
        before = parse_snapshot("\n".join(first) + "\n", taken=0.0)
        after = parse_snapshot("\n".join(second) + "\n", taken=1.0)
        traffic = client_traffic(before, after)
    except ProtocolError as err:
        assert "\n" not in err.message
        return
    share = traffic.derp_share
    assert share is None or share == share
