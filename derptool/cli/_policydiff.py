"""``derptool policy diff`` output: grouped rows for people (table, markdown), annotations (github), and the
reading of OLD from git.

Grouping: rows that differ only in protocol merge (``tcp,udp,icmp`` for Tailscale's default set), then rows
with the same destination, protocols and ports merge their sources, then groups with the same sources merge
their destinations. A set of devices that is exactly a group, tag or user of the policy is named by it.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from derptool.cli._output import table
from derptool.errors import InputError, UsageError
from derptool.fileio import MAX_FILE_BYTES
from derptool.policy.engine.addresses import INTERNET, IPSet
from derptool.policy.engine.compile import Compiled
from derptool.policy.engine.diff import AccessRow, PolicyDiff, SSHRow
from derptool.policy.engine.source import PolicySource

GIT_TIMEOUT_S = 30.0
DEFAULT_PROTOS = {"tcp", "udp", "icmp", "icmpv6"}
INTERNET_V4 = INTERNET.minus(IPSet.parse(["::/0"]))
DERPMAP_KEY = re.compile(rb'"derpmap"\s*:', re.IGNORECASE)


# -- reading OLD from git -----------------------------------------------------------------------------------------


def read_git(rev: str, policy: str) -> tuple[bytes, str]:
    """The bytes of *policy* at git revision *rev*, and the name to show (``REV:path``); :class:`InputError`."""
    if not rev or rev.startswith("-") or "\n" in rev:
        raise UsageError(f"--git {rev!r}: give a revision such as HEAD~1 or origin/main")
    if policy == "-":
        raise UsageError("--git reads the old version of a file; POLICY cannot be '-' (stdin)")
    path = Path(policy)
    folder = path.parent if str(path.parent) else Path(".")
    spec = f"{rev}:./{path.name}"
    size = _git(folder, ["cat-file", "-s", spec], rev, policy)
    if not size.strip().isdigit() or int(size) > MAX_FILE_BYTES:
        raise InputError(f"{rev}:{policy}: larger than {MAX_FILE_BYTES} bytes")
    return _git(folder, ["cat-file", "blob", spec], rev, policy), f"{rev}:{policy}"


def _git(folder: Path, args: list[str], rev: str, policy: str) -> bytes:
    """The output of one git command in *folder*; :class:`InputError` naming the revision and file."""
    env = {**os.environ, "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, timeout=GIT_TIMEOUT_S, env=env, check=False
        )
    except FileNotFoundError:
        raise InputError("--git needs the git command, which is not installed (or give OLD and NEW files)") from None
    except subprocess.TimeoutExpired:
        raise InputError(f"--git {rev}: git did not answer within {GIT_TIMEOUT_S:g} s") from None
    except OSError as err:
        raise InputError(f"--git {rev}: cannot run git: {err.strerror or err}") from None
    if done.returncode != 0:
        why = next((line for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()), "")
        raise InputError(
            f"--git {rev}: git cannot read {policy} at that revision ({why.strip() or f'exit {done.returncode}'}); "
            "check the revision and that the file is committed there"
        )
    return done.stdout


# -- naming sets of devices ---------------------------------------------------------------------------------------


class Namer:
    """Names a set of device names by a selector of the policy when it is exactly that selector's devices."""

    def __init__(self, compiled: Compiled) -> None:
        self.names: dict[frozenset[str], str] = {}
        tailnet = compiled.tailnet
        candidates = ["autogroup:member", "autogroup:tagged", *sorted(tailnet.by_tag)]
        groups = compiled.policy.get("groups")
        if isinstance(groups, dict):
            candidates += sorted(str(g) for g in groups)
        candidates += [u.login for u in tailnet.users]
        for sel in candidates:
            nodes = frozenset(n.name for n in compiled.resolver.nodes(sel))
            if len(nodes) > 1:
                self.names.setdefault(nodes, sel)
        everyone = frozenset(n.name for n in tailnet.nodes)
        self.names.setdefault(everyone, "every device")

    def describe(self, labels: Sequence[str], nodes: set[str]) -> str:
        """Devices by selector or by name (a few, then a count), CIDRs merged (the internet by name)."""
        devs = sorted(x for x in labels if x in nodes)
        cidrs = [x for x in labels if x not in nodes]
        parts = []
        if devs:
            named = self.names.get(frozenset(devs))
            if named is not None:
                parts.append(f"{named} ({len(devs)} device{'s' if len(devs) != 1 else ''})")
            elif len(devs) <= 4:
                parts.append(", ".join(devs))
            else:
                parts.append(f"{len(devs)} devices ({', '.join(devs[:3])}, ...)")
        if cidrs:
            merged = IPSet.parse(cidrs)
            if merged == INTERNET:
                parts.append("autogroup:internet")
            elif merged == INTERNET_V4:
                parts.append("autogroup:internet (IPv4)")
            elif merged == INTERNET.minus(INTERNET_V4):
                parts.append("autogroup:internet (IPv6)")
            else:
                texts = merged.prefix_strings_full()
                parts.append(", ".join(texts[:4]) + (f" and {len(texts) - 4} more" if len(texts) > 4 else ""))
        return "; ".join(parts)


# -- grouping -----------------------------------------------------------------------------------------------------


@dataclass
class Group:
    """Rows with the same protocols and ports: their sources and destinations."""

    srcs: Sequence[str]
    dsts: Sequence[str]
    protos: str
    ports: str
    sample: AccessRow


def _proto_label(protos: set[str | int]) -> str:
    names = {str(p) for p in protos}
    if {"tcp", "udp"} <= names and names <= DEFAULT_PROTOS and names & {"icmp", "icmpv6"}:
        return "tcp,udp,icmp"
    order = ["tcp", "udp", "icmp", "icmpv6", "sctp"]
    return ",".join(sorted(names, key=lambda n: (order.index(n) if n in order else 99, n)))


def group_rows(rows: Sequence[AccessRow]) -> list[Group]:
    """Access rows grouped for people (see the module docstring)."""
    protos: dict[tuple[str, str, str], set[str | int]] = {}
    sample: dict[tuple[str, str, str], AccessRow] = {}
    for r in rows:
        protos.setdefault((r.src, r.dst, r.ports), set()).add(r.proto)
        sample.setdefault((r.src, r.dst, r.ports), r)
    by_dst: dict[tuple[str, str, str], list[str]] = {}
    for (src, dst, ports), ps in protos.items():
        by_dst.setdefault((dst, _proto_label(ps), ports), []).append(src)
    by_src: dict[tuple[tuple[str, ...], str, str], list[str]] = {}
    for (dst, label, ports), srcs in by_dst.items():
        by_src.setdefault((tuple(sorted(srcs)), label, ports), []).append(dst)
    out = []
    for (src_key, label, ports), dsts in by_src.items():
        first = sample[(src_key[0], dsts[0], ports)]
        out.append(Group(list(src_key), sorted(dsts), label, ports, first))
    return sorted(out, key=lambda g: (-len(g.srcs) * len(g.dsts), g.dsts, g.srcs, g.protos, g.ports))


# -- locating rules -----------------------------------------------------------------------------------------------


def map_line(old: bytes, new: bytes, line: int) -> int:
    """The line of *new* where line *line* of *old* is (or was, when the change removed it)."""
    a = old.decode("utf-8", "replace").splitlines()
    b = new.decode("utf-8", "replace").splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if i1 <= line - 1 < i2:
            if tag == "equal" or (tag == "replace" and line - 1 - i1 < j2 - j1):
                return j1 + (line - 1 - i1) + 1
            return max(min(j2 if tag == "replace" else j1 + 1, len(b)), 1)
    return max(len(b), 1)


@dataclass
class Located:
    """The sources of both policies, to turn a rule path into ``file:line`` (lines of NEW for annotations)."""

    old: PolicySource
    new: PolicySource

    def where(self, path: Sequence[str | int] | None, *, gained: bool) -> str:
        """``file:line section[i]`` of the rule, in the file it lives in."""
        if path is None:
            return ""
        return (self.new if gained else self.old).where(tuple(path))

    def new_line(self, path: Sequence[str | int] | None, *, gained: bool) -> int | None:
        """The line of NEW to annotate: the rule's own for a gained row, else where the old rule is (or was)."""
        if not path:
            return None
        key = tuple(path[:2])
        if gained:
            return self.new.lines.get(key)
        old_line = self.old.lines.get(key)
        return None if old_line is None else map_line(self.old.src, self.new.src, old_line)


# -- rendering ----------------------------------------------------------------------------------------------------


def summary(diff: PolicyDiff) -> str:
    """One line: how many rows of each kind changed."""
    if diff.empty:
        return "no change in access"
    parts = []
    a = diff.access
    parts.append(f"access: {len(a.gained)} gained, {len(a.lost)} lost" if a.gained or a.lost else "no change in access")
    if diff.ssh_gained or diff.ssh_lost:
        parts.append(f"ssh: {len(diff.ssh_gained)} gained, {len(diff.ssh_lost)} lost")
    if diff.egress_gained or diff.egress_lost:
        parts.append(f"egress: {len(diff.egress_gained)} gained, {len(diff.egress_lost)} lost")
    if diff.caps_gained or diff.caps_lost:
        parts.append(f"capabilities: {len(diff.caps_gained)} gained, {len(diff.caps_lost)} lost")
    d = diff.derp
    if d.changes:
        parts.append(f"derp: {len(d.removed)} removed, {len(d.added)} added, {len(d.changed)} changed")
    if diff.newly_failing or diff.newly_passing:
        parts.append(f"tests: {len(diff.newly_failing)} newly failing, {len(diff.newly_passing)} newly passing")
    return "; ".join(parts)


@dataclass
class Section:
    """One titled block of rows (a table with a header), plus annotations for the github format."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: Sequence[tuple[str, int | None, str]]  # (level, line of NEW, message)


def _note(gained: bool, line: int | None, message: str) -> tuple[str, int | None, str]:
    """A github annotation: a notice for what a change gives, a warning for what it takes."""
    return ("notice" if gained else "warning", line, message)


def sections(diff: PolicyDiff, where: Located, old: Compiled, new: Compiled) -> list[Section]:
    """Every kind of change as a titled table, grouped for people."""
    nodes = {n.name for n in new.tailnet.nodes}
    out: list[Section] = []
    for gained, rows in ((True, diff.access.gained), (False, diff.access.lost)):
        if not rows:
            continue
        namer = Namer(new if gained else old)
        table_rows, notes = [], []
        for g in group_rows(rows):
            origin = diff.origin(g.sample, gained=gained)
            src, dst = namer.describe(g.srcs, nodes), namer.describe(g.dsts, nodes)
            table_rows.append([src, dst, g.protos, g.ports, where.where(origin, gained=gained)])
            verb = "may now reach" if gained else "may no longer reach"
            notes.append(
                _note(gained, where.new_line(origin, gained=gained), f"{src} {verb} {dst} ({g.protos} {g.ports})")
            )
        title = f"Access {'gained' if gained else 'lost'} ({len(rows)} rows)"
        out.append(Section(title, ["from", "to", "proto", "ports", "rule"], table_rows, notes))
    for gained, ssh_rows in ((True, diff.ssh_gained), (False, diff.ssh_lost)):
        if ssh_rows:
            out.append(_ssh_section(diff, ssh_rows, gained, where, Namer(new if gained else old), nodes))
    for gained, e_rows in ((True, diff.egress_gained), (False, diff.egress_lost)):
        if e_rows:
            by: dict[tuple[str, str], list[str]] = {}
            for e in e_rows:
                by.setdefault((e.via, e.route), []).append(e.src)
            namer = Namer(new if gained else old)
            rows_e = [[namer.describe(srcs, nodes), via, route] for (via, route), srcs in sorted(by.items())]
            verb = "may now send" if gained else "may no longer send"
            notes_e = [_note(gained, None, f"{r[0]} {verb} {r[2]} through {r[1]}") for r in rows_e]
            title = f"Egress {'gained' if gained else 'lost'} ({len(e_rows)} rows)"
            out.append(Section(title, ["from", "via", "route"], rows_e, notes_e))
    for gained, c_rows in ((True, diff.caps_gained), (False, diff.caps_lost)):
        if c_rows:
            byc: dict[tuple[str, str, str], list[str]] = {}
            for c in c_rows:
                byc.setdefault((c.capability, c.value, c.dst), []).append(c.src)
            namer = Namer(new if gained else old)
            rows_c = [[namer.describe(s, nodes), dst, cap, value] for (cap, value, dst), s in sorted(byc.items())]
            notes_c = [_note(gained, None, f"{r[0]} {'gains' if gained else 'loses'} {r[2]} on {r[1]}") for r in rows_c]
            title = f"Capabilities {'gained' if gained else 'lost'} ({len(c_rows)} rows)"
            out.append(Section(title, ["from", "on", "capability", "value"], rows_c, notes_c))
    d = diff.derp
    if d.changes:
        rows_d = [
            [what, str(r.id), r.code, r.name, r.place]
            for what, rs in (("removed", d.removed), ("added", d.added), ("changed", d.changed))
            for r in rs
        ]
        found = DERPMAP_KEY.search(where.new.src)
        line = where.new.src.count(b"\n", 0, found.start()) + 1 if found else None
        notes_d = [
            (
                "warning" if r[0] == "removed" else "notice",
                line,
                f"DERP region {r[1]} {r[2]} ({r[3]}{', ' + r[4] if r[4] else ''}) {r[0]}",
            )
            for r in rows_d
        ]
        out.append(Section(f"DERP regions ({len(rows_d)})", ["change", "id", "code", "name", "place"], rows_d, notes_d))
    if d.impact is not None and d.impact.sites:
        rows_s = []
        for s in d.impact.sites:
            after = "none" if s.after is None else f"{s.after.code} {s.after.latency_ms:.1f} ms"
            inc = s.increase_ms
            rows_s.append(
                [
                    s.site,
                    f"{s.before.code} {s.before.latency_ms:.1f} ms",
                    after,
                    "no region left" if inc is None else ("unchanged" if not s.moved else f"{inc:+.1f} ms"),
                ]
            )
        out.append(
            Section(f"Latency per site ({len(rows_s)})", ["site", "home before", "home after", "increase"], rows_s, [])
        )
    for failing, t_rows in ((True, diff.newly_failing), (False, diff.newly_passing)):
        if t_rows:
            rows_t = []
            notes_t = []
            for t in t_rows:
                file = where.new if t.side == "new" else where.old
                line = file.lines.get((t.section, t.index))
                rows_t.append([f"{file.file}:{line} {t.name}" if line else f"{file.file} {t.name}", t.message])
                notes_t.append(("error" if failing else "notice", line if t.side == "new" else None, t.message))
            title = f"Tests newly {'failing' if failing else 'passing'} ({len(t_rows)})"
            out.append(Section(title, ["test", "message"], rows_t, notes_t))
    return out


def _ssh_section(
    diff: PolicyDiff, rows: list[SSHRow], gained: bool, where: Located, namer: Namer, nodes: set[str]
) -> Section:
    by: dict[tuple[str, str, str], list[str]] = {}
    for r in rows:
        by.setdefault((r.dst, r.user, r.action), []).append(r.src)
    by_src: dict[tuple[tuple[str, ...], str, str], list[str]] = {}
    for (dst, user, action), names in by.items():
        by_src.setdefault((tuple(sorted(names)), user, action), []).append(dst)
    table_rows, notes = [], []
    for (srcs, user, action), dsts in sorted(by_src.items(), key=lambda kv: (-len(kv[0][0]) * len(kv[1]), kv[0])):
        sample = SSHRow(srcs[0], dsts[0], user, action)
        origin = diff.origin(sample, gained=gained)
        login = "any other user" if user == "*" else user
        s, d = namer.describe(srcs, nodes), namer.describe(dsts, nodes)
        table_rows.append([s, d, login, action, where.where(origin, gained=gained)])
        verb = "may now" if gained else "may no longer"
        notes.append(
            _note(gained, where.new_line(origin, gained=gained), f"{s} {verb} ssh to {d} as {login} ({action})")
        )
    title = f"SSH {'gained' if gained else 'lost'} ({len(rows)} rows)"
    return Section(title, ["from", "to", "user", "action", "rule"], table_rows, notes)


def render_table(diff: PolicyDiff, parts: list[Section]) -> str:
    """Text: the summary line, then one table per kind of change."""
    out = [summary(diff)]
    for s in parts:
        out += ["", f"{s.title}:", table(s.rows, s.headers)]
    return "\n".join(out)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(diff: PolicyDiff, parts: list[Section], old_name: str, new_name: str) -> str:
    """A summary line, then one collapsible section per kind of change (GitHub step summary, PR comment)."""
    out = [f"**Policy diff** `{old_name}` → `{new_name}`: {summary(diff)}"]
    for s in parts:
        out += ["", f"<details><summary>{s.title}</summary>", ""]
        out.append("| " + " | ".join(s.headers) + " |")
        out.append("|" + "---|" * len(s.headers))
        out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in s.rows]
        out += ["", "</details>"]
    return "\n".join(out)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(diff: PolicyDiff, parts: list[Section], new_file: str) -> str:
    """GitHub workflow commands: one annotation per group of rows on the NEW file's line, then the summary."""
    out = []
    for s in parts:
        title = _escape_property(f"policy diff: {s.title.split(' (')[0].lower()}")
        for level, line, message in s.notes:
            place = f"file={_escape_property(new_file)}" + (f",line={line}" if line else "")
            out.append(f"::{level} {place},title={title}::{_escape_data(message)}")
    out.append(f"::notice title=policy diff::{_escape_data(summary(diff))}")
    return "\n".join(out)


__all__ = [
    "Located",
    "Namer",
    "group_rows",
    "map_line",
    "read_git",
    "render_github",
    "render_markdown",
    "render_table",
    "sections",
    "summary",
]
