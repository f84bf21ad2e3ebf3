"""How a command's failures reach the user: one ``derptool: error: <message>`` line on stderr and an exit code.

:class:`~derptool.errors.DerptoolError` carries its own code; a HuJSON syntax error is bad input (2); a full
disk exits 2; an interrupt exits 130; a closed pipe ends quietly (0). Notices (``warn``) are one line too.
"""

from __future__ import annotations

import errno
import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from derptool.cli._interrupt import running
from derptool.errors import DerptoolError, InputError, LimitError

if TYPE_CHECKING:
    from derptool.hujson import HuJSONError

F = TypeVar("F", bound=Callable[..., Any])


def warn(message: str) -> None:
    """Print a one-line notice on stderr."""
    print(f"derptool: {message}", file=sys.stderr)


def report(err: DerptoolError | HuJSONError) -> None:
    """Print *err* as one ``derptool: error:`` line on stderr."""
    print(f"derptool: error: {err}", file=sys.stderr)


def fail(err: DerptoolError | HuJSONError) -> typer.Exit:
    """Print *err* as one line on stderr and return the ``typer.Exit`` to raise (a HuJSON error is bad input: 2)."""
    report(err)
    return typer.Exit(err.exit_code if isinstance(err, DerptoolError) else 2)


def handle_errors(func: F) -> F:
    """Decorate a command so that a :class:`DerptoolError` becomes one line and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with running():
                return func(*args, **kwargs)
        except DerptoolError as err:
            raise fail(err) from None
        except ValueError as err:
            from derptool.hujson import HuJSONError  # lazy: hujson is loaded only by the commands that read HuJSON

            if isinstance(err, HuJSONError):
                raise fail(err) from None
            raise
        except RecursionError:
            raise fail(_too_deep()) from None
        except KeyboardInterrupt:
            print("derptool: interrupted", file=sys.stderr)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            raise typer.Exit(0) from None
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS):
                raise fail(InputError(f"cannot write: {err.strerror or err}")) from None
            raise

    return wrapper  # type: ignore[return-value]


def _too_deep() -> DerptoolError:
    from derptool.fileio import MAX_DEPTH  # lazy: fileio (hashlib) is not needed on every command's --help

    return LimitError(f"the input is nested too deeply to process (the documented limit is {MAX_DEPTH} levels)")
