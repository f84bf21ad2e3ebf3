"""JSON paths, shared by several parts of derptool: the type and its JSON Pointer form. This module imports
nothing of derptool."""

from __future__ import annotations

from collections.abc import Sequence

JsonPath = tuple[str | int, ...]
"""A path into JSON data from its top: member names and array indexes (``("acls", 2, "src")``)."""


def json_pointer(path: Sequence[str | int]) -> str:
    """The RFC 6901 JSON Pointer of *path* (``("acls", 0, "src")`` -> ``/acls/0/src``)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


__all__ = ["JsonPath", "json_pointer"]
