"""Checks of ``acls``: the legacy access rules."""

from __future__ import annotations

from derptool._types import JsonPath
from derptool.policy import selectors as sel
from derptool.policy._go import quote
from derptool.policy.checks._base import items, strings
from derptool.policy.checks.references import ReferenceChecks


class AclChecks(ReferenceChecks):
    """``acls``."""

    def check_acls(self) -> None:
        """``acls``: action, src, dst host:ports, proto."""
        for n, rule in items(self.data.get("acls")):
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
            for i, raw in strings(dsts):
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
