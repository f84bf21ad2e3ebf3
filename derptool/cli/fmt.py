"""``derptool fmt``: format HuJSON files like Tailscale's hujsonfmt (tabs, aligned values, comments kept)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from derptool.cli._app import app
from derptool.cli._errors import handle_errors, report
from derptool.cli._inputs import InputFiles
from derptool.cli._output import unified_diff
from derptool.errors import InputError, UsageError

if TYPE_CHECKING:
    from derptool import hujson


@app.command("fmt")
@handle_errors
def fmt_command(
    files: Annotated[
        list[str], typer.Argument(metavar="FILE", help="HuJSON files, directories (*.hujson inside), '-' for stdin.")
    ],
    write: Annotated[bool, typer.Option("--write", "-w", help="Rewrite files in place (atomic, mode kept).")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; list files that would change, exit 1 if any.")
    ] = False,
    list_: Annotated[
        bool, typer.Option("--list", "-l", help="List files whose formatting differs (as hujsonfmt -l; exit 0).")
    ] = False,
    diff: Annotated[bool, typer.Option("--diff", "-d", help="Print a unified diff instead of the text.")] = False,
    minify: Annotated[
        bool, typer.Option("--minify", "-m", help="Minify instead: plain JSON, no whitespace (hujsonfmt -m).")
    ] = False,
    standardize: Annotated[
        bool,
        typer.Option(
            "--standardize",
            "-s",
            help="Standardize instead: comments and trailing commas become spaces (hujsonfmt -s).",
        ),
    ] = False,
) -> None:
    """Format HuJSON (tailnet policy) files the way Tailscale's Go hujson.Format does.

    Prints the result unless --write, --check, --list or --diff is given. --minify and --standardize
    replace formatting with hujsonfmt's -m and -s. Exit 0 on success (--list included); with --check,
    1 when a file would change or has a syntax error; 2 for unreadable input, or a syntax error
    without --check.
    """
    from derptool.fileio import atomic_write  # lazy: fileio (hashlib) is not needed for --help

    if write and "-" in files:
        raise UsageError("--write cannot be used with stdin ('-')")
    if write and check:
        raise UsageError("--write and --check cannot be used together")
    if write and list_:
        raise UsageError("--write and --list cannot be used together")
    if minify and standardize:
        raise UsageError("--minify and --standardize cannot be used together")
    mode = "minimize" if minify else ("standardize" if standardize else "format")
    syntax = changed = 0
    inputs = InputFiles(_expand(files))
    for name, snap in inputs:
        result = format_document(snap.data, name, mode)
        if result.error is not None:
            report(result.error)
            syntax += 1
            continue
        assert result.formatted is not None
        changed += result.changed
        if diff:
            typer.echo(result.diff(), nl=False)
        if check or list_:
            if result.changed and not diff:
                typer.echo(result.name)
        elif write:
            if result.changed:
                atomic_write(snap.path, result.formatted, expect=snap)
        elif not diff:
            typer.echo(result.formatted, nl=False)
    if inputs.unreadable or (syntax and not check):
        raise typer.Exit(2)
    if check and (changed or syntax):
        raise typer.Exit(1)


def _expand(names: list[str]) -> list[str]:
    """Files as given; a directory stands for the ``*.hujson`` files below it, sorted."""
    out: list[str] = []
    for name in names:
        p = Path(name)
        if name != "-" and p.is_dir():
            try:
                out += sorted(str(f) for f in p.rglob("*.hujson") if f.is_file())
            except OSError as err:
                raise InputError(f"{name}: cannot list the directory: {err.strerror or err}") from None
        else:
            out.append(name)
    return out


@dataclass(frozen=True)
class FormatResult:
    """The outcome of formatting one document named *name*.

    ``formatted`` is ``None`` and ``error`` is set (with ``file`` = *name*) when the text does not parse.
    """

    name: str
    original: bytes
    formatted: bytes | None
    error: hujson.HuJSONError | None = None

    @property
    def changed(self) -> bool:
        """True when formatting changes the bytes (False for a syntax error)."""
        return self.formatted is not None and self.formatted != self.original

    def diff(self) -> str:
        """A unified diff from the original to the formatted text (empty when unchanged)."""
        if not self.changed:
            return ""
        assert self.formatted is not None
        return unified_diff(self.original, self.formatted, f"{self.name}.orig", self.name)


def format_document(data: bytes, name: str, mode: str = "format") -> FormatResult:
    """Format *data* (HuJSON) as ``hujson.format`` does, never raising for a syntax error.

    *mode* ``"minimize"`` or ``"standardize"`` applies that transformation instead (hujsonfmt -m, -s).
    """
    from derptool import hujson  # heavy: imported when a document is formatted, so that --help stays fast

    transform = {"format": hujson.format, "minimize": hujson.minimize, "standardize": hujson.standardize}[mode]
    try:
        return FormatResult(name, data, transform(data))
    except hujson.HuJSONError as err:
        return FormatResult(name, data, None, err.with_file(name))
