"""``derptool check``: does a (self-hosted) DERP server really work?"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from derptool.cli._common import CaFileOption, MapOption, app, handle_errors, warn
from derptool.cli._output import table, to_json

if TYPE_CHECKING:
    from derptool.net.check import CheckReport


class CheckFormat(StrEnum):
    """Output formats of ``derptool check``."""

    table = "table"
    json = "json"


@app.command("check")
@handle_errors
def check_command(
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET",
            help="A host name or IP (optionally host:port), an https:// URL, or a region selector of the map "
            "(ID, code, country, continent; every node of the selected regions is checked).",
            show_default=False,
        ),
    ],
    map_spec: MapOption = "default",
    stun_port: Annotated[
        int | None,
        typer.Option(
            "--stun-port", metavar="PORT", help="UDP STUN port (default: the map's, else 3478).", min=1, max=65535
        ),
    ] = None,
    derp_port: Annotated[
        int | None,
        typer.Option(
            "--derp-port",
            metavar="PORT",
            help="TCP port of DERP over HTTPS (default: the map's or the URL's, else 443).",
            min=1,
            max=65535,
        ),
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Do not verify the certificate chain (like InsecureForTests).")
    ] = False,
    ca_file: CaFileOption = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", "-t", metavar="SECONDS", help="Seconds to wait for each network step.", min=0.1, max=120
        ),
    ] = 5.0,
    fmt: Annotated[CheckFormat, typer.Option("--format", "-f", help="Output format.")] = CheckFormat.table,
) -> None:
    """Check a DERP server: DNS, STUN, TLS certificate, HTTPS endpoints and the DERP handshake.

    Exit status: 0 every check passed (or was skipped), 1 a check failed, 2 bad input, 3 the map could
    not be had.
    """
    from derptool.net import check

    node = check.parse_target(target, stun_port=stun_port, derp_port=derp_port)
    if node is not None:
        targets = [node]
    else:
        from derptool.derpmap.geo import resolve
        from derptool.derpmap.sources import load_map

        loaded = load_map(map_spec, notice=warn)
        res = resolve([target], loaded.derp_map)
        for note in res.notes:
            warn(note)
        targets = check.targets_from_map(loaded.derp_map, res.region_ids, stun_port=stun_port, derp_port=derp_port)
        if not targets:
            from derptool.errors import UsageError

            raise UsageError(f"the regions selected by {target!r} have no nodes to check")
    report = check.run(target, targets, timeout=timeout, ca_file=ca_file, insecure=insecure)
    for note in report.notes:
        warn(note)
    typer.echo(to_json(report.to_data()) if fmt is CheckFormat.json else check_text(report))
    if not report.ok:
        raise typer.Exit(1)


def check_text(report: CheckReport) -> str:
    """``derptool check`` as text: one table per node (check, status, detail) and a verdict line."""
    out: list[str] = []
    for node in report.nodes:
        t = node.target
        where = t.host + (f" ({node.address})" if node.address else "")
        out.append(f"{t.node}: {where}" if t.node else where)
        out.append(table([[c.name, c.status.upper(), c.detail] for c in node.checks], ["CHECK", "STATUS", "DETAIL"]))
        if node.public_key:
            out.append(f"server public key: {node.public_key}")
        out.append("")
    counts = report.counts
    verdict = "all checks passed" if report.ok else "some checks FAILED"
    out.append(f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")
    return "\n".join(out)
