"""``derptool policy``: what a policy does in a tailnet (compile, explain, egress) and what a change does (diff)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from derptool._gc import collector_paused
from derptool.cli._app import app
from derptool.cli._errors import handle_errors, warn
from derptool.cli._options import MapOption, RefreshOption
from derptool.cli._output import WideOption, fit_list, table, to_json
from derptool.cli._report import HtmlOption, check_page_options, emit_page
from derptool.errors import UsageError

if TYPE_CHECKING:
    from derptool.policy.engine.compile import Compiled
    from derptool.policy.engine.source import PolicySource
    from derptool.report.page import Page

policy_app = typer.Typer(
    name="policy",
    help="What a policy does in a tailnet: each node's packet filter, SSH policy and peers; who can reach what."
    "\n\nExit status: 0 done; 1 the check found a problem (an invalid policy, a denied or unwanted path: see "
    "each command); 2 a bad option or a file that cannot be read.",
    no_args_is_help=True,
)
app.add_typer(policy_app, name="policy")


class Format(StrEnum):
    """Output formats of the policy commands."""

    table = "table"
    json = "json"


PolicyArg = Annotated[str, typer.Argument(metavar="POLICY", help="Policy file (HuJSON or JSON); '-' is stdin.")]
TailnetOption = Annotated[
    list[str],
    typer.Option(
        "--tailnet",
        "-t",
        metavar="FILE",
        help="The tailnet: derptool's tailnet file, `tailscale status --json`, the API's device list, or "
        "headscale's `nodes list` and `users list --output json` (give --tailnet twice, or a directory "
        "holding both).",
    ),
]
ControlOption = Annotated[
    str,
    typer.Option(
        "--control",
        metavar="NAME",
        help="Whose control plane to imitate where they differ: tailscale (default) or headscale.",
    ),
]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="table (default) or json.")]
NodeOption = Annotated[
    list[str] | None, typer.Option("--node", "-n", metavar="NAME", help="Only this node (repeatable).")
]


def _load(
    policy: str,
    tailnet: list[str],
    *,
    control_url: str | None = None,
    validate: bool = False,
    control: str = "tailscale",
) -> tuple[PolicySource, Compiled]:
    """Read and compile; with *validate*, a policy ``derptool validate`` rejects is refused (exit 1)."""
    # heavy: imported when the command runs, so that --help stays fast
    from derptool.policy.engine import compile_policy, import_tailnet
    from derptool.policy.engine.semantics import semantics_for
    from derptool.policy.engine.source import load_policy

    semantics = semantics_for(control)
    if policy == "-" and "-" in tailnet:
        raise UsageError("only one of POLICY and --tailnet can be '-' (stdin)")
    if control_url is not None:
        from derptool.policy.engine.control import check_control_url

        try:
            control_url = check_control_url(control_url)
        except ValueError as err:
            raise UsageError(f"--control-url: {err}") from None
    with collector_paused():
        source = load_policy(policy)
        imported = import_tailnet(tailnet)
        for note in imported.notes:
            print(f"derptool: note: {note}", file=sys.stderr)
        net = imported.tailnet
        if validate:
            _refuse_invalid(source, net)
        return source, compile_policy(source.data, net, control_url=control_url, semantics=semantics)


def _refuse_invalid(source: PolicySource, net: Any) -> None:
    """Exit 1 with validate's errors (``file:line:col: error: ...``) when the policy is invalid or a test
    fails in *net*."""
    from derptool.cli.validate import problems_text
    from derptool.policy import validate_bytes
    from derptool.policy.validate import count_tests

    has_tests = count_tests(source.data) > 0
    errors = [p.to_dict() for p in validate_bytes(source.src, source.file, net if has_tests else None)]
    errors = [p for p in errors if p["severity"] == "error"]
    if errors:
        print(problems_text(errors), file=sys.stderr)
        print(
            f"derptool: error: {source.file} is not a valid policy ({len(errors)} error"
            f"{'s' if len(errors) != 1 else ''}): nothing compiled; --no-validate compiles it anyway",
            file=sys.stderr,
        )
        raise typer.Exit(1)


def _check_nodes(compiled: Compiled, names: list[str] | None) -> list[str] | None:
    for name in names or []:
        if compiled.tailnet.node(name) is None:
            known = ", ".join(n.name for n in compiled.tailnet.nodes[:8])
            more = ", ..." if len(compiled.tailnet.nodes) > 8 else ""
            raise UsageError(f"--node {name!r} is not in the tailnet (nodes: {known}{more})")
    return [compiled.node(n).name for n in names] if names else None


class CompileFormat(StrEnum):
    """Output formats of ``derptool policy compile``."""

    table = "table"
    json = "json"
    json_line = "json-line"


ControlUrlOption = Annotated[
    str | None,
    typer.Option(
        "--control-url",
        metavar="URL",
        help="Control server that SSH check actions point at (default: the tailnet file's control_url, else "
        "https://login.tailscale.com).",
    ),
]


@policy_app.command("compile")
@handle_errors
def compile_command(
    policy: PolicyArg,
    tailnet: TailnetOption,
    node: NodeOption = None,
    fmt: Annotated[
        CompileFormat,
        typer.Option("--format", "-f", help="table (default), json (one document) or json-line (one node a line)."),
    ] = CompileFormat.table,
    pretty: Annotated[bool, typer.Option("--pretty", help="Indent --format json (slower on big tailnets).")] = False,
    no_peers: Annotated[bool, typer.Option("--no-peers", help="Leave each node's peers out (the n² part).")] = False,
    control_url: ControlUrlOption = None,
    control: ControlOption = "tailscale",
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="Compile even a policy that derptool validate rejects.")
    ] = False,
    wide: WideOption = False,
) -> None:
    """Compile POLICY for a tailnet: each node's packet filter, SSH policy and peers, as Tailscale sends them.

    JSON: {"nodes": {NAME: {"packet_filter_rules", "ssh_policy", "peers"}}} in Tailscale's shapes (compact
    unless --pretty); json-line: one {"node": NAME, ...} object per line, written as each node is computed.
    A policy that derptool validate rejects is not compiled (exit 1) unless --no-validate. --control headscale
    compiles as headscale's policy engine does where it differs from Tailscale's.

    Exit status: 0 compiled; 1 the policy is not valid (unless --no-validate); 2 a bad option or a policy or
    tailnet file that cannot be read.
    """
    from derptool.policy.engine.stream import encode, node_texts

    with collector_paused():
        _, compiled = _load(policy, tailnet, control_url=control_url, validate=not no_validate, control=control)
        names = _check_nodes(compiled, node)
        nodes = [compiled.node(n) for n in names] if names else None
        texts = node_texts(compiled, nodes, peers=not no_peers)
        out = _Chunks()
        write = out.write
        if fmt is CompileFormat.json_line:
            for name, text in texts:
                write(f'{{"node":{encode(name)},{text[1:]}\n')
        elif fmt is CompileFormat.json and pretty:
            write('{\n  "nodes": {')
            count = 0
            for name, text in texts:
                body = json.dumps(json.loads(text), indent=2, ensure_ascii=False).replace("\n", "\n    ")
                write(f"{',' if count else ''}\n    {json.dumps(name, ensure_ascii=False)}: {body}")
                count += 1
            write("\n  }\n}\n" if count else "}\n}\n")
        elif fmt is CompileFormat.json:
            write('{"nodes":{')
            for k, (name, text) in enumerate(texts):
                write(f"{',' if k else ''}{encode(name)}:{text}")
            write("}}\n")
        else:
            for k, (name, text) in enumerate(texts):
                write(("\n\n" if k else "") + compile_table({"nodes": {name: json.loads(text)}}, peers=not no_peers))
            write("\n")
        out.flush()


class _Chunks:
    """Text written to stdout in chunks of about a megabyte (one system call each, not one per node)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size >= 1 << 20:
            self.flush()

    def flush(self) -> None:
        sys.stdout.flush()
        sys.stdout.buffer.write("".join(self.parts).encode("utf-8"))
        sys.stdout.buffer.flush()
        self.parts.clear()
        self.size = 0


def compile_table(doc: dict[str, Any], *, peers: bool = True) -> str:
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
        if peers:
            seen = node["peers"]
            routes = [f"{p['name']}: {', '.join(p['primary_routes'])}" for p in seen if p["primary_routes"]]
            lines.append(fit_list(f"peers ({len(seen)}): ", [p["name"] for p in seen] or ["(none)"]))
            if routes:
                lines.append(fit_list("routes: ", routes, "; "))
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
    control: ControlOption = "tailscale",
) -> None:
    """Is SRC allowed to reach DST? Names the rules (file:line) that allow it.

    Exit status: 0 allowed, 1 denied, 2 a bad option or a policy or tailnet file that cannot be read.
    """
    from derptool.policy.engine.explain import explain  # heavy: imported at run time, not for --help

    source, compiled = _load(policy, tailnet, control=control)
    answer = explain(compiled, src, dst, proto)
    if fmt is Format.json:
        typer.echo(to_json(answer.to_json(source)))
    else:
        state = "allowed" if answer.allowed else "denied"
        if not answer.allowed and answer.depends_on:
            state = "depends on posture attributes the tailnet file lacks: " + ", ".join(answer.depends_on)
        typer.echo(f"{src} -> {dst} ({proto}): {state}")
        for pair in answer.pairs:
            if pair.allowed:
                how = "allowed by " + ", ".join(source.where(r) for r in pair.rules)
            elif pair.depends:
                how = "allowed by " + "; ".join(
                    f"{source.where(r)} if the source's {', '.join(a)} meet its posture" for r, a in pair.depends
                )
            else:
                how = "denied: no rule allows it"
            typer.echo(f"  {pair.src} -> {pair.dst}: {how}")
            for r, caps in pair.caps:
                typer.echo(f"    app capabilities from {source.where(r)}: {', '.join(caps)}")
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
    control: ControlOption = "tailscale",
    wide: WideOption = False,
) -> None:
    """Per node, the exit nodes and subnet routes its traffic may use (the geofence of internet traffic).

    Exit status: 0 listed; 1 with --require-via, a node may leave through an exit node without the tag;
    2 a bad option or a policy or tailnet file that cannot be read.
    """
    from derptool.policy.engine.egress import egress, via_violations  # heavy: imported at run time, not for --help

    if require_via is not None and not require_via.startswith("tag:"):
        raise UsageError(f"--require-via {require_via!r}: give a tag, e.g. tag:exit-eu")
    _, compiled = _load(policy, tailnet, control=control)
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


class DiffFormat(StrEnum):
    """Output formats of ``derptool policy diff``."""

    table = "table"
    json = "json"
    markdown = "markdown"
    github = "github"
    html = "html"
    png = "png"


def _fail_on(value: str | None) -> set[str]:
    from derptool.errors import UsageError
    from derptool.policy.engine.diff import KINDS

    kinds = {k.strip() for k in (value or "").split(",") if k.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown or (value is not None and not kinds):
        bad = unknown[0] if unknown else "(empty)"
        raise UsageError(f"--fail-on {value!r}: unknown kind {bad!r}; use a comma list of {','.join(KINDS)}")
    return kinds


def _validated(src: bytes, name: str, side: str) -> list[str]:
    from derptool.policy import validate_bytes

    return [
        f"{side} {p.file}:{p.line}:{p.column}: {p.message}" for p in validate_bytes(src, name) if p.severity == "error"
    ]


@policy_app.command("diff")
@handle_errors
def diff_command(
    files: Annotated[
        list[str],
        typer.Argument(
            metavar="OLD NEW | POLICY", help="Two policy files; with --git, the one file whose old version git has."
        ),
    ],
    tailnet: TailnetOption,
    git: Annotated[
        str | None,
        typer.Option("--git", metavar="REV", help="Read OLD from git at REV (e.g. origin/main), NEW from POLICY."),
    ] = None,
    fmt: Annotated[
        DiffFormat,
        typer.Option(
            "--format", "-f", help="table (default), json, markdown, github, html or png (a page with the map)."
        ),
    ] = DiffFormat.table,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            metavar="KINDS",
            help="Exit 1 when a named kind of change is present: gained,lost,ssh,egress,capabilities,derp,tests.",
        ),
    ] = None,
    reports: Annotated[
        list[str] | None,
        typer.Option(
            "--reports",
            metavar="DIR|FILE",
            help="Latency reports (as for 'derptool impact'): the cost per site of a DERP change.",
        ),
    ] = None,
    prometheus: Annotated[
        str | None,
        typer.Option("--prometheus", metavar="URL", help="Read the sites' latencies from this Prometheus server."),
    ] = None,
    map_spec: MapOption = "default",
    html: HtmlOption = None,
    refresh: RefreshOption = False,
    wide: WideOption = False,
) -> None:
    """What changes from OLD to NEW on a tailnet, per device: access, SSH, egress, capabilities, DERP, tests.

    Examples: 'derptool policy diff old.hujson policy.hujson -t tailnet.json';
    'derptool policy diff --git origin/main policy.hujson -t tailnet.json --format markdown --fail-on lost,tests'.
    Exit status: 0 ok (no --fail-on kind present); 1 an invalid policy or a --fail-on kind present;
    2 bad options, an unreadable tailnet or git revision; 3 Prometheus unreachable.
    """
    from derptool.cli import _policydiff as out
    from derptool.cli._policydiff import DERPMAP_KEY
    from derptool.errors import UsageError
    from derptool.fileio import read_file
    from derptool.policy.engine import compile_policy, import_tailnet
    from derptool.policy.engine.diff import diff_policies
    from derptool.policy.engine.source import parse_policy
    from derptool.policy.validate import decode

    kinds = _fail_on(fail_on)
    check_page_options(fmt.value, html)
    if git is not None and len(files) != 1:
        raise UsageError("with --git REV give one POLICY file (its version at REV is OLD)")
    if git is None and len(files) != 2:
        raise UsageError("give OLD and NEW policy files (or --git REV POLICY)")
    if "-" in files and "-" in tailnet:
        raise UsageError("only one of the policies and --tailnet can be '-' (stdin)")
    if files.count("-") > 1:
        raise UsageError("only one of OLD and NEW can be '-' (stdin)")
    imported = import_tailnet(tailnet)
    for note in imported.notes:
        print(f"derptool: note: {note}", file=sys.stderr)
    net = imported.tailnet
    if git is not None:
        old_src, old_name = out.read_git(git, files[0])
        new_name = files[0]
        new_src = read_file(new_name).data
    else:
        old_name, new_name = files
        old_src, new_src = read_file(old_name).data, read_file(new_name).data
    problems = _validated(old_src, old_name, "OLD") + _validated(new_src, new_name, "NEW")
    if problems:
        for p in problems:
            print(f"derptool: error: {p}", file=sys.stderr)
        print(
            f"derptool: error: {len(problems)} validation error(s); no diff (fix them, see 'derptool validate')",
            file=sys.stderr,
        )
        raise typer.Exit(1)
    old_source, new_source = parse_policy(old_src, old_name), parse_policy(new_src, new_name)
    old, new = compile_policy(old_source.data, net), compile_policy(new_source.data, net)
    site_reports = _site_reports(reports, prometheus) if reports or prometheus else None

    def base() -> Any:
        from derptool.cli._inputs import load_cli_map

        return load_cli_map(map_spec).derp_map

    raw = tuple(decode(src) if DERPMAP_KEY.search(src) else {} for src in (old_src, new_src))
    page = html is not None or fmt in (DiffFormat.html, DiffFormat.png)
    diff = diff_policies(old, new, base_map=base, maps=site_reports is not None or page, raw=(raw[0], raw[1]))
    if site_reports is not None and diff.derp.old_map is not None and diff.derp.new_map is not None:
        from derptool.fleet import assess_change

        diff.derp.impact = assess_change(site_reports, diff.derp.old_map, diff.derp.new_map)
        for note in diff.derp.impact.notes:
            warn(note)
    maps = [m for m in (diff.derp.new_map, diff.derp.old_map) if m is not None]

    def page_of_diff() -> Page:
        from derptool.report.policy_diff_page import policy_diff_page  # lazy: the page draws with shapely

        return policy_diff_page(diff.to_json(), maps=maps, old=old_name, new=new_name)

    if emit_page(fmt.value, html, page_of_diff):
        pass
    elif fmt is DiffFormat.json:
        typer.echo(to_json(diff.to_json()))
    else:
        parts = out.sections(diff, out.Located(old_source, new_source), old, new)
        if fmt is DiffFormat.markdown:
            typer.echo(out.render_markdown(diff, parts, old_name, new_name))
        elif fmt is DiffFormat.github:
            typer.echo(out.render_github(diff, parts, new_name))
        else:
            typer.echo(out.render_table(diff, parts))
    raise typer.Exit(1 if kinds & diff.present else 0)


def _site_reports(paths: list[str] | None, prometheus: str | None) -> list[Any]:
    from derptool.errors import InputError
    from derptool.fleet.files import load_reports

    loaded = load_reports(list(paths or []))
    for problem in loaded.problems:
        print(f"derptool: error: {problem}", file=sys.stderr)
    for note in loaded.notes:
        warn(note)
    found = list(loaded.reports)
    if prometheus is not None:
        from derptool.fleet.prometheus import build_query, query_prometheus

        result = query_prometheus(prometheus, build_query("instance", None, 0.9))
        for note in result.notes:
            warn(note)
        found += [r for r in result.reports if r.site not in {x.site for x in found}]
    if not found:
        raise InputError("--reports/--prometheus: no usable latency report")
    return found


__all__ = ["compile_table", "policy_app"]
