"""``derptool diff OLD NEW``: what changed between two DERP maps."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from derptool.cli._common import app, handle_errors, warn


class DiffFormat(StrEnum):
    """Output formats of ``derptool diff``."""

    table = "table"
    json = "json"


@app.command("diff")
@handle_errors
def diff_command(
    old: Annotated[
        str, typer.Argument(metavar="OLD", help="The old map: any --map value (file, URL, 'snapshot', 'default', '-').")
    ],
    new: Annotated[str, typer.Argument(metavar="NEW", help="The new map: any --map value.")],
    fmt: Annotated[DiffFormat, typer.Option("--format", "-f", help="Output format.")] = DiffFormat.table,
) -> None:
    """Compare two DERP maps: regions and nodes added or removed, changed addresses, ports and flags.

    Exit status: 0 when the maps are the same, 1 when they differ.
    Example: 'derptool diff saved-map.json default' (did the public map change since my allow-list?).
    """
    from derptool import render
    from derptool.errors import UsageError
    from derptool.mapdiff import diff_maps
    from derptool.sources import load_map

    if old == "-" and new == "-":
        raise UsageError("only one of OLD and NEW can be '-' (stdin)")
    old_map = load_map(old, notice=warn)
    new_map = load_map(new, notice=warn)
    diff = diff_maps(old_map.derp_map, new_map.derp_map)
    if fmt is DiffFormat.json:
        data = {"old": old_map.description, "new": new_map.description, **diff.to_data()}
        typer.echo(render.to_json(data))
    elif diff.same:
        typer.echo(f"no differences ({old_map.description} and {new_map.description})")
    else:
        typer.echo(render.map_diff_table(diff.rows()))
        typer.echo(f"\n{render.map_diff_summary(diff.to_data())} ({old_map.description} -> {new_map.description})")
    if not diff.same:
        raise typer.Exit(1)
