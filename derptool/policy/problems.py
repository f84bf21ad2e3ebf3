"""The result of validation: :class:`Problem`, one thing wrong with a policy file, where it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]
Path = tuple[str | int, ...]


def json_pointer(path: Path) -> str:
    """RFC 6901 JSON Pointer for *path* (``("acls", 0, "src")`` → ``/acls/0/src``)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


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
    path: Path = field(compare=False)
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

    path: Path
    message: str
    severity: Severity = "error"
    at_key: bool = False
