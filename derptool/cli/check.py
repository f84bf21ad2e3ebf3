"""``derptool check``: does a (self-hosted) DERP server really work?"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from derptool.cli._app import app
from derptool.cli._errors import handle_errors, warn
from derptool.cli._options import CaFileOption, MapOption, parse_duration, timeout_option
from derptool.cli._output import table, to_json
from derptool.errors import InputError, UsageError

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
    timeout: Annotated[float, timeout_option("Time to wait for each network step.", high=120)] = 5.0,
    fmt: Annotated[CheckFormat, typer.Option("--format", "-f", help="Output format.")] = CheckFormat.table,
    relay: Annotated[
        bool,
        typer.Option(
            "--relay",
            help="Also relay packets between two clients through each node (round trip, loss), "
            "and across the mesh between the nodes of a region.",
        ),
    ] = False,
    mesh_key_file: Annotated[
        Path | None,
        typer.Option(
            "--mesh-key-file",
            metavar="FILE",
            show_default=False,
            help="derper's mesh key (--mesh-psk-file): lets the probes past a server that verifies clients.",
        ),
    ] = None,
    warn_days: Annotated[
        float,
        typer.Option(
            "--warn-days", metavar="DAYS", help="Fail when the certificate expires within this many days.", min=0
        ),
    ] = 14,
    every: Annotated[
        str | None,
        typer.Option("--every", metavar="DURATION", show_default=False, help="Repeat at this interval (e.g. 60s)."),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            metavar="ADDR:PORT",
            show_default=False,
            help="Serve Prometheus metrics on http://ADDR:PORT/metrics (and /healthz) while repeating "
            "(every 60s unless --every).",
        ),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option(
            "--count", metavar="N", show_default=False, help="With --every or --listen: stop after N runs.", min=1
        ),
    ] = None,
) -> None:
    """Check a DERP server: DNS, STUN, TLS certificate, HTTPS endpoints and the DERP handshake, per address family.

    Exit status: 0 every check passed (or was skipped), 1 a check failed, 2 bad input, 3 the map could
    not be had. Repeating (--every, --listen), the status is that of the last run.
    """
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.net import check
    from derptool.net.exporter import parse_listen

    interval = parse_duration(every, "--every") if every is not None else None
    address = parse_listen(listen) if listen is not None else None
    if address is not None and interval is None:
        interval = 60.0
    mesh_key = _read_mesh_key(mesh_key_file) if mesh_key_file is not None else None
    node = check.parse_target(target, stun_port=stun_port, derp_port=derp_port)
    if node is not None:
        targets = [node]
    else:
        # heavy, and needed only when the target is a region selector
        from derptool.derpmap.geo import resolve
        from derptool.derpmap.sources import load_map

        loaded = load_map(map_spec, notice=warn)
        res = resolve([target], loaded.derp_map)
        for note in res.notes:
            warn(note)
        targets = check.targets_from_map(loaded.derp_map, res.region_ids, stun_port=stun_port, derp_port=derp_port)
        if not targets:
            raise UsageError(f"the regions selected by {target!r} have no nodes to check")
    collector = exporter = None
    if address is not None and interval is not None:
        # heavy, and needed only with --listen
        from derptool.net.check.exporter import CheckCollector, exposition
        from derptool.net.exporter import Exporter

        collector = CheckCollector()
        exporter = Exporter(*address, every=interval)
    runs = 0
    try:
        while True:
            started = time.monotonic()
            report = check.run(
                target,
                targets,
                timeout=timeout,
                ca_file=ca_file,
                insecure=insecure,
                warn_days=warn_days,
                relay=relay,
                mesh_key=mesh_key,
            )
            if collector is not None and exporter is not None:
                collector.update(report)
                exporter.publish(exposition(collector))
            for note in report.notes:
                warn(note)
            typer.echo(to_json(report.to_data()) if fmt is CheckFormat.json else check_text(report))
            runs += 1
            if interval is None or (count is not None and runs >= count):
                break
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        if exporter is not None:
            exporter.close()
    if not report.ok:
        raise typer.Exit(1)


def _read_mesh_key(path: Path) -> str:
    """The mesh key in *path*: 64 hex digits (whitespace trimmed), as derper reads --mesh-psk-file."""
    from derptool.fileio import read_file

    data = read_file(path, limit=MESH_KEY_MAX_BYTES, raw=True).data
    try:
        key = data.decode("ascii").strip()
    except UnicodeError:
        key = ""
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise InputError(f"{path}: a mesh key is 64 lower-case hex digits (derper's --mesh-psk-file)")
    return key


MESH_KEY_MAX_BYTES = 4096
"""Largest mesh key file read: the key is 64 hex digits."""


def check_text(report: CheckReport) -> str:
    """``derptool check`` as text: one table per node and address family, the mesh probes, a verdict line."""
    out: list[str] = []
    for node in report.nodes:
        t = node.target
        where = t.host + (f" ({node.address})" if node.address else "")
        if node.family:
            where += f" IPv{node.family}"
        out.append(f"{t.node}: {where}" if t.node else where)
        out.append(table([[c.name, c.status.upper(), c.detail] for c in node.checks], ["CHECK", "STATUS", "DETAIL"]))
        if node.public_key:
            out.append(f"server public key: {node.public_key}")
        out.append("")
    if report.mesh:
        rows = []
        for m in report.mesh:
            detail = m.error or (
                f"{m.received}/{m.sent} relayed, round trip {m.rtt_ms:.2f} ms"
                if m.rtt_ms is not None
                else f"{m.received}/{m.sent} relayed"
            )
            rows.append([m.node_a, m.node_b or "", "PASS" if m.ok else "FAIL", detail])
        out.append("mesh (a packet sent via one node reaches a client on the other):")
        out.append(table(rows, ["FROM", "TO", "STATUS", "DETAIL"]))
        out.append("")
    counts = report.counts
    mesh_failed = sum(1 for m in report.mesh if not m.ok)
    verdict = "all checks passed" if report.ok else "some checks FAILED"
    extra = f", {mesh_failed} mesh probe(s) failed" if mesh_failed else ""
    out.append(f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped{extra}")
    return "\n".join(out)
