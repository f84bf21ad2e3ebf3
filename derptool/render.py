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
