"""Checks of ``nodeAttrs`` (targets, attributes, IP pools, app connectors) and ``autoApprovers``."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from derptool._types import JsonPath
from derptool.policy import selectors as sel
from derptool.policy._go import quote
from derptool.policy.checks._base import items, mapping, strings
from derptool.policy.checks.grants import capability_error
from derptool.policy.checks.references import ReferenceChecks
from derptool.policy.shape import ShapeChecker, Spec, model_spec

RESERVED_POOLS = (ipaddress.ip_network("100.100.100.0/24"), ipaddress.ip_network("100.115.92.0/23"))
CGNAT = ipaddress.ip_network("100.64.0.0/10")


def _app_connector_spec() -> Spec:
    """The shape of one app connector's parameters."""
    # lazy: the pydantic models cost more start-up than validating a whole policy; only app connectors need one
    from derptool.policy.models import AppConnector

    return model_spec(AppConnector)


class NodeAttrChecks(ReferenceChecks):
    """``nodeAttrs`` and ``autoApprovers``."""

    def check_node_attrs(self) -> None:
        """``nodeAttrs``: targets, attributes, ipPool."""
        for n, rule in items(self.data.get("nodeAttrs")):
            path: JsonPath = ("nodeAttrs", n)
            for i, raw in strings(rule.get("target")):
                item = raw.strip()
                if item == "autogroup:self":
                    self.error((*path, "target", i), '"autogroup:self" is not a valid nodeAttrs target')
                    continue
                err = self.reference_error(item)
                if err:
                    self.error((*path, "target", i), err)
            for i, attr in strings(rule.get("attr")):
                if attr.strip() == "":
                    self.error((*path, "attr", i), "attr values cannot be empty")
            for i, pool in strings(rule.get("ipPool")):
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
                    err = capability_error(name)
                    if err:
                        self.error_key((*path, "app", name), err)
                    if name == "tailscale.com/app-connectors":
                        for j, conn in items(params):
                            self.check_shape((*path, "app", name, j), conn, _app_connector_spec())
                            for k, tag in strings(conn.get("connectors")):
                                if tag not in self.tags:
                                    self.error((*path, "app", name, j, "connectors", k), f"tag not found: {quote(tag)}")

    def check_shape(self, path: JsonPath, value: Any, spec: Spec) -> None:
        """Shape-check a free-form value that has a known structure (e.g. app connector parameters)."""
        checker = ShapeChecker()
        checker.walk(value, spec, path, path)
        self.findings.extend(checker.findings)

    def check_auto_approvers(self) -> None:
        """``autoApprovers``: routes are CIDRs; approvers are defined users, groups, tags or autogroups."""
        aa = mapping(self.data.get("autoApprovers"))
        allowed = sel.MEMBER_AUTOGROUPS | {"tagged"}
        for route, approvers in mapping(aa.get("routes")).items():
            if sel.parse_prefix(route) is None:
                self.error_key(
                    ("autoApprovers", "routes", route), f"autoApprovers.routes: {quote(route)}: invalid prefix"
                )
            self._approvers(("autoApprovers", "routes", route), approvers, allowed)
        self._approvers(("autoApprovers", "exitNode"), aa.get("exitNode"), allowed)
        for svc, tags in mapping(aa.get("services")).items():
            if sel.kind(svc) not in ("service", "tag"):
                self.error_key(
                    ("autoApprovers", "services", svc),
                    f'autoApprovers.services: {quote(svc)}: must be "svc:<name>" or "tag:<name>"',
                )
            self._approvers(("autoApprovers", "services", svc), tags, frozenset())

    def _approvers(self, path: JsonPath, approvers: Any, allowed: frozenset[str]) -> None:
        for i, raw in strings(approvers):
            item = raw.strip()
            if sel.kind(item) in ("tag", "group", "autogroup"):
                err = self.reference_error(item, allow_autogroups=allowed)
                if err:
                    self.error((*path, i), err)
            elif sel.kind(item) not in ("user",):
                self.error((*path, i), f"{quote(item)}: approvers must be users, groups, tags or autogroups")
