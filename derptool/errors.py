"""The one exception tree of derptool.

Every error a user can cause is a :class:`DerptoolError`. The CLI prints it as
``derptool: error: <message>`` and exits with :attr:`DerptoolError.exit_code`.
"""

from __future__ import annotations


class DerptoolError(Exception):
    """Base of every error derptool raises on purpose."""

    exit_code: int = 2

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column

    def location(self) -> str:
        """``file:line:col`` (as much of it as is known), or an empty string."""
        parts = [p for p in (self.file, self.line, self.column) if p is not None]
        return ":".join(str(p) for p in parts)

    def __str__(self) -> str:
        loc = self.location()
        return f"{loc}: {self.message}" if loc else self.message


class UsageError(DerptoolError):
    """A bad option value or a combination of options that makes no sense (exit 2)."""

    exit_code = 2


class InputError(DerptoolError):
    """Input the command needs could not be read or parsed (exit 2)."""

    exit_code = 2


class MapError(InputError):
    """A DERP map (or a policy ``derpMap``) is not valid."""


class SelectorError(UsageError):
    """A region selector matched nothing or is malformed."""


class NetworkError(DerptoolError):
    """A network failure prevented the job and nothing could stand in (exit 3)."""

    exit_code = 3
