"""The picture outputs every command with a map shares: ``--format html`` / ``--format png`` on standard output,
and ``--html FILE`` (the page written to a file, atomically).

A command checks its options with :func:`check_page_options` before it does its work (so a bad ``--html`` path
or a missing PNG renderer fails before a measurement, not after), then calls :func:`emit_page` with a function
that builds the page; the rendering library is imported only on this path.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from derptool.errors import InputError, UsageError

if TYPE_CHECKING:
    from derptool.report.page import Page

PAGE_FORMATS = ("html", "png")
"""The ``--format`` values that print a picture instead of text."""

HtmlOption = Annotated[
    str | None,
    typer.Option(
        "--html",
        metavar="FILE",
        show_default=False,
        help="Write a self-contained HTML page (map, charts; nothing loaded from the network) to FILE.",
    ),
]


def check_page_options(fmt: str, html: str | None) -> None:
    """Refuse, before any work, a PNG without its renderer or on a terminal, and an ``--html`` target that is
    not a writable file (a directory, a FIFO, a device, a missing directory)."""
    if fmt == "png":
        from derptool.report.page import png_available

        if not png_available():
            raise UsageError("--format png needs the resvg-py package: pip install 'derptool[png]' (or --format html)")
        if sys.stdout.isatty():
            raise UsageError("--format png writes a PNG image: redirect standard output to a file (> map.png)")
    if html is None:
        return
    if not html or html == "-":
        raise UsageError("--html needs a file name (for the page on standard output: --format html)")
    target = Path(html)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        parent = target.parent if str(target.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"--html {html}: the directory {parent} does not exist; nothing was written") from None
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"--html {html}: cannot write in {parent}: permission denied") from None
        return
    except OSError as err:
        raise InputError(f"--html {html}: {err.strerror or err}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"--html {html}: is a directory; give a file name such as {target / 'derp.html'}")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"--html {html}: is not a regular file (a FIFO, device or socket); give a file name")
    if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
        raise InputError(f"--html {html}: the file is read-only; nothing was written")


def emit_page(fmt: str, html: str | None, build: Callable[[], Page]) -> bool:
    """Write the page *build* makes where the options ask; True when it took standard output (``--format html``
    or ``png``), so the command prints nothing else."""
    if fmt not in PAGE_FORMATS and html is None:
        return False
    page = build()
    if html is not None:
        from derptool.fileio import atomic_write

        atomic_write(html, page.html().encode("utf-8"))
    if fmt == "html" and html is None:
        typer.echo(page.html(), nl=False)
    elif fmt == "png":
        data = page.png()
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return fmt in PAGE_FORMATS
