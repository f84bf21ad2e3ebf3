"""Text helpers every command shares: tables, JSON, yes/no, and the one unified-diff writer."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Sequence
from typing import Any


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain-text table with aligned columns."""
    from tabulate import tabulate  # lazy: tabulate is a heavy import, and --help and JSON output draw no table

    return tabulate(rows, headers=list(headers), tablefmt="simple", disable_numparse=True)


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
