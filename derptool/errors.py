"""The one exception tree of derptool.

Every error a user can cause is a :class:`DerptoolError`. The CLI prints it as
``derptool: error: <message>`` (``file:line:col: message`` where the place is known) and exits with
:attr:`DerptoolError.exit_code`::

    DerptoolError                    the base of them all (2, unless a subclass says otherwise)
    ├── UsageError                   a bad option value or combination (2)
    │   └── SelectorError            a region selector matched nothing or is malformed (2)
    ├── InputError                   input the command needs cannot be read or parsed (2)
    │   ├── MapError                 a DERP map (or a policy's derpMap) is not valid (2)
    │   ├── LimitError               input past a documented limit (size, depth, number length, aliases) (2)
    │   ├── ApplyError               a policy file cannot be edited as asked (2)
    │   └── TailnetError             a tailnet file cannot be used (2; defined in derptool.policy.engine.tailnet)
    ├── ConcurrentChangeError        the file changed on disk while derptool worked on it (1)
    ├── NetworkError                 a network failure prevented the job (3)
    │   └── ProbeFailed              one probe (DNS, STUN, TLS, HTTPS) failed; reports record it per probe (3)
    │       ├── ResolveError         a host name does not resolve (in time) (3)
    │       ├── StunTimeout          no valid STUN answer before the deadline (``ignored`` says what came) (3)
    │       └── DerpError            a DERP conversation failed (upgrade, handshake, relay) (3)
    │           └── DerpClientRejected   the server admits only clients it knows (--verify-clients) (3)
    └── ProtocolError                a peer's bytes broke its protocol (2)
        ├── StunError                not a valid STUN message of the expected kind (also a ValueError) (2)
        └── DerpFrameError           not a valid DERP frame of the expected kind (also a ValueError) (2)

:class:`derptool.hujson.HuJSONError` is not part of the tree: the HuJSON library stands alone, and the CLI
maps its errors (a ``ValueError`` with ``line``, ``column`` and ``offset``) to exit codes itself.
"""

from __future__ import annotations


class DerptoolError(Exception):
    """Base of every error derptool raises on purpose."""

    exit_code: int = 2

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, column: int | None = None
    ) -> None:
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


class SelectorError(UsageError):
    """A region selector matched nothing or is malformed."""


class InputError(DerptoolError):
    """Input the command needs could not be read or parsed (exit 2)."""

    exit_code = 2


class MapError(InputError):
    """A DERP map (or a policy ``derpMap``) is not valid."""


class ApplyError(InputError):
    """A policy file cannot be edited as asked: its shape does not allow it (exit 2)."""


class ConcurrentChangeError(DerptoolError):
    """The file changed on disk between reading and writing it (exit 1: nothing was written)."""

    exit_code = 1


class NetworkError(DerptoolError):
    """A network failure prevented the job and nothing could stand in (exit 3)."""

    exit_code = 3


class ProbeFailed(NetworkError):
    """One network probe failed; the message says why. Reports record it as that probe's error."""


class ResolveError(ProbeFailed):
    """A host name does not resolve (or not before the deadline); ``reason`` is the resolver's word."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"cannot resolve {host}: {reason}")
        self.host = host
        self.reason = reason


class StunTimeout(ProbeFailed):
    """No valid STUN answer came before the deadline; ``ignored`` says what came instead, if anything."""

    def __init__(self, ignored: str | None = None) -> None:
        super().__init__("no answer" + (f"; {ignored}" if ignored else ""))
        self.ignored = ignored


class ProtocolError(DerptoolError):
    """A peer sent bytes that break its protocol (a STUN reply, a DERP frame); the message says why."""


class DerpError(ProbeFailed):
    """A DERP conversation failed (no upgrade, a broken handshake, nothing in time); the message says why."""


class DerpClientRejected(DerpError):
    """The DERP server did not admit our client: it admits only clients it knows (``--verify-clients``).

    ``server_key`` is the key of its server-key frame (``nodekey:<hex>``): the server itself works.
    """

    def __init__(self, message: str, server_key: str | None = None) -> None:
        super().__init__(message)
        self.server_key = server_key


class StunError(ValueError, ProtocolError):
    """A packet is not a valid STUN message of the expected kind; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        ProtocolError.__init__(self, reason)
        self.reason = reason


class DerpFrameError(ValueError, ProtocolError):
    """Bytes are not a valid DERP frame of the expected kind; the message says why."""

    def __init__(self, reason: str) -> None:
        ProtocolError.__init__(self, reason)
        self.reason = reason


class LimitError(InputError):
    """Input past a documented limit: file size, nesting depth, number length, YAML aliases (exit 2)."""
