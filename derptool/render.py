"""Rendering library results as text: tables, JSON, Prometheus text, GitHub annotations.

Functions here format data they are given; they compute nothing and do no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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
