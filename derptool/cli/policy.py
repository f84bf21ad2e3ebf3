"""``derptool policy``: what a policy does in a tailnet (compile, explain, egress)."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from derptool.cli._app import app
from derptool.cli._errors import handle_errors
from derptool.cli._output import table, to_json
from derptool.errors import UsageError

if TYPE_CHECKING:
    from derptool.policy.engine.compile import Compiled
    from derptool.policy.engine.source import PolicySource

policy_app = typer.Typer(
    name="policy",
    help="What a policy does in a tailnet: each node's packet filter, SSH policy and peers; who can reach what.",
    no_args_is_help=True,
)
app.add_typer(policy_app, name="policy")


class Format(StrEnum):
    """Output formats of the policy commands."""

    table = "table"
    json = "json"


PolicyArg = Annotated[str, typer.Argument(metavar="POLICY", help="Policy file (HuJSON or JSON); '-' is stdin.")]
TailnetOption = Annotated[
    str,
    typer.Option(
        "--tailnet",
        "-t",
        metavar="FILE",
        help="Tailnet file (users and nodes, JSON or HuJSON) or `tailscale status --json` output.",
    ),
]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="table (default) or json.")]
NodeOption = Annotated[
    list[str] | None, typer.Option("--node", "-n", metavar="NAME", help="Only this node (repeatable).")
]


def _load(policy: str, tailnet: str) -> tuple[PolicySource, Compiled]:
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.policy.engine import compile_policy, load_tailnet
    from derptool.policy.engine.source import load_policy

    if policy == "-" and tailnet == "-":
        raise UsageError("only one of POLICY and --tailnet can be '-' (stdin)")
    source = load_policy(policy)
    return source, compile_policy(source.data, load_tailnet(tailnet))


def _check_nodes(compiled: Compiled, names: list[str] | None) -> list[str] | None:
    for name in names or []:
        if compiled.tailnet.node(name) is None:
            known = ", ".join(n.name for n in compiled.tailnet.nodes[:8])
            more = ", ..." if len(compiled.tailnet.nodes) > 8 else ""
            raise UsageError(f"--node {name!r} is not in the tailnet (nodes: {known}{more})")
    return [compiled.node(n).name for n in names] if names else None


@policy_app.command("compile")
@handle_errors
def compile_command(
    policy: PolicyArg, tailnet: TailnetOption, node: NodeOption = None, fmt: FormatOption = Format.table
) -> None:
    """Compile POLICY for a tailnet: each node's packet filter, SSH policy and peers, as Tailscale sends them.

    JSON: {"nodes": {NAME: {"packet_filter_rules", "ssh_policy", "peers"}}} in Tailscale's shapes.
    """
    _, compiled = _load(policy, tailnet)
    names = _check_nodes(compiled, node)
    doc = compiled.to_json(names)
    if fmt is Format.json:
        typer.echo(to_json(doc))
        return
    typer.echo(compile_table(doc))


def compile_table(doc: dict[str, Any]) -> str:
    """One block per node: who may reach it on which ports, SSH rules, and the peers it sees."""
    blocks = []
    for name, node in doc["nodes"].items():
        rows = []
        for rule in node["packet_filter_rules"]:
            src = ", ".join(rule["SrcIPs"][:4]) + (f" (+{len(rule['SrcIPs']) - 4})" if len(rule["SrcIPs"]) > 4 else "")
            if "CapGrant" in rule:
                dst = "; ".join(f"{', '.join(g['Dsts'])} caps {', '.join(g['CapMap'])}" for g in rule["CapGrant"])
                rows.append([src, dst, "app"])
                continue
            ports = ", ".join(f"{p['IP']}:{_ports(p['Ports'])}" for p in rule["DstPorts"][:6])
            if len(rule["DstPorts"]) > 6:
                ports += f" (+{len(rule['DstPorts']) - 6})"
            rows.append([src, ports, ",".join(str(p) for p in rule.get("IPProto", [])) or "tcp,udp,icmp"])
        lines = [f"== {name}", table(rows, ["from", "to", "proto"]) if rows else "no inbound traffic allowed"]
        ssh = node["ssh_policy"]["rules"]
        if ssh:
            lines.append(
                f"ssh: {len(ssh)} rule(s): "
                + "; ".join(
                    f"{len(r['principals'])} source address(es) as "
                    f"{', '.join(u for u, v in r['sshUsers'].items() if v) or '(none)'}"
                    f" ({'check' if 'holdAndDelegate' in r['action'] else 'accept'})"
                    for r in ssh
                )
            )
        peers = node["peers"]
        routes = [f"{p['name']}: {', '.join(p['primary_routes'])}" for p in peers if p["primary_routes"]]
        lines.append(f"peers ({len(peers)}): {', '.join(p['name'] for p in peers) or '(none)'}")
        if routes:
            lines.append("routes: " + "; ".join(routes))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _ports(p: dict[str, int]) -> str:
    if (p["First"], p["Last"]) == (0, 65535):
        return "*"
    return str(p["First"]) if p["First"] == p["Last"] else f"{p['First']}-{p['Last']}"


@policy_app.command("explain")
@handle_errors
def explain_command(
    policy: PolicyArg,
    tailnet: TailnetOption,
    src: Annotated[str, typer.Option("--src", metavar="NODE|USER|IP", help="Source: node, user, tag or address.")],
    dst: Annotated[
        str, typer.Option("--dst", metavar="HOST:PORT", help="Destination host (node, alias, address) and port.")
    ],
    proto: Annotated[str, typer.Option("--proto", "-p", metavar="P", help="Protocol name or number.")] = "tcp",
    fmt: FormatOption = Format.table,
) -> None:
    """Is SRC allowed to reach DST? Names the rules (file:line) that allow it. Exit 0 allowed, 1 denied."""
    from derptool.policy.engine.explain import explain  # heavy: imported at run time, not for --help

    source, compiled = _load(policy, tailnet)
    answer = explain(compiled, src, dst, proto)
    if fmt is Format.json:
        typer.echo(to_json(answer.to_json(source)))
    else:
        typer.echo(f"{src} -> {dst} ({proto}): {'allowed' if answer.allowed else 'denied'}")
        for pair in answer.pairs:
            if pair.allowed:
                how = "allowed by " + ", ".join(source.where(r) for r in pair.rules)
            else:
                how = "denied: no rule allows it"
            typer.echo(f"  {pair.src} -> {pair.dst}: {how}")
    raise typer.Exit(0 if answer.allowed else 1)


@policy_app.command("egress")
@handle_errors
def egress_command(
    policy: PolicyArg,
    tailnet: TailnetOption,
    node: NodeOption = None,
    require_via: Annotated[
        str | None,
        typer.Option(
            "--require-via", metavar="TAG", help="Exit 1 when a node may leave through an exit node without TAG."
        ),
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Per node, the exit nodes and subnet routes its traffic may use (the geofence of internet traffic)."""
    from derptool.policy.engine.egress import egress, via_violations  # heavy: imported at run time, not for --help

    if require_via is not None and not require_via.startswith("tag:"):
        raise UsageError(f"--require-via {require_via!r}: give a tag, e.g. tag:exit-eu")
    _, compiled = _load(policy, tailnet)
    report = egress(compiled, _check_nodes(compiled, node))
    bad = via_violations(report, require_via) if require_via else []
    if fmt is Format.json:
        doc: dict[str, Any] = {"nodes": [e.to_json() for e in report]}
        if require_via:
            doc["require_via"] = require_via
            doc["violations"] = [{"node": n.name, "exit_node": x.name} for n, x in bad]
        typer.echo(to_json(doc))
    else:
        rows = [
            [
                e.node.name,
                ", ".join(x.name for x in e.exit_nodes) or "-",
                ", ".join(f"{r} via {n.name}" for r, n in e.subnet_routes) or "-",
            ]
            for e in report
        ]
        typer.echo(table(rows, ["node", "exit nodes", "subnet routes"]))
    for n, x in bad:
        print(f"derptool: {n.name} may leave through exit node {x.name}, which lacks {require_via}", file=sys.stderr)
    raise typer.Exit(1 if bad else 0)


__all__ = ["compile_table", "policy_app"]
