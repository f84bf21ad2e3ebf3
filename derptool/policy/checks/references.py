"""Checks of selectors that name something: tags, groups, hosts, ipsets, autogroups, postures; rule sides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from derptool._types import JsonPath
from derptool.policy import selectors as sel
from derptool.policy._go import quote
from derptool.policy.checks._base import CheckerBase, strings


class ReferenceChecks(CheckerBase):
    """What a selector refers to, and the source and destination sides every kind of rule shares."""

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
        for i, raw in strings(srcs):
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
        for i, raw in strings(srcs):
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
        for i, name in strings(names):
            if not name.startswith("posture:"):
                self.error((*path, i), f'posture {quote(name)} must start with "posture:"')
            elif name not in self.postures:
                self.error((*path, i), f"posture not found: {quote(name)}")
