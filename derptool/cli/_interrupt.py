"""Ctrl-C at any moment: one line, ``derptool: interrupted``, exit 130, never a traceback.

:func:`install` is the first thing the entry point does, before the heavy imports (Typer, httpx, pydantic),
so an interrupt while Python is still loading them exits at once. While a command runs (inside
:func:`running`) the interrupt is raised as ``KeyboardInterrupt`` instead, so the command can clean up (an
atomic write removes its temporary file) before its error handler prints the same line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType

EXIT_CODE = 130
MESSAGE = "derptool: interrupted\n"

_depth = 0


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if _depth > 0:
        raise KeyboardInterrupt
    with contextlib.suppress(Exception):
        sys.stderr.write(MESSAGE)
        sys.stderr.flush()
    os._exit(EXIT_CODE)


def install() -> None:
    """Handle SIGINT as described in the module docstring (main thread only; a no-op elsewhere)."""
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGINT, _on_sigint)


@contextlib.contextmanager
def running() -> Iterator[None]:
    """While inside, an interrupt raises ``KeyboardInterrupt`` (for the command to clean up and report)."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
