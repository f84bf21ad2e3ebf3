"""``derptool grants``: geofenced egress through tagged exit nodes."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from derptool import __version__
from derptool.cli._app import app
from derptool.cli._apply import require_apply, run_apply
from derptool.cli._errors import handle_errors, warn


class GrantsFormat(StrEnum):
    """Output formats of ``derptool grants``."""

    hujson = "hujson"
    json = "json"


@app.command("grants")
@handle_errors
def grants_command(
    src: Annotated[
        list[str],
        typer.Option(
            "--src",
            metavar="SRC",
            help="Who: users, group:..., tag:..., autogroup:member, * (repeatable or comma list).",
        ),
    ],
    via: Annotated[
        list[str],
        typer.Option("--via", metavar="TAG", help="Exit nodes (or routers) by tag, e.g. tag:exit-eu (repeatable)."),
    ],
    dst: Annotated[
        list[str] | None,
        typer.Option(
            "--dst",
            metavar="DST",
            help="Destinations routed through --via instead of autogroup:internet: CIDRs, "
            "hosts, app-connector tags (repeatable).",
        ),
    ] = None,
    owner: Annotated[
        list[str] | None,
        typer.Option(
            "--owner",
            metavar="OWNER",
            help="tagOwners for tags the policy does not define yet (default autogroup:admin).",
        ),
    ] = None,
    ip: Annotated[
        list[str] | None, typer.Option("--ip", metavar="IP", help="Ports/protocols the grant allows (default '*').")
    ] = None,
    fmt: Annotated[GrantsFormat, typer.Option("--format", "-f", help="Output format.")] = GrantsFormat.hujson,
    apply: Annotated[
        Path | None,
        typer.Option(
            "--apply",
            metavar="FILE",
            help="Merge into this policy file in place (comments kept, atomic write).",
            dir_okay=False,
        ),
    ] = None,
    diff: Annotated[bool, typer.Option("--diff", help="With --apply: print a unified diff, write nothing.")] = False,
) -> None:
    """Grants that send internet traffic of --src only through exit nodes tagged --via (geofenced egress).

    Example: derptool grants --src group:staff-eu --via tag:exit-eu --apply policy.hujson

    Exit status: 0 the fragment was printed or the file written; 1 the file changed on disk while it was
    edited (nothing written); 2 a bad option or a policy file that cannot be read.
    """
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.edit.grants import apply_grants, plan_egress, render_egress_hujson, render_egress_json

    require_apply(apply, diff=diff)
    plan = plan_egress(src, via, dst, owners=owner, ip=ip)
    if apply is not None:
        run_apply(apply, lambda data, name: apply_grants(data, plan, file=name), diff=diff)
        return
    for note in plan.notes:
        warn(note)
    if fmt is GrantsFormat.json:
        typer.echo(render_egress_json(plan), nl=False)
        return
    header = [
        f"derptool {__version__}: grants --src {' '.join(src)} --via {' '.join(via)}",
        "Merge tagOwners and grants into your tailnet policy file (or run again with --apply FILE).",
    ]
    typer.echo(render_egress_hujson(plan, header=header), nl=False)
