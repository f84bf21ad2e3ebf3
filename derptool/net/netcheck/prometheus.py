"""The latency report in Prometheus' text exposition format (what ``latency --format prometheus`` and the
``--listen`` exporter serve)."""

from __future__ import annotations

from derptool.net.netcheck.report import RegionResult, Report


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _region_labels(r: RegionResult) -> str:
    return f'region_id="{r.id}",region_code="{_label_value(r.code)}",country="{_label_value(r.country or "")}"'


def exposition(report: Report) -> str:
    """The latency report in the Prometheus text exposition format (ends with a newline)."""
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            num = str(int(value)) if value.is_integer() else repr(round(value, 6))
            out.append(f"{name}{{{labels}}} {num}" if labels else f"{name} {num}")

    metric(
        "derptool_region_latency_seconds",
        "gauge",
        "Round-trip time to the DERP region (its first answer) in the last run.",
        [
            (f'{_region_labels(r)},method="{r.method}"', (r.latency_ms or 0.0) / 1000)
            for r in report.regions
            if r.latency_ms is not None
        ],
    )
    metric(
        "derptool_region_up",
        "gauge",
        "1 when the DERP region answered in the last run, else 0.",
        [(_region_labels(r), 1.0 if r.latency_ms is not None else 0.0) for r in report.regions],
    )
    metric(
        "derptool_region_probe_errors",
        "gauge",
        "Probes to the DERP region that failed in the last run.",
        [(_region_labels(r), float(r.probe_errors)) for r in report.regions],
    )
    pref = report.preferred
    metric(
        "derptool_preferred_region",
        "gauge",
        "ID of the preferred (home) DERP region; 0 when none.",
        [(_region_labels(pref) if pref else "", float(report.preferred_region or 0))],
    )
    metric("derptool_udp", "gauge", "1 when any STUN answer arrived over UDP.", [("", float(report.udp))])
    metric("derptool_ipv4", "gauge", "1 when any STUN answer arrived over IPv4.", [("", float(report.ipv4))])
    metric("derptool_ipv6", "gauge", "1 when any STUN answer arrived over IPv6.", [("", float(report.ipv6))])
    if report.mapping_varies_by_dest_ip is not None:
        metric(
            "derptool_mapping_varies_by_dest_ip",
            "gauge",
            "1 when servers saw different addresses for the same socket (hard NAT).",
            [("", float(report.mapping_varies_by_dest_ip))],
        )
    metric("derptool_latency_run_duration_seconds", "gauge", "How long the last run took.", [("", report.duration_s)])
    metric(
        "derptool_latency_run_timestamp_seconds",
        "gauge",
        "When the last run started (Unix time).",
        [("", report.started)],
    )
    return "\n".join(out) + "\n"
