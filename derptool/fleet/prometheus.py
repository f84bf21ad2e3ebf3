"""Site reports from Prometheus: what ``derptool latency --listen`` exporters reported, one site per label value.

The query asks for ``derptool_region_latency_seconds`` per site and region, either the latest sample or a
quantile over a window (``quantile_over_time``), taking the lowest when a site has several series for a region
(the ``method`` label changed). :func:`build_query` and :func:`reports_from_response` are pure;
:func:`query_prometheus` does the one HTTP request (Prometheus' ``/api/v1/query``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from derptool.errors import InputError, NetworkError, UsageError
from derptool.fleet.reports import SiteReport
from derptool.net.exporter import check_label_name
from derptool.net.http import decode_json_answer, peer_text

METRIC = "derptool_region_latency_seconds"
_DURATION = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")


def check_window(window: str) -> str:
    """*window* if it is a Prometheus duration such as ``7d``, ``12h`` or ``1h30m`` (and not zero)."""
    text = window.strip()
    if not _DURATION.match(text) or not re.search(r"[1-9]", text):
        raise UsageError(f"--window: {window!r} is not a Prometheus duration (examples: 30m, 24h, 7d, 1w)")
    return text


def check_label(label: str) -> str:
    """*label* if it is a valid Prometheus label name."""
    return check_label_name(label, "--site-label", example="instance")


def check_quantile(quantile: float) -> float:
    """*quantile* if it lies in [0, 1]."""
    if not 0.0 <= quantile <= 1.0:
        raise UsageError(f"--quantile: {quantile} is not between 0 and 1 (0.9 is the 90th percentile)")
    return quantile


@dataclass(frozen=True)
class PromQuery:
    """What to ask Prometheus: the latest value, or a quantile over a window, per *site_label* and region."""

    site_label: str = "instance"
    window: str | None = None
    quantile: float = 0.9

    def promql(self) -> str:
        """The PromQL expression."""
        label = check_label(self.site_label)
        if self.window is None:
            inner = METRIC
        else:
            inner = f"quantile_over_time({check_quantile(self.quantile):g}, {METRIC}[{check_window(self.window)}])"
        return f"min by ({label}, region_id) ({inner})"

    def describe(self) -> str:
        """``latest`` or ``p90 over 7d``, for messages."""
        if self.window is None:
            return "latest value"
        return f"p{self.quantile * 100:g} over {self.window}"


def build_query(site_label: str = "instance", window: str | None = None, quantile: float = 0.9) -> PromQuery:
    """A checked :class:`PromQuery` (raises :class:`UsageError` for a bad label, window or quantile)."""
    query = PromQuery(site_label, window, quantile)
    query.promql()
    return query


MAX_REGION_ID = 2**31 - 1
"""The largest region ID read from a label (Go's int32 range, as region IDs are everywhere else)."""
_ASCII_ID = re.compile(r"[0-9]{1,10}")


def region_id_label(value: object) -> int | None:
    """A ``region_id`` label as a region ID: ASCII digits only (no sign, no full-width digits), 1..2**31-1."""
    if not isinstance(value, str) or not _ASCII_ID.fullmatch(value):
        return None
    rid = int(value)
    return rid if 0 < rid <= MAX_REGION_ID else None


def sample_value(value: object) -> float | None:
    """The number of a ``[timestamp, "value"]`` pair; None for any other shape, and for NaN or +-Inf."""
    if not isinstance(value, list) or len(value) != 2 or not isinstance(value[1], str) or len(value[1]) > 64:
        return None
    try:
        number = float(value[1])
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@dataclass
class PromResult:
    """Reports built from a query's answer, and remarks about series that could not be used."""

    reports: list[SiteReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def reports_from_response(body: Any, query: PromQuery, url: str) -> PromResult:
    """Turn the JSON answer of ``/api/v1/query`` into one :class:`SiteReport` per site.

    Raises :class:`InputError` when the answer is not Prometheus' or holds no usable series.
    """
    if not isinstance(body, dict) or "status" not in body:
        raise InputError(f"{url} does not answer like Prometheus' HTTP API (no 'status' in its JSON)")
    if body["status"] != "success":
        raise InputError(f"Prometheus at {url} refused the query: {peer_text(body.get('error', 'no reason given'))}")
    data = body.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
        raise InputError(f"Prometheus at {url} answered with an unexpected shape (expected an instant vector)")
    by_site: dict[str, dict[int, float]] = {}
    unlabelled = bad = 0
    for series in data["result"]:
        labels = series.get("metric") if isinstance(series, dict) else None
        labels = labels if isinstance(labels, dict) else {}
        site = labels.get(query.site_label)
        if not isinstance(site, str) or not site:
            unlabelled += 1
            continue
        rid = region_id_label(labels.get("region_id"))
        seconds = sample_value(series.get("value") if isinstance(series, dict) else None)
        if rid is None or seconds is None or seconds < 0:
            bad += 1
            continue
        by_site.setdefault(site, {})[rid] = seconds * 1000.0
    out = PromResult()
    if unlabelled:
        out.notes.append(
            f"{unlabelled} series of {METRIC} have no {query.site_label!r} label; left out "
            "(choose the label that names a site with --site-label)"
        )
    if bad:
        out.notes.append(
            f"{bad} series of {METRIC} have no usable region_id (ASCII digits, 1..{MAX_REGION_ID}) "
            "or value (a finite number of seconds, not NaN or Inf); left out"
        )
    if not by_site:
        raise InputError(
            f"Prometheus at {url} has no {METRIC} series with a {query.site_label!r} label ({query.describe()}); "
            "is it scraping 'derptool latency --listen' exporters?"
        )
    out.reports = [SiteReport(site, lat, None, url, "prometheus") for site, lat in sorted(by_site.items())]
    return out


DEADLINE = 10.0
"""Whole-request deadline for one query (connect, headers and body), in seconds."""


def query_prometheus(url: str, query: PromQuery, *, timeout: float | None = None) -> PromResult:
    """Ask the Prometheus server at *url* for the sites' latencies (one request, done within *timeout* seconds,
    default :data:`DEADLINE`).

    Raises :class:`NetworkError` (exit 3) when the server cannot be reached, fails, or has not answered in full
    by the deadline; :class:`InputError` when its answer is not usable; :class:`UsageError` for a malformed URL.
    """
    from derptool.net.deadline import Deadline
    from derptool.net.http import Request, get
    from derptool.net.url import parse_url

    parsed = parse_url(url, "--prometheus", example="http://127.0.0.1:9090")
    base = parsed.shown.rstrip("/")
    promql = query.promql()
    try:
        answer = get(
            Request(parsed.base + "/api/v1/query", params={"query": promql}, follow_redirects=True, shown=base),
            Deadline(DEADLINE if timeout is None else timeout),
        )
    except NetworkError as err:
        raise NetworkError(f"cannot reach Prometheus at {err.message}") from None
    body = decode_json_answer(answer.body)
    if answer.status >= 500:
        reason = body.get("error") if isinstance(body, dict) else None
        raise NetworkError(
            f"Prometheus at {base} failed: HTTP {answer.status}" + (f": {peer_text(reason)}" if reason else "")
        )
    if body is None:
        raise InputError(f"{base} does not answer like Prometheus' HTTP API (HTTP {answer.status}, not JSON)")
    return reports_from_response(body, query, base)
