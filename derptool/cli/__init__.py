"""The ``derptool`` command line: a thin Typer layer over the library.

Each command lives in its own module of this package and registers itself on :data:`app`; the table
``COMMANDS`` in :mod:`._app` names them, and a module is imported only when its command is used, so every
``--help`` and every run pays for one command. A command imports the heavy library modules it runs on inside
its function, so that its ``--help`` stays fast. The shared glue: :mod:`._app` (the app and its table),
:mod:`._errors` (errors to one line and an exit code), :mod:`._options` (option types), :mod:`._inputs` (the
``--map`` and input files), :mod:`._output` (text writers), :mod:`._apply` and :mod:`._probe` (shared options).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from derptool.cli._interrupt import install as _install_interrupt

if TYPE_CHECKING:
    from derptool.cli._app import app


def main() -> None:
    """Console-script entry point: the interrupt handler first, then the heavy imports, then the app."""
    _install_interrupt()
    import os

    # The CLI uses no pydantic plugins; not scanning installed packages for them saves ~30 ms per run.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from derptool.cli._app import app

    try:
        app(prog_name="derptool")
    except SystemExit as done:
        _leave(done)
        raise


def _leave(done: SystemExit) -> None:
    """End the process at once when a worker thread (a DNS lookup, an HTTP fetch given up on) is still alive.

    Python's teardown with a daemon thread inside httpx or ssl can crash the process (SIGSEGV) after the
    command has already printed its result: an interrupt or a deadline must still end with the documented
    code. Files were already closed and temporaries removed while the command unwound.
    """
    import sys

    threading = sys.modules.get("threading")
    if threading is None or threading.active_count() <= 1:
        return
    code = done.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    import contextlib
    import os

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code or 0)


def __getattr__(name: str) -> Any:
    # ``app`` loads Typer: imported on first use, so that main() can install its handler before that.
    if name == "app":
        from derptool.cli._app import app

        return app
    raise AttributeError(name)


__all__ = ["app", "main"]
