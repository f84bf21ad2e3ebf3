"""The ``derptool`` command line: a thin Typer layer over the library.

Each command lives in its own module of this package and registers itself on :data:`app`; the table
``COMMANDS`` in :mod:`._common` names them, and a module is imported only when its command is used, so every
``--help`` and every run pays for one command. Commands import their heavy dependencies inside the function.
"""

from __future__ import annotations

import os

from derptool.cli._common import app


def main() -> None:
    """Console-script entry point."""
    # The CLI uses no pydantic plugins; not scanning installed packages for them saves ~30 ms per run.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    app(prog_name="derptool")


__all__ = ["app", "main"]
