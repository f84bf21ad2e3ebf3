"""``derptool validate`` and ``derptool schema``."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from derptool.cli._app import app
from derptool.cli._errors import handle_errors
from derptool.cli._inputs import InputFiles
from derptool.cli._options import MapOption
from derptool.cli._output import to_json
from derptool.errors import InputError

if TYPE_CHECKING:
    from derptool.derpmap import DERPMap
    from derptool.policy.problems import Problem


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
    tailnet: Annotated[
        list[str] | None,
        typer.Option(
            "--tailnet",
            "-t",
            metavar="FILE",
            help="Also run the policy's tests and sshTests against this tailnet (derptool's tailnet file, "
            "`tailscale status --json`, the API's device list, or headscale's nodes and users lists: give "
            "--tailnet twice or a directory). Without it only tests that can never pass are reported.",
        ),
    ] = None,
    geofence: Annotated[
        bool,
        typer.Option(
            "--geofence",
            help="Also check each policy's recorded geofence ('// derptool: omit' line) against the current map "
            "(--map): regions out of step are errors, single points of failure warnings.",
        ),
    ] = False,
    map_spec: MapOption = "default",
) -> None:
    """Check tailnet policy files offline, with the rules and messages of Tailscale's control plane.

    Exit 0 when valid, 1 when a file has an error (or a warning with --strict), 2 when a file cannot be read.
    """
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.policy.validate import count_tests, decode, validate_bytes

    net = None
    if tailnet:
        from derptool.policy.engine import import_tailnet  # heavy, and needed only with --tailnet

        imported = import_tailnet(tailnet)
        for note in imported.notes:
            print(f"derptool: note: {note}", file=sys.stderr)
        net = imported.tailnet
    problems = []
    untested = 0
    sources: dict[str, bytes] = {}
    inputs = InputFiles(files)
    base = None
    if geofence:
        from derptool.cli._errors import warn
        from derptool.derpmap.sources import load_map

        base = load_map(map_spec, notice=warn).derp_map
    for name, snap in inputs:
        sources[name] = snap.data
        problems.extend(validate_bytes(snap.data, name, net))
        if base is not None:
            problems.extend(geofence_problems(snap.data, name, base))
        if net is None:
            with contextlib.suppress(ValueError):
                untested += count_tests(decode(snap.data))
    unreadable = inputs.unreadable
    data = [p.to_dict() for p in problems]
    if fmt is ProblemFormat.json:
        typer.echo(problems_json(data))
    elif data:
        typer.echo(
            problems_github(character_columns(data, sources)) if fmt is ProblemFormat.github else problems_text(data)
        )
    if fmt is ProblemFormat.text and sources:  # no summary when no file could be read: the errors said it all
        summary = problems_summary(data, len(sources))
        if unreadable:
            summary += f"; {unreadable} file{'s' if unreadable != 1 else ''} not read"
        print(f"derptool: {summary}", file=sys.stderr)
        if untested:
            print(
                f"derptool: {untested} policy test{'s' if untested != 1 else ''} not run: give --tailnet FILE "
                "to run them against your tailnet",
                file=sys.stderr,
            )
    if unreadable:
        raise typer.Exit(2)
    failing = [p for p in problems if p.severity == "error" or strict]
    raise typer.Exit(1 if failing else 0)


def geofence_problems(src: bytes, name: str, base: DERPMap) -> list[Problem]:
    """``validate --geofence`` for one file: drift as errors at the recorded line, single points of failure and
    a missing record as warnings. A tampered line raises :class:`~derptool.errors.InputError` (exit 2)."""
    from derptool.derpmap import merge
    from derptool.derpmap.overlay import policy_overlay
    from derptool.derpmap.resilience import single_points
    from derptool.edit.geofence import check_geofence, describe_drift
    from derptool.errors import ApplyError, MapError
    from derptool.hujson import loads
    from derptool.policy.problems import Problem

    try:
        data = loads(src)
    except ValueError:  # not valid HuJSON: validate reports that already
        return []
    try:
        result = check_geofence(src, base, file=name)
    except (MapError, ApplyError):  # a derpMap that is no valid map: validate reports that already
        return []
    if result.recorded is None:
        return [Problem(name, 1, 1, (), "records no geofence to check (no '// derptool: omit' line)", "warning")]
    at = (result.recorded.line, result.recorded.column)
    out = [Problem(name, *at, ("derpMap",), line, "error") for line in describe_drift(result, name)]
    try:
        overlay = policy_overlay(data if isinstance(data, dict) else {}, source=name)
    except MapError:
        return out
    merged = merge(base, overlay) if overlay is not None else base
    out += [Problem(name, *at, ("derpMap",), w, "warning") for w in single_points(merged)]
    return out


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
    # heavy (the schema needs pydantic): imported when the command runs, so that --help stays fast
    from derptool.fileio import atomic_write, read_regular
    from derptool.policy.schema import schema_files

    stale = []
    for name, text in schema_files().items():
        target = out / name
        try:
            current = read_regular(target).decode("utf-8", "replace") if os.path.lexists(target) else None
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


def problems_text(problems: Sequence[Mapping[str, Any]]) -> str:
    """``file:line:col: severity: message``, one line per problem."""
    return "\n".join(f"{p['file']}:{p['line']}:{p['column']}: {p['severity']}: {p['message']}" for p in problems)


def problems_json(problems: Sequence[Mapping[str, Any]]) -> str:
    """A JSON list of problem objects (the ``derptool validate --format json`` contract)."""
    keys = ("file", "line", "column", "severity", "path", "message")
    return to_json([{k: p[k] for k in keys} for p in problems])


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def problems_github(problems: Sequence[Mapping[str, Any]]) -> str:
    """GitHub Actions workflow commands: ``::error file=F,line=L,col=C::message`` (``::warning`` likewise)."""
    return "\n".join(
        f"::{p['severity']} file={_gh_property(str(p['file']))},line={p['line']},col={p['column']}::"
        f"{_gh_data(str(p['message']))}"
        for p in problems
    )


def character_columns(problems: Sequence[Mapping[str, Any]], sources: Mapping[str, bytes]) -> list[dict[str, Any]]:
    """The problems with each column counted in characters of its line, as GitHub counts annotation columns
    (derptool's columns, like Go's hujson, count bytes). A problem whose file or line is unknown is kept."""
    lines: dict[str, list[bytes]] = {}
    out = []
    for p in problems:
        q = dict(p)
        src = sources.get(str(p["file"]))
        line, col = p.get("line"), p.get("column")
        if src is not None and isinstance(line, int) and isinstance(col, int) and line >= 1 and col > 1:
            text = lines.setdefault(str(p["file"]), src.split(b"\n"))
            if line <= len(text):
                q["column"] = len(text[line - 1][: col - 1].decode("utf-8", "replace")) + 1
        out.append(q)
    return out


def problems_summary(problems: Sequence[Mapping[str, Any]], files: int) -> str:
    """``2 errors, 1 warning in 3 files`` (or ``no problems in 3 files``)."""
    errors = sum(1 for p in problems if p["severity"] == "error")
    warnings = len(problems) - errors
    where = f"in {files} file{'s' if files != 1 else ''}"
    if not problems:
        return f"no problems {where}"
    parts = [f"{errors} error{'s' if errors != 1 else ''}"] if errors else []
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return f"{', '.join(parts)} {where}"
