"""``derptool diff OLD NEW``: what changed between two DERP maps."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer

from derptool.cli._app import app
from derptool.cli._errors import handle_errors, warn
from derptool.cli._output import WideOption, table, to_json
from derptool.errors import UsageError


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
    wide: WideOption = False,
) -> None:
    """Compare two DERP maps: regions and nodes added or removed, changed addresses, ports and flags.

    Exit status: 0 when the maps are the same, 1 when they differ, 2 a map that cannot be read, 3 when
    'default' was named and the live map cannot be fetched (an older cached or bundled copy would not answer
    the question; name 'snapshot' to compare with the bundled copy on purpose).
    Example: 'derptool diff saved-map.json default' (did the public map change since my allow-list?).
    """
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.derpmap.diff import diff_maps
    from derptool.derpmap.sources import load_map

    if old == "-" and new == "-":
        raise UsageError("only one of OLD and NEW can be '-' (stdin)")
    old_map = load_map(old, notice=warn, require_live=True)
    new_map = load_map(new, notice=warn, require_live=True)
    diff = diff_maps(old_map.derp_map, new_map.derp_map)
    if fmt is DiffFormat.json:
        data = {"old": old_map.description, "new": new_map.description, **diff.to_data()}
        typer.echo(to_json(data))
    elif diff.same:
        typer.echo(f"no differences ({old_map.description} and {new_map.description})")
    else:
        typer.echo(map_diff_table(diff.rows()))
        typer.echo(f"\n{map_diff_summary(diff.to_data())} ({old_map.description} -> {new_map.description})")
    if not diff.same:
        raise typer.Exit(1)


def map_diff_table(rows: Sequence[Sequence[str]]) -> str:
    """``derptool diff`` rows (change, region, node, field, old, new) as a table."""
    return table(rows, ["CHANGE", "REGION", "NODE", "FIELD", "OLD", "NEW"])


def map_diff_summary(data: dict[str, Any]) -> str:
    """One line counting what changed; *data* is :meth:`derptool.derpmap.diff.MapDiff.to_data`."""
    nodes_added = sum(len(r["nodes_added"]) for r in data["regions_changed"])
    nodes_removed = sum(len(r["nodes_removed"]) for r in data["regions_changed"])
    nodes_changed = sum(len(r["nodes_changed"]) for r in data["regions_changed"])
    parts = [
        f"{len(data['regions_added'])} regions added",
        f"{len(data['regions_removed'])} removed",
        f"{len(data['regions_changed'])} changed",
        f"nodes: {nodes_added} added, {nodes_removed} removed, {nodes_changed} changed",
    ]
    return ", ".join(parts)
