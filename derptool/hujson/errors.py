"""The one error type of :mod:`derptool.hujson`, and the signal its fast paths give up with."""

from __future__ import annotations


def position(src: bytes, offset: int) -> tuple[int, int]:
    """1-based ``(line, column)`` of byte *offset* in *src*; columns count bytes, as Go does."""
    offset = max(0, min(offset, len(src)))
    line = src.count(b"\n", 0, offset) + 1
    column = offset - (src.rfind(b"\n", 0, offset) + 1) + 1
    return line, column


class GiveUp(Exception):
    """A fast path cannot decide this text (it may be valid, laid out otherwise, or invalid): the caller
    takes the full parser's path, which gives the answer or Go's exact error. Internal to the package:
    no public function lets it out."""


class HuJSONError(ValueError):
    """Invalid HuJSON text, JSON Pointer or patch.

    ``str(err)`` is the Go message (``hujson: line L, column C: <reason>``). Syntax errors carry
    ``offset`` (0-based byte offset), ``line`` and ``column`` (1-based, counted in bytes); errors with no
    place in the text (a bad pointer, a failing patch operation) have them set to ``None``.
    ``reason`` is the message without prefix. With ``file`` set, ``str`` gives ``FILE:L:C: reason``.
    """

    def __init__(
        self,
        reason: str,
        *,
        offset: int | None = None,
        line: int | None = None,
        column: int | None = None,
        file: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset
        self.line = line
        self.column = column
        self.file = file

    def location(self) -> str:
        """``file:line:col`` (as much of it as is known), or an empty string."""
        parts = [p for p in (self.file, self.line, self.column) if p is not None]
        return ":".join(str(p) for p in parts)

    @classmethod
    def at(cls, src: bytes, offset: int, reason: str) -> HuJSONError:
        """An error at byte *offset* of *src*."""
        line, column = position(src, offset)
        return cls(reason, offset=offset, line=line, column=column)

    def with_file(self, file: str) -> HuJSONError:
        """The same error, naming *file* (``str`` becomes ``FILE:L:C: reason``)."""
        return HuJSONError(self.reason, offset=self.offset, line=self.line, column=self.column, file=file)

    def __str__(self) -> str:
        if self.file is not None:
            loc = self.location()
            return f"{loc}: {self.reason}"
        if self.line is not None:
            return f"hujson: line {self.line}, column {self.column}: {self.reason}"
        return f"hujson: {self.reason}"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (self.reason, self.offset, self.line, self.column, self.file))


def _rebuild(reason: str, offset: int | None, line: int | None, column: int | None, file: str | None) -> HuJSONError:
    return HuJSONError(reason, offset=offset, line=line, column=column, file=file)
