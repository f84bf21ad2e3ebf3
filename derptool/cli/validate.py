"""``derptool validate`` and ``derptool schema``."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from derptool.cli._common import InputFiles, app, handle_errors


class ProblemFormat(StrEnum):
    """Output formats of ``derptool validate``."""

    text = "text"
    json = "json"
    github = "github"


@app.command("validate")
@handle_errors
def validate_command(
    files: Annotated[list[str], typer.Argument(metavar="FILE", help="Policy files (HuJSON or JSON); '-' is stdin.")],
    fmt: Annotated[
        ProblemFormat, typer.Option("--format", "-f", help="text (file:line:col), json, or github (annotations).")
    ] = ProblemFormat.text,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too (exit 1).")] = False,
) -> None:
    """Check tailnet policy files offline, with the rules and messages of Tailscale's control plane.

    Exit 0 when valid, 1 when a file has an error (or a warning with --strict), 2 when a file cannot be read.
    """
    from derptool import render
    from derptool.policy import validate_bytes

    problems = []
    inputs = InputFiles(files)
    for name, snap in inputs:
        problems.extend(validate_bytes(snap.data, name))
    unreadable = inputs.unreadable
    data = [p.to_dict() for p in problems]
    if fmt is ProblemFormat.json:
        typer.echo(render.problems_json(data))
    elif data:
        typer.echo(render.problems_github(data) if fmt is ProblemFormat.github else render.problems_text(data))
    if fmt is ProblemFormat.text:
        print(f"derptool: {render.problems_summary(data, len(files) - unreadable)}", file=sys.stderr)
    if unreadable:
        raise typer.Exit(2)
    failing = [p for p in problems if p.severity == "error" or strict]
    raise typer.Exit(1 if failing else 0)


@app.command("schema")
@handle_errors
def schema_command(
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Directory to write the schemas into.")
    ] = Path("schemas"),
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 when the files in --out are missing or stale.")
    ] = False,
) -> None:
    """Write policy.schema.json and derpmap.schema.json (JSON Schema 2020-12) for editors and CI."""
    from derptool.errors import InputError
    from derptool.fileio import atomic_write
    from derptool.policy.schema import schema_files

    stale = []
    for name, text in schema_files().items():
        target = out / name
        try:
            current = target.read_text(encoding="utf-8") if target.exists() else None
        except OSError as err:
            raise InputError(f"{target}: cannot read: {err.strerror or err}") from None
        if current == text:
            continue
        stale.append(target)
        if not check:
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise InputError(f"{out}: cannot create the directory: {err.strerror or err}") from None
            atomic_write(target, text.encode("utf-8"))
            typer.echo(f"wrote {target}")
    if check and stale:
        for target in stale:
            print(f"derptool: {target} is missing or stale: run 'derptool schema --out {out}'", file=sys.stderr)
        raise typer.Exit(1)
