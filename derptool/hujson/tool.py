"""The logic of ``derptool fmt`` as a pure function: bytes in, a :class:`FormatResult` out."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from derptool.hujson.errors import HuJSONError
from derptool.hujson.format import format as format_bytes


@dataclass(frozen=True)
class FormatResult:
    """The outcome of formatting one document named *name*.

    ``formatted`` is ``None`` and ``error`` is set (with ``file`` = *name*) when the text does not parse.
    """

    name: str
    original: bytes
    formatted: bytes | None
    error: HuJSONError | None = None

    @property
    def changed(self) -> bool:
        """True when formatting changes the bytes (False for a syntax error)."""
        return self.formatted is not None and self.formatted != self.original

    def diff(self) -> str:
        """A unified diff from the original to the formatted text (empty when unchanged)."""
        if not self.changed:
            return ""
        assert self.formatted is not None
        old = self.original.decode("utf-8", "replace").splitlines(keepends=True)
        new = self.formatted.decode("utf-8", "replace").splitlines(keepends=True)
        lines = difflib.unified_diff(old, new, f"{self.name}.orig", self.name)
        return "".join(x if x.endswith("\n") else x + "\n\\ No newline at end of file\n" for x in lines)


def format_document(data: bytes, name: str) -> FormatResult:
    """Format *data* (HuJSON) as ``hujson.format`` does, never raising for a syntax error."""
    try:
        return FormatResult(name, data, format_bytes(data))
    except HuJSONError as err:
        return FormatResult(name, data, None, err.with_file(name))
