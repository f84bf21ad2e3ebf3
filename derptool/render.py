"""Rendering library results as text: tables, JSON, Prometheus text, GitHub annotations.

Functions here format data they are given; they compute nothing and do no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from derptool.netcheck import RegionResult, Report


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain-text table with aligned columns."""
    from tabulate import tabulate

    return tabulate(rows, headers=list(headers), tablefmt="simple", disable_numparse=True)


def to_json(data: Any) -> str:
    """Indented JSON text (UTF-8 kept as is), ending without a newline."""
    return json.dumps(data, indent=2, ensure_ascii=False)


# -- derptool nat / derptool check (helper-nat) ---------------------------------------------------


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def nat_text(data: dict[str, Any]) -> str:
    """``derptool nat`` as text: the probes table, a summary, and the plain-language explanation.

    *data* is :meth:`derptool.nat.NatReport.to_data`.
    """
    import textwrap

    probes = table(
        [[p["node"] or "", p["server"], p["mapped"] or f"- ({p['error'] or 'no answer'})"] for p in data["probes"]],
        ["NODE", "STUN SERVER", "SEEN FROM"],
    )
    summary = [
        ("UDP", _yes_no(data["udp"])),
        ("NAT type", data["nat_type"]),
        ("Mapping", data["mapping"] or "-"),
        ("Local address", data["local"] or "-"),
        ("Public address", ", ".join(data["mapped"]) or "-"),
        ("Port preserved", _yes_no(data["port_preserved"])),
    ]
    for fam in ("ipv4", "ipv6"):
        other = data.get(fam)
        if other is not None and data.get("family") != int(fam[-1]):
            seen = ", ".join(other["mapped"]) or "no answer"
            summary.append((f"IPv{fam[-1]}", f"{other['nat_type']} ({seen})"))
    width = max(len(k) for k, _ in summary)
    lines = [probes, ""]
    lines += [f"{k + ':':<{width + 1}} {v}" for k, v in summary]
    lines += ["", textwrap.fill(data["explanation"], width=100)]
    return "\n".join(lines)


def check_text(data: dict[str, Any]) -> str:
    """``derptool check`` as text: one table per node (check, status, detail) and a verdict line.

    *data* is :meth:`derptool.check.CheckReport.to_data`.
    """
    out: list[str] = []
    for node in data["nodes"]:
        where = node["host"] + (f" ({node['address']})" if node.get("address") else "")
        title = f"{node['node']}: {where}" if node.get("node") else where
        out.append(title)
        out.append(table(
            [[c["name"], c["status"].upper(), c["detail"]] for c in node["checks"]],
            ["CHECK", "STATUS", "DETAIL"],
        ))
        if node.get("public_key"):
            out.append(f"server public key: {node['public_key']}")
        out.append("")
    counts = data["counts"]
    verdict = "all checks passed" if data["ok"] else "some checks FAILED"
    out.append(f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")
    return "\n".join(out)


# -- derptool latency (helper-latency) ------------------------------------------------------------

_BAR_WIDTH = 24


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _bar(value: float | None, scale: float) -> str:
    if value is None or scale <= 0:
        return ""
    eighths = max(1, round(value / scale * _BAR_WIDTH * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")


def latency_table(report: Report) -> str:
    """The latency report as text: a summary, then one row per region (sorted) with a bar."""
    pref = report.preferred
    out = [f"Nearest DERP: {pref.name} ({pref.code}, region {pref.id})" if pref else "Nearest DERP: none"]
    v4 = f"yes, {report.global_v4}" if report.ipv4 else "no"
    v6 = f"yes, {report.global_v6}" if report.ipv6 else "no"
    out.append(f"UDP: {_yes_no(report.udp)}   IPv4: {v4}   IPv6: {v6}   "
               f"MappingVariesByDestIP: {_yes_no(report.mapping_varies_by_dest_ip)}")
    out.append(f"{len(report.reachable)} of {len(report.regions)} regions answered in {report.duration_s:.2f} s "
               f"(map: {report.map_source})")
    scale = max((r.latency_ms for r in report.reachable if r.latency_ms is not None), default=0.0)
    rows = []
    for r in report.regions:
        note = r.error or ("Avoid: never preferred" if r.avoid else "")
        rows.append(["*" if r.id == report.preferred_region else "", r.id, r.code, r.name, r.country or "-",
                     _ms(r.latency_ms), r.method or "-", r.node or "-",
                     " ".join(x for x in (_bar(r.latency_ms, scale), note) if x)])
    out.append("")
    out.append(table(rows, ["", "ID", "CODE", "NAME", "COUNTRY", "LATENCY", "VIA", "NODE", ""]))
    return "\n".join(out)


def latency_json(report: Report) -> str:
    """The latency report as the JSON object of the DESIGN.md contract."""
    return to_json(report.to_data())


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _region_labels(r: RegionResult) -> str:
    return (f'region_id="{r.id}",region_code="{_label_value(r.code)}",'
            f'country="{_label_value(r.country or "")}"')


def latency_prometheus(report: Report) -> str:
    """The latency report in the Prometheus text exposition format (ends with a newline)."""
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            num = str(int(value)) if value.is_integer() else repr(round(value, 6))
            out.append(f"{name}{{{labels}}} {num}" if labels else f"{name} {num}")

    metric("derptool_region_latency_seconds", "gauge",
           "Round-trip time to the DERP region (its first answer) in the last run.",
           [(f'{_region_labels(r)},method="{r.method}"', (r.latency_ms or 0.0) / 1000)
            for r in report.regions if r.latency_ms is not None])
    metric("derptool_region_up", "gauge", "1 when the DERP region answered in the last run, else 0.",
           [(_region_labels(r), 1.0 if r.latency_ms is not None else 0.0) for r in report.regions])
    metric("derptool_region_probe_errors", "gauge", "Probes to the DERP region that failed in the last run.",
           [(_region_labels(r), float(r.probe_errors)) for r in report.regions])
    pref = report.preferred
    metric("derptool_preferred_region", "gauge", "ID of the preferred (home) DERP region; 0 when none.",
           [(_region_labels(pref) if pref else "", float(report.preferred_region or 0))])
    metric("derptool_udp", "gauge", "1 when any STUN answer arrived over UDP.", [("", float(report.udp))])
    metric("derptool_ipv4", "gauge", "1 when any STUN answer arrived over IPv4.", [("", float(report.ipv4))])
    metric("derptool_ipv6", "gauge", "1 when any STUN answer arrived over IPv6.", [("", float(report.ipv6))])
    if report.mapping_varies_by_dest_ip is not None:
        metric("derptool_mapping_varies_by_dest_ip", "gauge",
               "1 when servers saw different addresses for the same socket (hard NAT).",
               [("", float(report.mapping_varies_by_dest_ip))])
    metric("derptool_latency_run_duration_seconds", "gauge", "How long the last run took.",
           [("", report.duration_s)])
    metric("derptool_latency_run_timestamp_seconds", "gauge", "When the last run started (Unix time).",
           [("", report.started)])
    return "\n".join(out) + "\n"


# -- derptool diff (helper-apply) -------------------------------------------------------------------


def map_diff_table(rows: Sequence[Sequence[str]]) -> str:
    """``derptool diff`` rows (change, region, node, field, old, new) as a table."""
    return table(rows, ["CHANGE", "REGION", "NODE", "FIELD", "OLD", "NEW"])


def map_diff_summary(data: dict[str, Any]) -> str:
    """One line counting what changed; *data* is :meth:`derptool.mapdiff.MapDiff.to_data`."""
    nodes_added = sum(len(r["nodes_added"]) for r in data["regions_changed"])
    nodes_removed = sum(len(r["nodes_removed"]) for r in data["regions_changed"])
    nodes_changed = sum(len(r["nodes_changed"]) for r in data["regions_changed"])
    parts = [
        f"{len(data['regions_added'])} regions added",
        f"{len(data['regions_removed'])} removed",
        f"{len(data['regions_changed'])} changed",
        f"nodes: {nodes_added} added, {nodes_removed} removed, {nodes_changed} changed",
    ]
    return ", ".join(parts)


# -- policy validation problems (derptool validate) ------------------------------------------------
# Each function takes the problems as dicts: {"file", "line", "column", "severity", "path", "message"}.


def problems_text(problems: Sequence[Mapping[str, Any]]) -> str:
    """``file:line:col: severity: message``, one line per problem."""
    return "\n".join(f"{p['file']}:{p['line']}:{p['column']}: {p['severity']}: {p['message']}" for p in problems)


def problems_json(problems: Sequence[Mapping[str, Any]]) -> str:
    """A JSON list of problem objects (the ``derptool validate --format json`` contract)."""
    keys = ("file", "line", "column", "severity", "path", "message")
    return to_json([{k: p[k] for k in keys} for p in problems])


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def problems_github(problems: Sequence[Mapping[str, Any]]) -> str:
    """GitHub Actions workflow commands: ``::error file=F,line=L,col=C::message`` (``::warning`` likewise)."""
    return "\n".join(
        f"::{p['severity']} file={_gh_property(str(p['file']))},line={p['line']},col={p['column']}::"
        f"{_gh_data(str(p['message']))}"
        for p in problems
    )


def problems_summary(problems: Sequence[Mapping[str, Any]], files: int) -> str:
    """``2 errors, 1 warning in 3 files`` (or ``no problems in 3 files``)."""
    errors = sum(1 for p in problems if p["severity"] == "error")
    warnings = len(problems) - errors
    where = f"in {files} file{'s' if files != 1 else ''}"
    if not problems:
        return f"no problems {where}"
    parts = [f"{errors} error{'s' if errors != 1 else ''}"] if errors else []
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return f"{', '.join(parts)} {where}"
