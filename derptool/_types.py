"""Type aliases shared by several parts of derptool. This module imports nothing of derptool."""

from __future__ import annotations

JsonPath = tuple[str | int, ...]
"""A path into JSON data from its top: member names and array indexes (``("acls", 2, "src")``)."""

__all__ = ["JsonPath"]
