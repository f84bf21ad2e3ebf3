"""Text helpers every command shares: tables, JSON, yes/no, and the one unified-diff writer.

Tables use rich, the one table library (watch's live view needs rich anyway): its cell functions measure
wide characters and cut a value to a width, ending it in an ellipsis instead of wrapping it. The layout is
this module's: a table fits the output width (``$COLUMNS`` when set, else the terminal's width, else
:data:`DEFAULT_WIDTH`) and the widest columns give way first, down to their header's width (rich's own Table
shrinks every column alike, the narrow ID and latency columns too, and its import, which the console brings,
costs start-up some 30 ms that ``rich.cells`` does not). ``--wide`` (:data:`WideOption`) shows every value in
full.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import shutil
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer._click.globals import get_current_context

DEFAULT_WIDTH = 100
"""The width of a table when standard output is not a terminal and ``$COLUMNS`` is not set."""
_WIDE = "derptool.wide"
_GAP = 2  # spaces between two columns
_ELLIPSIS = "…"
_ONE_CELL_EACH = re.compile("[\x20-\x7e\xa0-\xac\xae-\u02ff\u0370-\u0482\u2500-\u25fc\u2800-\u28ff]*")
"""Text of only these characters (the ranges rich itself measures as one cell each: Latin, Greek, Cyrillic,
box drawing and blocks, Braille) is as wide as it is long, measured without importing rich."""


def cell_len(text: str) -> int:
    """How many terminal cells *text* takes (rich's measure; without rich for the common one-cell text)."""
    if _ONE_CELL_EACH.fullmatch(text):
        return len(text)
    from rich.cells import cell_len as measure  # lazy: some 3 ms of start-up, for wide or zero-width text only

    return measure(text)


def set_cell_size(text: str, width: int) -> str:
    """*text* padded with spaces, or cut, to exactly *width* cells (as rich's function of the same name)."""
    if _ONE_CELL_EACH.fullmatch(text):
        return text[:width].ljust(width)
    from rich.cells import set_cell_size as fit  # lazy, as in cell_len()

    return fit(text, width)


def _set_wide(ctx: typer.Context, value: bool) -> bool:
    if value:
        ctx.meta[_WIDE] = True
    return value


WideOption = Annotated[
    bool,
    typer.Option(
        "--wide",
        callback=_set_wide,
        help="Show every table value in full (by default a table fits the terminal, or 100 columns when the "
        "output is not a terminal, and long values end in an ellipsis).",
    ),
]


def output_width() -> int | None:
    """The width tables must fit: ``None`` under ``--wide``, else ``$COLUMNS``, the terminal's, or 100."""
    ctx = get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(_WIDE):
        return None
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        if sys.stdout.isatty():
            return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    except (AttributeError, ValueError, OSError):
        pass
    return DEFAULT_WIDTH


def fit_widths(natural: Sequence[int], floors: Sequence[int], width: int | None) -> list[int]:
    """Column widths that fit *width* (with the gaps): the widest columns shrink first, none below its floor."""
    widths = list(natural)
    if width is None:
        return widths
    excess = sum(widths) + _GAP * (len(widths) - 1) - width
    while excess > 0:
        room = [i for i, w in enumerate(widths) if w > floors[i]]
        if not room:
            break
        widest = max(widths[i] for i in room)
        tops = [i for i in room if widths[i] == widest]
        below = max([widths[i] for i in room if widths[i] < widest] + [max(floors[i] for i in tops)])
        step = min(widest - below, -(-excess // len(tops)))
        for i in tops:
            cut = min(step, widths[i] - floors[i], excess)
            widths[i] -= cut
            excess -= cut
    return widths


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain-text table with aligned columns, fitted to :func:`output_width` (values cut with an ellipsis)."""
    cells = [[_one_line(v) for v in row] for row in rows]
    natural = [max([cell_len(h), *(cell_len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    floors = [min(n, max(cell_len(h), 3)) for n, h in zip(natural, headers, strict=True)]
    widths = fit_widths(natural, floors, output_width())
    lines = [_row(headers, widths), _row(["-" * w for w in widths], widths)]
    lines += [_row(r, widths) for r in cells]
    return "\n".join(lines)


def fit_list(prefix: str, items: Sequence[str], sep: str = ", ") -> str:
    """*prefix* and *items* on one line that fits :func:`output_width`: the items that fit, then ``… (+N more)``."""
    width = output_width()
    line = prefix + sep.join(items)
    if width is None or cell_len(line) <= width:
        return line
    shown: list[str] = []
    for i, item in enumerate(items):
        more = f"{sep if shown else ''}… (+{len(items) - i - 1} more)"
        if cell_len(prefix + sep.join([*shown, item]) + more) > width and shown:
            break
        shown.append(item)
    rest = len(items) - len(shown)
    line = prefix + sep.join(shown) + (f"{sep}… (+{rest} more)" if rest else "")
    return line if cell_len(line) <= width else _cut(line, width)


def _cut(text: str, width: int) -> str:
    """*text* cut to *width* cells, ending in an ellipsis."""
    return set_cell_size(text, width - 1).rstrip() + _ELLIPSIS if width > 0 else ""


def _one_line(value: Any) -> str:
    text = "" if value is None else str(value)
    return "".join(c if c.isprintable() else " " for c in text) if not text.isprintable() else text


def _row(values: Sequence[str], widths: Sequence[int]) -> str:
    """One line: each value padded (or cut, ending in an ellipsis) to its column's width, two spaces apart."""
    out = []
    for value, width in zip(values, widths, strict=True):
        if cell_len(value) > width:
            value = _cut(value, width)
        out.append(set_cell_size(value, width))
    return (" " * _GAP).join(out).rstrip()


def to_json(data: Any) -> str:
    """Indented JSON text (UTF-8 kept as is), ending without a newline.

    A NaN or infinite number (a peer's metric can be one) is written as ``null``: the output is always JSON.
    """
    return json.dumps(_finite(data), indent=2, ensure_ascii=False, allow_nan=False)


def _finite(data: Any) -> Any:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data


def yes_no(value: bool | None) -> str:
    """``yes``, ``no`` or ``unknown``."""
    return "unknown" if value is None else ("yes" if value else "no")


def unified_diff(old: bytes, new: bytes, fromfile: str, tofile: str) -> str:
    """A unified diff of two versions of a file (empty when they are equal); a missing final newline is marked."""
    a = old.decode("utf-8", "replace").splitlines(keepends=True)
    b = new.decode("utf-8", "replace").splitlines(keepends=True)
    lines = difflib.unified_diff(a, b, fromfile=fromfile, tofile=tofile)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
