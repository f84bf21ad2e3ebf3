"""Semantic checks of a policy file, with Tailscale's own messages where its control plane gives one.

Input is the canonical data of :mod:`derptool.policy.shape` (documented key spelling, ``null`` members
dropped). Values of the wrong type were already reported there and are skipped here. Each check appends
:class:`~derptool.policy.problems.Finding` values with a path into that data.

Where a message is quoted from Tailscale's answers (see ``tests/data/tailscale-verdicts.json``) it is
reproduced exactly; elsewhere the wording follows the same style.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel

from derptool._types import JsonPath
from derptool.policy import selectors as sel
from derptool.policy._go import format_duration, parse_duration, quote
from derptool.policy.models import AppConnector
from derptool.policy.problems import Finding, Severity

MAX_CHECK_PERIOD_NS = 168 * 3600 * 10**9
MIN_CHECK_PERIOD_NS = 60 * 10**9
RESERVED_POOLS = (ipaddress.ip_network("100.100.100.0/24"), ipaddress.ip_network("100.115.92.0/23"))
CGNAT = ipaddress.ip_network("100.64.0.0/10")
ALL_V4 = ipaddress.ip_network("0.0.0.0/0")
ALL_V6 = ipaddress.ip_network("::/0")
SERVER_CAPS = frozenset({"relay-target", "funnel", "ingress", "file-sharing-target", "file-send"})
"""``tailscale.com/cap/*`` names that the server generates itself and refuses in grants."""
_CAP_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_POSTURE_CONDITION = re.compile(
    r"^\s*[A-Za-z][\w-]*:[\w.\-]+\s*"
    r"(?:(?:==|!=|<=|>=|<|>)\s*(?:'[^']*'|\"[^\"]*\"|[\w.\-]+)"
    r"|(?:NOT\s+)?IN\s*\[\s*(?:(?:'[^']*'|\"[^\"]*\"|[\w.\-]+)\s*,?\s*)*\]"
    r"|IS\s+SET|NOT\s+SET)?\s*$",
    re.IGNORECASE,
)


def _strings(value: Any) -> Iterator[tuple[int, str]]:
    """Index and string of every string item of a list (other items were reported by the shape check)."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, str):
                yield i, item


def _items(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, Mapping):
                yield i, dict(item)


def _mapping(value: Any) -> dict[Any, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


class PolicyChecker:
    """Runs every semantic check over canonical policy data."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.findings: list[Finding] = []
        self.tags = set(_mapping(data.get("tagOwners")))
        self.groups = _mapping(data.get("groups"))
        self.hosts = _mapping(data.get("hosts"))
        self.ipsets = _mapping(data.get("ipsets"))
        self.postures = set(_mapping(data.get("postures")))

    # -- plumbing ---------------------------------------------------------------------------------

    def error(self, path: JsonPath, message: str) -> None:
        """Record an error at *path*."""
        self.findings.append(Finding(path, message))

    def error_key(self, path: JsonPath, message: str) -> None:
        """Record an error about the key at the end of *path* (its position is the key's)."""
        self.findings.append(Finding(path, message, at_key=True))

    def warning(self, path: JsonPath, message: str) -> None:
        """Record a warning at *path*."""
        self.findings.append(Finding(path, message, "warning"))

    def run(self) -> list[Finding]:
        """Run all checks; return the findings."""
        self.check_tag_owners()
        self.check_groups()
        self.check_hosts()
        self.check_ipsets()
        self.check_postures()
        self.check_acls()
        self.check_grants()
        self.check_ssh()
        self.check_node_attrs()
        self.check_auto_approvers()
        self.check_tests()
        self.check_ssh_tests()
        self.check_options()
        if isinstance(self.data.get("derpMap"), Mapping):
            from derptool.policy.derpcheck import check_derp_map

            self.findings.extend(check_derp_map(self.data["derpMap"], ("derpMap",)))
        return self.findings

    # -- references -------------------------------------------------------------------------------

    def reference_error(self, item: str, *, allow_autogroups: frozenset[str] | None = None) -> str | None:
        """The error for a selector naming something undefined or malformed, or None.

        Covers tags, groups, hosts, ipsets, autogroups (when *allow_autogroups* is given, only those).
        """
        k = sel.kind(item)
        if k == "tag":
            return None if item in self.tags else f"tag not found: {quote(item)}"
        if k == "group":
            if item in self.groups or "@" in item:
                return None
            return f"group not found: {quote(item)}"
        if k == "ipset":
            return None if item in self.ipsets else f"ipset not found: {quote(item)}"
        if k == "autogroup":
            name = item[len("autogroup:") :]
            if name not in sel.AUTOGROUPS:
                return f"unknown autogroup {quote(item)}"
            if allow_autogroups is not None and name not in allow_autogroups:
                return f"{quote(item)} is not allowed here"
            return None
        if k == "host":
            if item in self.hosts:
                return None
            return f"{quote(item)}: invalid address"
        if k == "posture":
            return f"{quote(item)}: invalid address"
        return None

    def check_empty(self, rule: Mapping[str, Any], rule_path: JsonPath, keys: tuple[str, str]) -> None:
        """Warn when a rule's sources or destinations are missing or empty: it then matches nothing."""
        for key in keys:
            value = rule.get(key)
            if value is None or value == []:
                where = (*rule_path, key) if key in rule else rule_path
                self.warning(where, f"{key} is empty: this rule matches nothing")

    def check_srcs(self, path: JsonPath, srcs: Any, *, section: str) -> None:
        """Check a rule's ``src`` list."""
        for i, raw in _strings(srcs):
            item = raw.strip()
            where = (*path, i)
            if item in ("autogroup:self", "autogroup:internet"):
                self.error(where, f"{quote(item)} not valid on the src side of a rule")
                continue
            if item == "autogroup:nonroot":
                self.error(where, f"{quote(item)} is only valid in ssh users")
                continue
            if sel.kind(item) == "service":
                self.error(where, f"{quote(item)} not valid on the src side of a rule")
                continue
            err = self.reference_error(item)
            if err:
                self.error(where, f"src={err}")

    def check_dst_target(self, where: JsonPath, entry: str, target: str) -> None:
        """Check the host part of a destination (``entry`` is the whole text, for the message)."""
        if target == "autogroup:danger-all":
            self.error(where, "cannot use autogroup:danger-all as a dst")
            return
        if target in ("autogroup:shared", "autogroup:nonroot"):
            self.error(where, f"cannot use {target} as a dst")
            return
        err = self.reference_error(target)
        if err:
            self.error(where, f"dst={quote(entry)}: {err}")

    def check_self(self, path: JsonPath, srcs: Any, *, allow_wildcard: bool) -> None:
        """``autogroup:self`` as a destination needs sources that are users, groups or member autogroups."""
        for i, raw in _strings(srcs):
            item = raw.strip()
            k = sel.kind(item)
            ok = (
                k in ("user", "group", "userpattern")
                or (k == "autogroup" and item[len("autogroup:") :] in sel.MEMBER_AUTOGROUPS)
                or (k == "wildcard" and allow_wildcard)
            )
            if not ok:
                self.error((*path, i), "autogroup:self can only be used with users, groups, or supported autogroups")
                return

    def check_src_posture(self, path: JsonPath, names: Any) -> None:
        """Every ``srcPosture`` name must be defined in ``postures``."""
        for i, name in _strings(names):
            if not name.startswith("posture:"):
                self.error((*path, i), f'posture {quote(name)} must start with "posture:"')
            elif name not in self.postures:
                self.error((*path, i), f"posture not found: {quote(name)}")

    # -- acls -------------------------------------------------------------------------------------

    def check_acls(self) -> None:
        """``acls``: action, src, dst host:ports, proto."""
        for n, rule in _items(self.data.get("acls")):
            path: JsonPath = ("acls", n)
            action = rule.get("action", "")
            if isinstance(action, str) and action.strip() != "accept":
                self.error((*path, "action"), f"action={quote(action)} is not supported")
            for new, old in (("src", "users"), ("dst", "ports")):
                if new in rule and old in rule:
                    self.error(
                        (*path, old),
                        f'only one of "{new}" and "{old}" may be given ("{old}" is the legacy name of "{new}")',
                    )
            src_key = "src" if "src" in rule else "users"
            dst_key = "dst" if "dst" in rule else "ports"
            srcs, dsts = rule.get(src_key), rule.get(dst_key)
            self.check_srcs((*path, src_key), srcs, section="acls")
            self.check_empty(rule, path, (src_key, dst_key))
            proto_number: int | None = None
            proto = rule.get("proto")
            if isinstance(proto, str) and proto != "":
                proto_number = sel.protocol_number(proto)
                if proto_number is None:
                    self.error((*path, "proto"), sel.protocol_error(proto))
            has_self = False
            for i, raw in _strings(dsts):
                entry = raw.strip()
                where = (*path, dst_key, i)
                split = sel.split_host_ports(entry)
                if split is None:
                    self.error(where, f"dst={quote(entry)}: missing port: use {quote(entry + ':*')} for all ports")
                    continue
                host, ports = split
                err = sel.port_error(ports)
                if err:
                    self.error(where, f"dst={quote(entry)}: {err}")
                    continue
                if proto_number is not None and proto_number not in sel.PORT_PROTOCOLS and ports != "*":
                    self.error(
                        where, f"dst={quote(entry)}: proto {quote(str(proto))} has no ports: use {quote(host + ':*')}"
                    )
                if host == "autogroup:self":
                    has_self = True
                self.check_dst_target(where, entry, host)
            if has_self:
                self.check_self((*path, src_key), srcs, allow_wildcard=True)
            self.check_src_posture((*path, "srcPosture"), rule.get("srcPosture"))

    # -- grants -----------------------------------------------------------------------------------

    def check_grants(self) -> None:
        """``grants``: src, dst, ip, app, via."""
        for n, rule in _items(self.data.get("grants")):
            path: JsonPath = ("grants", n)
            srcs, dsts = rule.get("src"), rule.get("dst")
            ips, app, via = rule.get("ip"), rule.get("app"), rule.get("via")
            self.check_srcs((*path, "src"), srcs, section="grants")
            self.check_empty(rule, path, ("src", "dst"))
            has_self = has_internet = False
            for i, raw in _strings(dsts):
                item = raw.strip()
                where = (*path, "dst", i)
                net = sel.parse_prefix(item) if "/" in item else None
                if net is not None and net in (ALL_V4, ALL_V6):
                    self.error(where, f'dst {quote(item)}: to allow all IP addresses, use "*" or "autogroup:internet"')
                    continue
                has_self |= item == "autogroup:self"
                has_internet |= item == "autogroup:internet"
                self.check_dst_target(where, item, item)
            if has_self:
                self.check_self((*path, "src"), srcs, allow_wildcard=False)
            empty_ip = not ips
            empty_app = not app
            if empty_ip and empty_app:
                self.error(path, "ip and app can not both be empty")
            for i, raw in _strings(ips):
                self.check_grant_ip((*path, "ip", i), raw.strip())
            if isinstance(app, Mapping):
                if app and has_internet:
                    self.error((*path, "app"), "cannot use app grants with autogroup:internet")
                for name in app:
                    self.check_capability((*path, "app", name), name)
            for i, raw in _strings(via):
                item = raw.strip()
                if sel.kind(item) != "tag":
                    self.error((*path, "via", i), "via can only be a tag")
                elif item not in self.tags:
                    self.error((*path, "via", i), f"tag {quote(item)} not found")
            self.check_src_posture((*path, "srcPosture"), rule.get("srcPosture"))

    def check_grant_ip(self, where: JsonPath, item: str) -> None:
        """One grant ``ip`` entry, read by Tailscale's rules (:func:`.selectors.parse_proto_port_range`).

        Ports on a protocol without ports (``icmp:80``) are accepted by Tailscale and refused by headscale: a warning.
        """
        parsed = sel.parse_proto_port_range(item)
        if isinstance(parsed, str):
            hint = " (list each port as its own entry)" if "," in item.rpartition(":")[2] else ""
            self.error(where, parsed + hint)
        elif parsed.proto != 0 and parsed.proto not in sel.PORT_PROTOCOLS and (parsed.first, parsed.last) != (0, 65535):
            proto = item.rpartition(":")[0]
            self.warning(
                where,
                f"protocol {quote(proto)} has no ports, so the port range means nothing: use "
                f"{quote(proto + ':*')} (headscale refuses ports on it)",
            )

    def check_capability(self, where: JsonPath, name: str) -> None:
        """An app capability name: ``{domain}/{path}``, not one of the server's own."""
        domain, slash, rest = name.partition("/")
        if not slash or not rest or not _CAP_DOMAIN.match(domain):
            self.error_key(where, "capability name must have the form {domain}/{path}")
            return
        if (
            domain.lower() == "tailscale.com"
            and rest.lower().startswith("cap/")
            and rest[len("cap/") :].lower() in SERVER_CAPS
        ):
            self.error_key(where, "capability name must not be in the tailscale.com domain")

    # -- ssh --------------------------------------------------------------------------------------

    def check_ssh(self) -> None:
        """``ssh``: action, src, dst, users, checkPeriod, acceptEnv, recorder."""
        for n, rule in _items(self.data.get("ssh")):
            path: JsonPath = ("ssh", n)
            action = rule.get("action", "")
            stripped = action.strip() if isinstance(action, str) else ""
            if isinstance(action, str):
                if stripped == "":
                    self.error(path if "action" not in rule else (*path, "action"), "action must be specified")
                elif stripped not in ("accept", "check"):
                    self.error((*path, "action"), f"{quote(action)} is not a valid action")
            srcs, dsts = rule.get("src"), rule.get("dst")
            self.check_srcs((*path, "src"), srcs, section="ssh")
            self.check_empty(rule, path, ("src", "dst"))
            has_self = False
            for i, raw in _strings(dsts):
                item = raw.strip()
                where = (*path, "dst", i)
                k = sel.kind(item)
                if item == "autogroup:self":
                    has_self = True
                elif k == "tag":
                    if item not in self.tags:
                        self.error(where, f"dst={quote(item)}: tag not found: {quote(item)}")
                elif k == "user" or (k == "autogroup" and item[len("autogroup:") :] in ("member", "tagged")):
                    pass
                elif k == "group":
                    err = self.reference_error(item)
                    if err:
                        self.error(where, f"dst={quote(item)}: {err}")
                else:
                    self.error(where, f"invalid dst {quote(item)}")
            if has_self:
                self.check_self((*path, "src"), srcs, allow_wildcard=True)
            users = rule.get("users")
            if isinstance(users, list) or "users" not in rule:
                if not users:
                    self.error((*path, "users") if "users" in rule else path, "users must be specified")
                for i, user in _strings(users):
                    if user.strip() in ("", "*"):
                        self.error((*path, "users", i), f"user {quote(user)} is not valid")
            period = rule.get("checkPeriod")
            if isinstance(period, str) and period != "":
                self.check_period((*path, "checkPeriod"), period, stripped)
            for i, env in _strings(rule.get("acceptEnv")):
                if env == "":
                    self.error((*path, "acceptEnv", i), "acceptEnv values cannot be empty")
            for i, tag in _strings(rule.get("recorder")):
                if sel.kind(tag) != "tag":
                    self.error((*path, "recorder", i), "recorder can only be a tag")
                elif tag not in self.tags:
                    self.error((*path, "recorder", i), f"tag not found: {quote(tag)}")
            self.check_src_posture((*path, "srcPosture"), rule.get("srcPosture"))

    def check_period(self, where: JsonPath, period: str, action: str) -> None:
        """``checkPeriod``: a Go duration in 0..168h, or ``always``; only meaningful for ``check``."""
        if action == "accept":
            self.warning(where, 'checkPeriod only applies to action "check"; it is ignored here')
        if period == "always":
            return
        try:
            ns = parse_duration(period)
        except ValueError as err:
            self.error(where, str(err))
            return
        if ns < 0:
            self.error(where, f"checkPeriod {format_duration(ns)} must be a positive duration")
        elif ns > MAX_CHECK_PERIOD_NS:
            self.error(where, f"checkPeriod {format_duration(ns)} is above the max (168h)")
        elif ns < MIN_CHECK_PERIOD_NS:
            self.warning(where, f"checkPeriod {format_duration(ns)} is below the documented minimum of 1m")

    # -- definitions ------------------------------------------------------------------------------

    def check_tag_owners(self) -> None:
        """``tagOwners``: tag names (``tailcfg.CheckTag``) and owners that exist."""
        for tag, owners in _mapping(self.data.get("tagOwners")).items():
            err = sel.check_tag_name(tag)
            if err:
                self.error_key(("tagOwners", tag), f"tagOwners[{quote(tag)}]: {err}")
            allowed = sel.MEMBER_AUTOGROUPS | {"tagged"}
            for i, owner in _strings(owners):
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
            for i, member in _strings(members):
                item = member.strip()
                k = sel.kind(item)
                if k == "group":
                    inner = self.groups.get(item)
                    nested = next((j for j, m in _strings(inner) if m.strip().startswith("group:")), None)
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
        for name, conditions in _mapping(self.data.get("postures")).items():
            if not name.startswith("posture:") or name == "posture:":
                self.error_key(("postures", name), f'postures[{quote(name)}]: posture names must start with "posture:"')
            for i, cond in _strings(conditions):
                if not _POSTURE_CONDITION.match(cond):
                    self.error(
                        ("postures", name, i),
                        f"postures[{quote(name)}]: invalid condition {quote(cond)}: "
                        "expected <namespace>:<attribute> [<operator> <value>]",
                    )
        self.check_src_posture(("defaultSrcPosture",), self.data.get("defaultSrcPosture"))

    def check_ipsets(self) -> None:
        """``ipsets``: names, ``add``/``remove`` operations, targets, references without cycles."""
        graph: dict[str, list[str]] = {}
        for name, entries in self.ipsets.items():
            if not name.startswith("ipset:") or name == "ipset:":
                self.error_key(("ipsets", name), f'ipsets[{quote(name)}]: ipset names must start with "ipset:"')
            ops = [e.strip().split(None, 1) for _, e in _strings(entries)]
            has_remove = any(op and op[0] == "remove" for op in ops)
            refs = graph.setdefault(name, [])
            for i, entry in _strings(entries):
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

    # -- node attributes, auto approvers ----------------------------------------------------------

    def check_node_attrs(self) -> None:
        """``nodeAttrs``: targets, attributes, ipPool."""
        for n, rule in _items(self.data.get("nodeAttrs")):
            path: JsonPath = ("nodeAttrs", n)
            for i, raw in _strings(rule.get("target")):
                item = raw.strip()
                if item == "autogroup:self":
                    self.error((*path, "target", i), '"autogroup:self" is not a valid nodeAttrs target')
                    continue
                err = self.reference_error(item)
                if err:
                    self.error((*path, "target", i), err)
            for i, attr in _strings(rule.get("attr")):
                if attr.strip() == "":
                    self.error((*path, "attr", i), "attr values cannot be empty")
            for i, pool in _strings(rule.get("ipPool")):
                net = sel.parse_prefix(pool) if "/" in pool else None
                if net is None:
                    self.error((*path, "ipPool", i), f"IPPool({pool}): invalid prefix")
                elif any(net.overlaps(r) for r in RESERVED_POOLS if r.version == net.version):
                    self.error((*path, "ipPool", i), f"IPPool({pool}): network within reserved range")
                elif net.version != 4 or not net.subnet_of(CGNAT):  # type: ignore[arg-type]
                    self.error((*path, "ipPool", i), f"IPPool({pool}): network outside {CGNAT}")
            app = rule.get("app")
            if isinstance(app, Mapping):
                for name, params in app.items():
                    self.check_capability((*path, "app", name), name)
                    if name == "tailscale.com/app-connectors":
                        for j, conn in _items(params):
                            self.check_shape((*path, "app", name, j), conn, AppConnector)
                            for k, tag in _strings(conn.get("connectors")):
                                if tag not in self.tags:
                                    self.error((*path, "app", name, j, "connectors", k), f"tag not found: {quote(tag)}")

    def check_shape(self, path: JsonPath, value: Any, model: type[BaseModel]) -> None:
        """Shape-check a free-form value that has a known structure (e.g. app connector parameters)."""
        from derptool.policy.shape import ShapeChecker, model_spec

        checker = ShapeChecker()
        checker.walk(value, model_spec(model), path, path)
        self.findings.extend(checker.findings)

    def check_auto_approvers(self) -> None:
        """``autoApprovers``: routes are CIDRs; approvers are defined users, groups, tags or autogroups."""
        aa = _mapping(self.data.get("autoApprovers"))
        allowed = sel.MEMBER_AUTOGROUPS | {"tagged"}
        for route, approvers in _mapping(aa.get("routes")).items():
            if sel.parse_prefix(route) is None:
                self.error_key(
                    ("autoApprovers", "routes", route), f"autoApprovers.routes: {quote(route)}: invalid prefix"
                )
            self._approvers(("autoApprovers", "routes", route), approvers, allowed)
        self._approvers(("autoApprovers", "exitNode"), aa.get("exitNode"), allowed)
        for svc, tags in _mapping(aa.get("services")).items():
            if sel.kind(svc) not in ("service", "tag"):
                self.error_key(
                    ("autoApprovers", "services", svc),
                    f'autoApprovers.services: {quote(svc)}: must be "svc:<name>" or "tag:<name>"',
                )
            self._approvers(("autoApprovers", "services", svc), tags, frozenset())

    def _approvers(self, path: JsonPath, approvers: Any, allowed: frozenset[str]) -> None:
        for i, raw in _strings(approvers):
            item = raw.strip()
            if sel.kind(item) in ("tag", "group", "autogroup"):
                err = self.reference_error(item, allow_autogroups=allowed)
                if err:
                    self.error((*path, i), err)
            elif sel.kind(item) not in ("user",):
                self.error((*path, i), f"{quote(item)}: approvers must be users, groups, tags or autogroups")

    # -- tests ------------------------------------------------------------------------------------

    def check_tests(self) -> None:
        """``tests``: what makes a test fail whatever the tailnet (Tailscale answers ``test(s) failed``).

        Tailscale accepts any destination text and runs the test; a destination that is not one host and
        one port (a CIDR, ``*``, a port list or range) never passes, nor does a test without a source or
        without ``accept``/``deny``. Whether the others pass depends on the tailnet: see
        :mod:`derptool.policy.engine.tests` (``derptool validate --tailnet``).
        """
        failed = "test(s) failed: "
        for n, test in _items(self.data.get("tests")):
            path: JsonPath = ("tests", n)
            src = test.get("src", test.get("user", ""))
            if isinstance(src, str):
                if src.strip() == "":
                    self.error((*path, "src") if "src" in test else path, failed + "test src must be specified")
                else:
                    err = self.reference_error(src.strip())
                    if err:
                        self.error((*path, "src" if "src" in test else "user"), f"test src: {err}")
            lists = [k for k in ("accept", "deny", "allow") if test.get(k)]
            if not lists:
                self.error(path, failed + 'a test needs "accept" or "deny" destinations')
            proto = test.get("proto")
            if isinstance(proto, str) and proto and sel.protocol_number(proto) is None:
                self.error((*path, "proto"), sel.protocol_error(proto))
            for key in ("accept", "deny", "allow"):
                for i, dest in _strings(test.get(key)):
                    err = self.test_destination_error(dest.strip())
                    if err:
                        self.error((*path, key, i), f"{failed}test {key} {quote(dest)}: {err}")

    def test_destination_error(self, dest: str) -> str | None:
        """Why one test destination ``host:port`` can never pass, or None."""
        split = sel.split_host_ports(dest)
        # Tailscale's default policy shows a destination without port ("tag:example"): accept a whole
        # destination that names a single known host, user, group or tag.
        if (
            (split is None or not (split[1].isascii() and split[1].isdigit() and int(split[1]) <= 65535))
            and sel.kind(dest) in ("tag", "group", "user", "host", "ip")
            and "/" not in dest
            and self.reference_error(dest) is None
        ):
            return None
        form = sel.test_destination_form_error(dest)
        if form is not None:
            return form
        assert split is not None
        return self.reference_error(split[0])

    def check_ssh_tests(self) -> None:
        """``sshTests``: a source, destinations that are hosts, users or tags, and login users."""
        for n, test in _items(self.data.get("sshTests")):
            path: JsonPath = ("sshTests", n)
            src = test.get("src", "")
            if isinstance(src, str) and src.strip() == "":
                self.error((*path, "src") if "src" in test else path, "SSH test src must be specified")
            for i, raw in _strings(test.get("dst")):
                item = raw.strip()
                where = (*path, "dst", i)
                k = sel.kind(item)
                if item == "autogroup:internet" or (k == "ip" and "/" in item) or k == "wildcard":
                    self.error(where, f"SSH tests dst contains disallowed element {quote(item)}")
                elif k == "tag" and item not in self.tags:
                    self.error(where, f"SSH tests dst contains unknown tag {quote(item)}")
            if not any(test.get(k) for k in ("accept", "check", "deny")):
                self.error(path, 'an SSH test needs "accept", "check" or "deny" users')

    # -- options ----------------------------------------------------------------------------------

    def check_options(self) -> None:
        """Network options and ``attrConfig``."""
        route = self.data.get("OneCGNATRoute")
        if isinstance(route, str) and route not in ("", "mac-always", "mac-never"):
            self.error(
                ("OneCGNATRoute",), f'OneCGNATRoute {quote(route)} is not valid: use "", "mac-always" or "mac-never"'
            )
        if self.data.get("disableIPv4") is True:
            self.warning(
                ("disableIPv4",),
                'disableIPv4 is deprecated: give the "disable-ipv4" node attribute in nodeAttrs instead',
            )
        for name, conf in _mapping(self.data.get("attrConfig")).items():
            if not name.startswith("custom:") or name == "custom:":
                self.error_key(("attrConfig", name), f'attrConfig[{quote(name)}]: names must start with "custom:"')
            if isinstance(conf, Mapping):
                typ = conf.get("type")
                if isinstance(typ, str) and typ not in ("string", "bool", "number"):
                    self.error(
                        ("attrConfig", name, "type"),
                        f'attrConfig[{quote(name)}]: type {quote(typ)} is not "string", "bool" or "number"',
                    )
                for i, raw in _strings(conf.get("broadcastToPeers")):
                    err = self.reference_error(raw.strip())
                    if err:
                        self.error(("attrConfig", name, "broadcastToPeers", i), err)
        for n, rec in _items(self.data.get("extraDNSRecords")):
            if not rec.get("Name"):
                self.error(("extraDNSRecords", n), "a DNS record needs a Name")
            value = rec.get("Value")
            if not isinstance(value, str) or not sel.is_address(value) or "/" in value or "-" in value:
                self.error(
                    ("extraDNSRecords", n, "Value") if "Value" in rec else ("extraDNSRecords", n),
                    f"DNS record Value {quote(str(value or ''))} is not an IP address",
                )


def check_policy(data: Mapping[str, Any]) -> list[Finding]:
    """All semantic findings for canonical policy *data*."""
    return PolicyChecker(data).run()


__all__ = ["PolicyChecker", "Severity", "check_policy"]
