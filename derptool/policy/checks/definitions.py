"""Checks of the sections that define names: ``tagOwners``, ``groups``, ``hosts``, ``postures``, ``ipsets``."""

from __future__ import annotations

from derptool._types import JsonPath
from derptool.policy import selectors as sel
from derptool.policy._go import quote
from derptool.policy.checks._base import mapping, strings
from derptool.policy.checks.references import ReferenceChecks
from derptool.policy.posture import PostureSyntaxError, parse_condition
from derptool.policy.problems import Finding


class DefinitionChecks(ReferenceChecks):
    """``tagOwners``, ``groups``, ``hosts``, ``postures``, ``ipsets``."""

    def check_tag_owners(self) -> None:
        """``tagOwners``: tag names (``tailcfg.CheckTag``) and owners that exist."""
        for tag, owners in mapping(self.data.get("tagOwners")).items():
            err = sel.check_tag_name(tag)
            if err:
                self.error_key(("tagOwners", tag), f"tagOwners[{quote(tag)}]: {err}")
            allowed = sel.MEMBER_AUTOGROUPS | {"tagged"}
            for i, owner in strings(owners):
                item = owner.strip()
                if sel.kind(item) in ("tag", "group", "autogroup"):
                    oerr = self.reference_error(item, allow_autogroups=allowed)
                    if oerr:
                        self.error(("tagOwners", tag, i), f"tagOwners[{quote(tag)}]: {oerr}")

    def check_groups(self) -> None:
        """``groups``: names, and members that are users (groups cannot contain groups)."""
        reported: set[str] = set()
        for name, members in self.groups.items():
            if not name.startswith("group:") or name == "group:":
                self.error_key(("groups", name), f'groups[{quote(name)}]: group names must start with "group:"')
            for i, member in strings(members):
                item = member.strip()
                k = sel.kind(item)
                if k == "group":
                    inner = self.groups.get(item)
                    nested = next((j for j, m in strings(inner) if m.strip().startswith("group:")), None)
                    if nested is not None and isinstance(inner, list):
                        path: JsonPath = ("groups", item, nested)
                        inner_name = quote(inner[nested].strip())
                        message = f"groups[{quote(item)}]: {inner_name}: group members cannot be recursive"
                    else:
                        path = ("groups", name, i)
                        message = f"groups[{quote(name)}]: {quote(item)}: group members cannot be recursive"
                    if message not in reported:
                        reported.add(message)
                        self.error(path, message)
                elif k in ("tag", "autogroup", "ipset", "wildcard", "ip"):
                    self.error(
                        ("groups", name, i), f"groups[{quote(name)}]: {quote(item)}: group members must be users"
                    )
                elif item == "":
                    self.error(("groups", name, i), f"groups[{quote(name)}]: {quote(item)}: user is not valid")

    def check_hosts(self) -> None:
        """``hosts``: alias names without ``@``, values that are IPs or CIDRs."""
        for name, value in self.hosts.items():
            if "@" in name or name.strip() == "" or (":" in name and sel.kind(name) != "ip"):
                self.error_key(
                    ("hosts", name), f"hosts[{quote(name)}]: host names cannot contain '@' or ':' and must not be empty"
                )
            elif sel.is_address(name):
                message = f"hosts[{quote(name)}]: a host name that is an address is confusing"
                self.findings.append(Finding(("hosts", name), message, "warning", at_key=True))
            if isinstance(value, str) and sel.parse_prefix(value) is None:
                self.error(("hosts", name), f"hosts[{quote(name)}]: {quote(value)}: invalid address")

    def check_postures(self) -> None:
        """``postures`` names and condition syntax; ``defaultSrcPosture`` references."""
        for name, conditions in mapping(self.data.get("postures")).items():
            if not name.startswith("posture:") or name == "posture:":
                self.error_key(("postures", name), f'postures[{quote(name)}]: posture names must start with "posture:"')
            for i, cond in strings(conditions):
                try:
                    parse_condition(cond)
                except PostureSyntaxError as err:
                    self.error(
                        ("postures", name, i), f"postures[{quote(name)}]: invalid condition {quote(cond)}: {err}"
                    )
        self.check_src_posture(("defaultSrcPosture",), self.data.get("defaultSrcPosture"))

    def check_ipsets(self) -> None:
        """``ipsets``: names, ``add``/``remove`` operations, targets, references without cycles."""
        graph: dict[str, list[str]] = {}
        for name, entries in self.ipsets.items():
            if not name.startswith("ipset:") or name == "ipset:":
                self.error_key(("ipsets", name), f'ipsets[{quote(name)}]: ipset names must start with "ipset:"')
            ops = [e.strip().split(None, 1) for _, e in strings(entries)]
            has_remove = any(op and op[0] == "remove" for op in ops)
            refs = graph.setdefault(name, [])
            for i, entry in strings(entries):
                parts = entry.strip().split(None, 1)
                if len(parts) == 2 and parts[0] in ("add", "remove"):
                    target = parts[1].strip()
                else:
                    target = entry.strip()
                    if has_remove:
                        self.error(
                            ("ipsets", name, i),
                            f"ipsets[{quote(name)}]: {quote(entry)}: the operation "
                            "(add or remove) is required when the set removes anything",
                        )
                        continue
                where = ("ipsets", name, i)
                if target.startswith("host:"):
                    if target[5:] not in self.hosts:
                        self.error(where, f"ipsets[{quote(name)}]: host not found: {quote(target[5:])}")
                elif target.startswith("ipset:"):
                    refs.append(target)
                    if target not in self.ipsets:
                        self.error(where, f"ipsets[{quote(name)}]: ipset not found: {quote(target)}")
                elif target == "autogroup:internet" or sel.is_address(target):
                    pass
                else:
                    self.error(
                        where,
                        f"ipsets[{quote(name)}]: {quote(target)}: invalid target (use an IP, CIDR, "
                        "range, host:<name>, ipset:<name> or autogroup:internet)",
                    )
        for start in graph:
            if self._cycle(graph, start, start, set()):
                self.error(("ipsets", start), f"ipsets[{quote(start)}]: ipset references form a cycle")

    def _cycle(self, graph: dict[str, list[str]], start: str, node: str, seen: set[str]) -> bool:
        for nxt in graph.get(node, []):
            if nxt == start:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if self._cycle(graph, start, nxt, seen):
                    return True
        return False
