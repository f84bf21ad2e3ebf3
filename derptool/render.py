"""Rendering library results as text: tables, JSON, Prometheus text, GitHub annotations.

Functions here format data they are given; they compute nothing and do no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


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
