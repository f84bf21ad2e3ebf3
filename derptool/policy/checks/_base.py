"""The state every policy check shares: the canonical data, the names it defines, the findings so far."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from derptool._types import JsonPath
from derptool.policy.problems import Finding


def strings(value: Any) -> Iterator[tuple[int, str]]:
    """Index and string of every string item of a list (other items were reported by the shape check)."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, str):
                yield i, item


def items(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """Index and object of every object item of a list."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, Mapping):
                yield i, dict(item)


def mapping(value: Any) -> dict[Any, Any]:
    """*value* as a dict, or an empty one when it is not an object."""
    return dict(value) if isinstance(value, Mapping) else {}


class CheckerBase:
    """Canonical policy data, the names it defines, and the findings recorded so far."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.findings: list[Finding] = []
        self.tags = set(mapping(data.get("tagOwners")))
        self.groups = mapping(data.get("groups"))
        self.hosts = mapping(data.get("hosts"))
        self.ipsets = mapping(data.get("ipsets"))
        self.postures = set(mapping(data.get("postures")))

    # -- plumbing ---------------------------------------------------------------------------------

    def error(self, path: JsonPath, message: str) -> None:
        """Record an error at *path*."""
        self.findings.append(Finding(path, message))

    def error_key(self, path: JsonPath, message: str) -> None:
        """Record an error about the key at the end of *path* (its position is the key's)."""
        self.findings.append(Finding(path, message, at_key=True))

    def warning(self, path: JsonPath, message: str) -> None:
        """Record a warning at *path*."""
        self.findings.append(Finding(path, message, "warning"))
