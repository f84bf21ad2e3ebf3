"""The result of validation: :class:`Problem`, one thing wrong with a policy file, and where it is in the file."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from derptool._types import JsonPath, json_pointer

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in a policy file.

    ``line`` and ``column`` are 1-based (column counted in bytes, like Tailscale's HuJSON errors) and
    point at the offending value, or at the key for an unknown or duplicate key. ``path`` is the JSON
    path to that value.
    """

    file: str
    line: int
    column: int
    path: JsonPath = field(compare=False)
    message: str = field(compare=False)
    severity: Severity = field(default="error", compare=False)

    @property
    def pointer(self) -> str:
        """The path as a JSON Pointer string."""
        return json_pointer(self.path)

    def to_dict(self) -> dict[str, object]:
        """The JSON form: ``{"file", "line", "column", "severity", "path", "message"}``."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "path": self.pointer,
            "message": self.message,
        }


@dataclass(frozen=True)
class Finding:
    """A problem before it has a position: a JSON path, a message, and whether the key is meant."""

    path: JsonPath
    message: str
    severity: Severity = "error"
    at_key: bool = False
    also: JsonPath | None = None
    """Another key the finding is about (its line is added to the message): the first of two keys."""


def value_offset(root: Any, path: JsonPath, at_key: bool) -> int:
    """Byte offset of the value at *path* (or of its key), or of the nearest existing ancestor."""
    # lazy: the policy engine imports this module and needs no hujson (whose import costs start-up)
    from derptool.hujson import Array, Literal, Object

    node = root
    for depth, part in enumerate(path):
        t = node.value
        if isinstance(t, Object):
            name = str(part)
            match = None
            for m in t.members:  # the last member with the name is the one that counts
                if isinstance(m.name.value, Literal) and m.name.value.decode() == name:
                    match = m
            if match is None:
                return int(node.start_offset)
            if at_key and depth == len(path) - 1:
                return int(match.name.start_offset)
            node = match.value
        elif isinstance(t, Array) and isinstance(part, int) and part < len(t.elements):
            node = t.elements[part]
        else:
            return int(node.start_offset)
    return int(node.start_offset)


def locate(src: bytes, paths: Iterable[JsonPath]) -> dict[JsonPath, tuple[int, int]]:
    """1-based ``(line, column)`` of the value at each JSON path of HuJSON *src* (nearest existing ancestor).

    *src* must parse; the positions are those a :class:`Problem` would carry.
    """
    from derptool.hujson import parse  # lazy: as in value_offset

    root = parse(src)
    offsets = {path: max(0, min(value_offset(root, path, False), len(src))) for path in paths}
    # lines counted once through the text, in offset order (a count from the start for each of thousands of
    # rules took seconds on a megabyte policy)
    places: dict[int, tuple[int, int]] = {}
    line, at = 1, 0
    for offset in sorted(set(offsets.values())):
        line += src.count(b"\n", at, offset)
        at = offset
        places[offset] = (line, offset - (src.rfind(b"\n", 0, offset) + 1) + 1)
    return {path: places[offset] for path, offset in offsets.items()}
