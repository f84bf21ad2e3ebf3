"""``check --every --listen``: the last check report as Prometheus metrics.

:class:`CheckCollector` turns the latest :class:`CheckReport` into gauges (prometheus_client does the
exposition format); :func:`exposition` renders them, and :class:`derptool.net.exporter.Exporter` serves the
text. Every series of one node and family carries the labels ``node``, ``host``, ``region_id`` and ``family``:

=======================================  =======================================================
``derptool_check_up``                    1 when no step of the node failed
``derptool_check_step_success``          per ``step``: 1 passed, 0 failed (skipped steps absent)
``derptool_check_stun_rtt_seconds``      STUN round trip
``derptool_check_tls_handshake_seconds`` TCP connect and TLS handshake on the DERP port
``derptool_check_cert_expiry_seconds``   seconds until the certificate expires (negative: expired)
``derptool_check_relay_rtt_seconds``     median relay round trip between two clients (``--relay``)
``derptool_check_relay_loss_ratio``      share of relayed packets lost
``derptool_check_mesh_up``               per pair of nodes of a region: 1 when packets cross the mesh
``derptool_check_mesh_rtt_seconds``      relay round trip across the mesh
=======================================  =======================================================

plus ``derptool_check_run_duration_seconds``, ``derptool_check_run_timestamp_seconds`` and
``derptool_check_runs_total``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from derptool.net.check.report import CheckReport, NodeCheck

_LABELS = ["node", "host", "region_id", "family"]


def _labels(n: NodeCheck) -> list[str]:
    t = n.target
    return [
        t.node or t.host,
        t.host,
        str(t.region_id) if t.region_id is not None else "",
        str(n.family) if n.family else "",
    ]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class CheckCollector(Collector):
    """Collects the metrics of the latest report (:meth:`update` replaces it; thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._report: CheckReport | None = None
        self._runs = 0

    def update(self, report: CheckReport) -> None:
        with self._lock:
            self._report = report
            self._runs += 1

    @property
    def report(self) -> CheckReport | None:
        with self._lock:
            return self._report

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            report, runs = self._report, self._runs
        if report is None:
            return
        up = GaugeMetricFamily(
            "derptool_check_up", "1 when no check step of the node failed in the last run.", labels=_LABELS
        )
        step = GaugeMetricFamily(
            "derptool_check_step_success",
            "1 when the step passed, 0 when it failed (skipped steps are absent).",
            labels=[*_LABELS, "step"],
        )
        stun = GaugeMetricFamily("derptool_check_stun_rtt_seconds", "STUN round-trip time.", labels=_LABELS)
        tls = GaugeMetricFamily(
            "derptool_check_tls_handshake_seconds",
            "TCP connect and TLS handshake time on the DERP port.",
            labels=_LABELS,
        )
        expiry = GaugeMetricFamily(
            "derptool_check_cert_expiry_seconds",
            "Seconds until the DERP certificate expires (negative once expired).",
            labels=_LABELS,
        )
        relay = GaugeMetricFamily(
            "derptool_check_relay_rtt_seconds",
            "Median round trip of packets relayed between two clients through the node.",
            labels=_LABELS,
        )
        loss = GaugeMetricFamily("derptool_check_relay_loss_ratio", "Share of relayed packets lost.", labels=_LABELS)
        for n in report.nodes:
            labels = _labels(n)
            up.add_metric(labels, 1.0 if n.ok else 0.0)
            for c in n.checks:
                if c.status != "skip":
                    step.add_metric([*labels, c.name], 1.0 if c.status == "pass" else 0.0)
                value = None
                if c.name == "stun" and (value := _number(c.data.get("rtt_ms"))) is not None:
                    stun.add_metric(labels, value / 1000)
                elif c.name == "tls" and (value := _number(c.data.get("handshake_ms"))) is not None:
                    tls.add_metric(labels, value / 1000)
                elif c.name == "cert_expiry" and (value := _number(c.data.get("expires_in_s"))) is not None:
                    expiry.add_metric(labels, value)
                elif c.name == "relay":
                    if (value := _number(c.data.get("rtt_ms"))) is not None:
                        relay.add_metric(labels, value / 1000)
                    if (value := _number(c.data.get("loss"))) is not None:
                        loss.add_metric(labels, value)
        yield from (up, step, stun, tls, expiry, relay, loss)
        mesh_labels = ["region_id", "node_a", "node_b"]
        mesh_up = GaugeMetricFamily(
            "derptool_check_mesh_up",
            "1 when packets crossed the mesh between two nodes of a region.",
            labels=mesh_labels,
        )
        mesh_rtt = GaugeMetricFamily(
            "derptool_check_mesh_rtt_seconds",
            "Median relay round trip across the mesh between two nodes.",
            labels=mesh_labels,
        )
        regions = {n.target.node: n.target.region_id for n in report.nodes}
        for m in report.mesh:
            region = regions.get(m.node_a)
            labels = [str(region) if region is not None else "", m.node_a, m.node_b or ""]
            mesh_up.add_metric(labels, 1.0 if m.ok else 0.0)
            if m.rtt_ms is not None:
                mesh_rtt.add_metric(labels, m.rtt_ms / 1000)
        yield from (mesh_up, mesh_rtt)
        yield GaugeMetricFamily(
            "derptool_check_run_duration_seconds", "How long the last check took.", value=report.duration_s
        )
        yield GaugeMetricFamily(
            "derptool_check_run_timestamp_seconds", "When the last check started (Unix time).", value=report.started
        )
        yield CounterMetricFamily("derptool_check_runs", "Checks run since the exporter started.", value=runs)


def exposition(collector: CheckCollector) -> bytes:
    """The collector's metrics in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
