"""One site's latency report, read from ``derptool latency --format json`` or ``tailscale netcheck --format json``.

Pure: :func:`parse_report` turns the bytes of a file into a :class:`SiteReport` or raises
:class:`~derptool.errors.InputError` with one line naming the file (and line and column for bad JSON).

* derptool's report (DESIGN.md contract): ``regions`` is a list of ``{"id": int, "latency_ms": float | null}``
  (other members are ignored), ``preferred_region`` the home region or ``null``.
* Tailscale's ``netcheck.Report``: ``RegionLatency`` maps the decimal region ID to a Go ``time.Duration``
  (integer nanoseconds), ``PreferredDERP`` is the home region or 0 for none. ``tailscale netcheck`` prints a
  ``# Warning`` line on stderr; when that was captured too, lines starting with ``#`` before the JSON are skipped.

A file holding several reports one after another (``latency --every`` or ``netcheck --every`` output) stands for
its last one: the newest measurement.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Literal

from derptool.errors import InputError

ReportKind = Literal["derptool", "tailscale", "prometheus"]

EXPECTED = "expected the JSON of 'derptool latency --format json' or 'tailscale netcheck --format json'"


@dataclass(frozen=True)
class SiteReport:
    """What one site measured: the latency to each region that answered, and the home it reported."""

    site: str
    latencies_ms: dict[int, float]
    """Region ID to round-trip time in milliseconds; regions that did not answer are absent."""
    preferred: int | None = None
    """The home region the site itself reported (None when unknown)."""
    source: str = ""
    """Where the report came from: a file name, or a Prometheus URL."""
    kind: ReportKind = "derptool"
    notes: list[str] = field(default_factory=list)


def site_name(path: str) -> str:
    """The site a report file stands for: its file name without the extension (``stdin`` for ``-``)."""
    if path == "-":
        return "stdin"
    return PurePath(path).stem or PurePath(path).name


def _documents(text: str, file: str) -> list[Any]:
    """The JSON values in *text*, one after another; raises InputError at the first syntax error."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            return values
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise InputError(
                f"not valid JSON ({err.msg}); {EXPECTED}", file=file, line=err.lineno, column=err.colno
            ) from None
        values.append(value)


def _strip_comment_lines(text: str) -> str:
    """Blank out leading ``#`` lines (tailscale's stderr warning), keeping line numbers."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("#"):
            lines[i] = ""
        elif stripped:
            break
    return "\n".join(lines)


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "empty object"
    if isinstance(value, bool):
        return "boolean"
    names = {list: "array", str: "string", int: "number", float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _from_derptool(data: dict[str, Any], file: str) -> tuple[dict[int, float], int | None]:
    regions = data["regions"]
    if not isinstance(regions, list):
        raise InputError("'regions' is not a list; " + EXPECTED, file=file)
    latencies: dict[int, float] = {}
    for i, r in enumerate(regions):
        if not isinstance(r, dict):
            raise InputError(f"regions[{i}] is not an object", file=file)
        rid, ms = r.get("id"), r.get("latency_ms")
        if not isinstance(rid, int) or isinstance(rid, bool) or rid <= 0:
            raise InputError(f"regions[{i}].id is {rid!r}, expected a positive region ID", file=file)
        if ms is None:
            continue
        if not _number(ms) or ms < 0:
            raise InputError(
                f"regions[{i}].latency_ms is {ms!r}, expected milliseconds (a number >= 0) or null", file=file
            )
        latencies[rid] = float(ms)
    pref = data.get("preferred_region")
    if pref is not None and (not isinstance(pref, int) or isinstance(pref, bool)):
        raise InputError(f"'preferred_region' is {pref!r}, expected a region ID or null", file=file)
    return latencies, pref or None


def _from_tailscale(data: dict[str, Any], file: str) -> tuple[dict[int, float], int | None]:
    raw = data["RegionLatency"]
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InputError("'RegionLatency' is not an object of region ID to nanoseconds", file=file)
    latencies: dict[int, float] = {}
    for key, ns in raw.items():
        if not key.isdigit() or int(key) <= 0:
            raise InputError(f"RegionLatency key {key!r} is not a region ID", file=file)
        if not _number(ns) or ns < 0:
            raise InputError(f"RegionLatency[{key!r}] is {ns!r}, expected nanoseconds (an integer >= 0)", file=file)
        latencies[int(key)] = ns / 1e6
    pref = data.get("PreferredDERP", 0)
    if not isinstance(pref, int) or isinstance(pref, bool):
        raise InputError(f"'PreferredDERP' is {pref!r}, expected a region ID (0 for none)", file=file)
    return latencies, pref or None


def parse_report(data: bytes, *, file: str, site: str | None = None) -> SiteReport:
    """Read one site's report from the bytes of *file*; the site is named after the file unless *site* is given.

    Raises :class:`InputError` for an empty file, invalid JSON, JSON of another kind, or a report in which no
    region answered (it cannot say where the site's home is).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text (byte {err.start}); {EXPECTED}", file=file) from None
    text = _strip_comment_lines(text)
    if not text.strip():
        raise InputError(f"empty file; {EXPECTED}", file=file)
    documents = _documents(text, file)
    notes: list[str] = []
    if len(documents) > 1:
        notes.append(f"{file}: holds {len(documents)} reports; using the last one")
    doc = documents[-1]
    kind: ReportKind
    if isinstance(doc, dict) and "regions" in doc and "preferred_region" in doc:
        kind = "derptool"
        latencies, preferred = _from_derptool(doc, file)
    elif isinstance(doc, dict) and "RegionLatency" in doc:
        kind = "tailscale"
        latencies, preferred = _from_tailscale(doc, file)
    else:
        found = (
            f"an object with keys {', '.join(list(doc)[:5])}"
            if isinstance(doc, dict) and doc
            else f"a JSON {_json_type(doc)}"
        )
        raise InputError(f"not a latency report ({found}); {EXPECTED}", file=file)
    if not latencies:
        raise InputError("no region answered in this report, so it cannot tell where the site's home is", file=file)
    return SiteReport(site or site_name(file), latencies, preferred, file, kind, notes)
