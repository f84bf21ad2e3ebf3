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
        raise InputError(f"Prometheus at {url} refused the query: {body.get('error', 'no reason given')}")
    data = body.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
        raise InputError(f"Prometheus at {url} answered with an unexpected shape (expected an instant vector)")
    by_site: dict[str, dict[int, float]] = {}
    unlabelled = bad = 0
    for series in data["result"]:
        labels = series.get("metric", {}) if isinstance(series, dict) else {}
        value = series.get("value") if isinstance(series, dict) else None
        site = labels.get(query.site_label)
        rid = labels.get("region_id", "")
        try:
            seconds = float(value[1]) if isinstance(value, list) and len(value) == 2 else math.nan
        except (TypeError, ValueError):
            seconds = math.nan
        if not site:
            unlabelled += 1
            continue
        if not rid.isdigit() or int(rid) <= 0 or not math.isfinite(seconds) or seconds < 0:
            bad += 1
            continue
        by_site.setdefault(site, {})[int(rid)] = seconds * 1000.0
    out = PromResult()
    if unlabelled:
        out.notes.append(
            f"{unlabelled} series of {METRIC} have no {query.site_label!r} label; left out "
            "(choose the label that names a site with --site-label)"
        )
    if bad:
        out.notes.append(f"{bad} series of {METRIC} have no usable region_id or value; left out")
    if not by_site:
        raise InputError(
            f"Prometheus at {url} has no {METRIC} series with a {query.site_label!r} label ({query.describe()}); "
            "is it scraping 'derptool latency --listen' exporters?"
        )
    out.reports = [SiteReport(site, lat, None, url, "prometheus") for site, lat in sorted(by_site.items())]
    return out


def query_prometheus(url: str, query: PromQuery, *, timeout: float = 10.0) -> PromResult:
    """Ask the Prometheus server at *url* for the sites' latencies (one request).

    Raises :class:`NetworkError` (exit 3) when the server cannot be reached or fails, :class:`InputError` when
    its answer is not usable, :class:`UsageError` for a URL that is not http(s).
    """
    import httpx  # lazy: a costly import that ``impact`` from report files never needs

    base = url.strip().rstrip("/")
    if not re.match(r"^https?://[^/]+", base):
        raise UsageError(f"--prometheus: {url!r} is not an http(s) URL (example: http://127.0.0.1:9090)")
    endpoint = base + "/api/v1/query"
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            resp = client.get(endpoint, params={"query": query.promql()})
    except httpx.TransportError as err:
        raise NetworkError(f"cannot reach Prometheus at {base}: {err or type(err).__name__}") from None
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.status_code >= 500:
        reason = body.get("error") if isinstance(body, dict) else None
        raise NetworkError(f"Prometheus at {base} failed: HTTP {resp.status_code}" + (f": {reason}" if reason else ""))
    if body is None:
        raise InputError(f"{base} does not answer like Prometheus' HTTP API (HTTP {resp.status_code}, not JSON)")
    return reports_from_response(body, query, base)
