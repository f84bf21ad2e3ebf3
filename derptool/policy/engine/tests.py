"""The policy's own ``tests`` and ``sshTests``, run against a tailnet as Tailscale runs them on save.

An ACL test names one source (user, group, tag, host or address) and ``host:port`` destinations that
must be accepted or denied; the source's devices are tried against the compiled rules of the whole
tailnet (TCP unless the test gives ``proto``). A destination is one host and one port: Tailscale fails
a test whose destination is a CIDR, a port list, a range or ``*``, and so does this module. An SSH test
checks which login users the source may use on each destination (accept, check, or denied).

:func:`run_tests` returns :class:`TestFailure` values; an empty list means every test passed. Tests whose
source has no device in the tailnet cannot be evaluated and are listed in ``skipped``, never failed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from derptool._types import JsonPath
from derptool.policy.engine.addresses import addr_int, addr_text
from derptool.policy.engine.compile import Compiled
from derptool.policy.engine.filter import DstPort, Rule
from derptool.policy.engine.ports import proto_allows
from derptool.policy.engine.ssh import SSHRule
from derptool.policy.engine.tailnet import Node
from derptool.policy.selectors import protocol_number, split_host_ports, test_destination_form_error

PREFIX = "test(s) failed"


@dataclass(frozen=True)
class TestFailure:
    """One failing test entry: where it is, and why (``message`` starts with ``test(s) failed``)."""

    path: JsonPath
    message: str
    rule: JsonPath | None = None  # the rule that allowed what the test denies


@dataclass
class TestReport:
    """Failures, and the entries that could not be evaluated in this tailnet."""

    failures: list[TestFailure] = field(default_factory=list)
    skipped: list[tuple[JsonPath, str]] = field(default_factory=list)
    run: int = 0


def destination_form_error(dest: str) -> str | None:
    """Why a test destination can never be evaluated (not one host and one port), or None."""
    return test_destination_form_error(dest)


def _rule_name(path: JsonPath | None, lines: Mapping[JsonPath, int], file: str | None = None) -> str:
    if not path:
        return "the default allow-all policy (no acls or grants)"
    name = f"{path[0]}[{path[1]}]" if len(path) > 1 else str(path[0])
    line = lines.get(tuple(path[:2]))
    if line is not None:
        return f"{name} ({file}:{line})" if file else f"{name} (line {line})"
    return name


class TestRunner:
    """Runs the tests of one compiled policy."""

    def __init__(
        self, compiled: Compiled, lines: Mapping[JsonPath, int] | None = None, file: str | None = None
    ) -> None:
        self.c = compiled
        self.lines = lines or {}
        self.file = file
        self._singles: dict[int, list[tuple[int, Rule, DstPort]]] | None = None
        self._wide: list[tuple[int, Rule, DstPort]] = []
        self._at: dict[int, list[tuple[Rule, DstPort]]] = {}

    # -- sources and destinations -----------------------------------------------------------------

    def source_ips(self, src: str) -> list[int] | None:
        """Addresses a test source stands for (None: not resolvable)."""
        src = src.strip()
        if not src:
            return None
        nodes = self.c.resolver.nodes(src) if not _is_ip(src) and src not in self.c.resolver.hosts else []
        if nodes:
            return sorted({ip for n in nodes for ip in n.ips})
        ips = self.c.resolver.resolve(src)
        if ips is not None and len(ips.ranges) == 1 and ips.ranges[0][0] == ips.ranges[0][1]:
            return [ips.ranges[0][0]]
        node = self.c.tailnet.node(src)
        return list(node.ips) if node is not None else None

    def unknown_source(self, src: str) -> str | None:
        """Why a test source names nothing in this tailnet (a user e-mail or a host name it does not
        have), or None; Tailscale fails such a test. Groups, tags and autogroups are checked by validation."""
        src = src.strip()
        if _is_ip(src) or src in self.c.resolver.hosts or "/" in src:
            return None
        if src.startswith(("group:", "tag:", "autogroup:", "user:*@", "ipset:")) or src == "*":
            return None
        if "@" in src:
            return None if self.c.tailnet.user(src) is not None else f"{src!r} is no user of this tailnet"
        if self.c.tailnet.node(src) is None and self.c.tailnet.user(src) is None:
            return f"{src!r} is no host, node or user of this tailnet"
        return None

    def dest_ips(self, host: str) -> list[int] | None:
        """Addresses of a test destination host (None: nothing in this tailnet)."""
        if _is_ip(host):
            return [addr_int(host)]
        if host in self.c.resolver.hosts:
            ips = self.c.resolver.resolve(host)
            if ips is not None and len(ips.ranges) == 1 and ips.ranges[0][0] == ips.ranges[0][1]:
                return [ips.ranges[0][0]]
            return None
        nodes = self.c.resolver.nodes(host)
        if not nodes:
            node = self.c.tailnet.node(host)
            nodes = [node] if node is not None else []
        return [n.ips[0] for n in nodes] or None

    # -- verdicts ---------------------------------------------------------------------------------

    def allowing_rule(self, src_ip: int, dst_ip: int, proto: int, port: int) -> JsonPath | None:
        """The policy entry of the first rule that accepts the packet, or None."""
        for rule, d in self._destinations(dst_ip):
            if d.ports[0] <= port <= d.ports[1] and proto_allows(rule.protos, proto) and rule.src.contains(src_ip):
                return d.origin
        return None

    def _destinations(self, dst_ip: int) -> list[tuple[Rule, DstPort]]:
        """Every ``DstPorts`` entry whose addresses hold *dst_ip*, with its rule, in rule order: the entries
        of single addresses come from an index, the few wider ones from a scan (a test costs what reaches
        its destination, not every rule of the policy)."""
        found = self._at.get(dst_ip)
        if found is not None:
            return found
        if self._singles is None:
            self._singles = {}
            k = 0
            for rule in self.c.rules.rules:
                if rule.cap_grants is not None:
                    continue
                for d in rule.dst_ports:
                    if d.lo == d.hi:
                        self._singles.setdefault(d.lo, []).append((k, rule, d))
                    else:
                        self._wide.append((k, rule, d))
                    k += 1
        hits = [e for e in self._wide if e[2].lo <= dst_ip <= e[2].hi] + self._singles.get(dst_ip, [])
        hits.sort(key=lambda e: e[0])
        found = [(rule, d) for _, rule, d in hits]
        self._at[dst_ip] = found
        return found

    def run(self) -> TestReport:
        """Run ``tests`` and ``sshTests``."""
        report = TestReport()
        policy = self.c.policy
        tests = policy.get("tests")
        for i, t in enumerate(tests if isinstance(tests, list) else []):
            if isinstance(t, Mapping):
                self._acl_test(("tests", i), t, report)
        ssh_tests = policy.get("sshTests")
        for i, t in enumerate(ssh_tests if isinstance(ssh_tests, list) else []):
            if isinstance(t, Mapping):
                self._ssh_test(("sshTests", i), t, report)
        return report

    def _acl_test(self, path: JsonPath, t: Mapping[str, Any], report: TestReport) -> None:
        src = t.get("src", t.get("user", ""))
        src = src.strip() if isinstance(src, str) else ""
        lists = [(k, t.get(k)) for k in ("accept", "allow", "deny") if isinstance(t.get(k), list)]
        if not any(v for _, v in lists):
            report.failures.append(TestFailure(path, f'{PREFIX}: {_p(path)}: a test needs "accept" or "deny"'))
            return
        if not src:
            report.failures.append(TestFailure(path, f"{PREFIX}: {_p(path)}: the test has no src"))
            return
        unknown = self.unknown_source(src)
        if unknown is not None:
            report.failures.append(TestFailure(path, f"{PREFIX}: {_p(path)}: test src {unknown}"))
            return
        proto_text = t.get("proto") if isinstance(t.get("proto"), str) and t.get("proto") else "tcp"
        proto = protocol_number(str(proto_text)) or 6
        src_ips = self.source_ips(src)
        for key, dests in lists:
            want_accept = key != "deny"
            for j, raw in enumerate(dests or []):
                if not isinstance(raw, str):
                    continue
                where = (*path, key, j)
                head = f"{PREFIX}: {_p(path)}: {src} -> {raw.strip()} ({proto_text})"
                if split_host_ports(raw.strip()) is None:
                    report.skipped.append((where, f"{raw.strip()!r} has no port: not evaluated"))
                    continue
                form = destination_form_error(raw)
                if form is not None:
                    report.failures.append(TestFailure(where, f"{head}: {form}"))
                    continue
                split = split_host_ports(raw.strip())
                assert split is not None
                host, port = split[0], int(split[1])
                dst_ips = self.dest_ips(host)
                if dst_ips is None:
                    report.failures.append(
                        TestFailure(where, f"{head}: {host!r} is no host, node, user or tag of this tailnet")
                    )
                    continue
                if src_ips is None:
                    report.skipped.append((where, f"{src!r} has no device in the tailnet"))
                    continue
                report.run += 1
                verdicts = [(s, d, self.allowing_rule(s, d, proto, port)) for s in src_ips for d in dst_ips]
                allowed = [v for v in verdicts if v[2] is not None]
                if want_accept and len(allowed) < len(verdicts):
                    s, d, _ = next(v for v in verdicts if v[2] is None)
                    report.failures.append(
                        TestFailure(
                            where,
                            f"{head}: want accept, got deny: no rule allows {addr_text(s)} to {addr_text(d)}:{port}",
                        )
                    )
                elif not want_accept and allowed:
                    s, d, rule = allowed[0]
                    report.failures.append(
                        TestFailure(
                            where,
                            f"{head}: want deny, got accept: {_rule_name(rule, self.lines, self.file)} allows "
                            f"{addr_text(s)} to {addr_text(d)}:{port}",
                            rule,
                        )
                    )

    # -- ssh tests --------------------------------------------------------------------------------

    def ssh_verdict(self, src_ip: int, node: Node, login: str) -> tuple[str | None, SSHRule | None]:
        """``accept``, ``check`` or None (denied) for *login* from *src_ip* on *node*, and the rule."""
        src_text = addr_text(src_ip)
        for rule in self.c.ssh_rules(node):
            if src_text not in rule.principals:
                continue
            mapped = rule.ssh_users.get(login)
            if mapped is None and login != "root" and "*" in rule.ssh_users:
                mapped = rule.ssh_users["*"]
            if mapped:
                return rule.action, rule
        return None, None

    def _ssh_test(self, path: JsonPath, t: Mapping[str, Any], report: TestReport) -> None:
        src = t.get("src")
        src = src.strip() if isinstance(src, str) else ""
        if not src:
            report.failures.append(TestFailure(path, f"{PREFIX}: {_p(path)}: the SSH test has no src"))
            return
        unknown = self.unknown_source(src)
        if unknown is not None:
            report.failures.append(TestFailure(path, f"{PREFIX}: {_p(path)}: SSH test src {unknown}"))
            return
        src_ips = self.source_ips(src)
        dsts = [d.strip() for d in _list(t.get("dst")) if isinstance(d, str)]
        for k, host in enumerate(dsts):
            where: JsonPath = (*path, "dst", k)
            nodes = self._ssh_dest_nodes(host)
            if not nodes:
                report.failures.append(
                    TestFailure(
                        where,
                        f"{PREFIX}: {_p(path)}: SSH destination {host!r} is no host, node, user or tag of this tailnet",
                    )
                )
                continue
            if src_ips is None:
                report.skipped.append((where, f"{src!r} has no device in the tailnet"))
                continue
            for key in ("accept", "check", "deny"):
                for login in [u for u in _list(t.get(key)) if isinstance(u, str)]:
                    report.run += 1
                    for node in nodes:
                        got = [self.ssh_verdict(s, node, login) for s in src_ips]
                        bad = [(a, r) for a, r in got if a != (None if key == "deny" else key)]
                        if bad:
                            action, rule = bad[0]
                            how = action or "deny"
                            why = ""
                            if rule is not None:
                                why = f": allowed by {_rule_name(rule.origin, self.lines, self.file)}"
                            report.failures.append(
                                TestFailure(
                                    (*path, key),
                                    f"{PREFIX}: {_p(path)}: ssh {login}@{node.name} from {src}: want "
                                    f"{key}, got {how}{why}",
                                    rule.origin if rule else None,
                                )
                            )
                            break

    def _ssh_dest_nodes(self, host: str) -> list[Node]:
        if _is_ip(host):
            if ":" in host:
                return []  # Tailscale does not take a bare IPv6 address as an SSH test destination
            node = self.c.tailnet.node_at(addr_int(host))
            return [node] if node is not None else []
        if host in self.c.resolver.hosts:
            ips = self.c.resolver.resolve(host)
            return [n for n in self.c.tailnet.nodes if ips is not None and any(ips.contains(i) for i in n.ips)]
        nodes = self.c.resolver.nodes(host)
        if nodes:
            return nodes
        node = self.c.tailnet.node(host)
        return [node] if node is not None else []


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _list(value: Any) -> list[Any]:
    """*value* if it is a list, else an empty one (a value of the wrong type was reported by validate)."""
    return value if isinstance(value, list) else []


def _p(path: JsonPath) -> str:
    return f"{path[0]}[{path[1]}]"


def run_tests(compiled: Compiled, lines: Mapping[JsonPath, int] | None = None, file: str | None = None) -> TestReport:
    """Run the policy's ``tests`` and ``sshTests``; *lines* maps ``(section, index)`` to a line of *file*."""
    return TestRunner(compiled, lines, file).run()


__all__ = ["PREFIX", "TestFailure", "TestReport", "TestRunner", "destination_form_error", "run_tests"]
