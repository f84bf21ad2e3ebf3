"""Checks of the network options, ``attrConfig`` and ``extraDNSRecords``."""

from __future__ import annotations

from collections.abc import Mapping

from derptool.policy import selectors as sel
from derptool.policy._go import quote
from derptool.policy.checks._base import items, mapping, strings
from derptool.policy.checks.references import ReferenceChecks


class OptionChecks(ReferenceChecks):
    """Network options, ``attrConfig``, ``extraDNSRecords``."""

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
        for name, conf in mapping(self.data.get("attrConfig")).items():
            if not name.startswith("custom:") or name == "custom:":
                self.error_key(("attrConfig", name), f'attrConfig[{quote(name)}]: names must start with "custom:"')
            if isinstance(conf, Mapping):
                typ = conf.get("type")
                if isinstance(typ, str) and typ not in ("string", "bool", "number"):
                    self.error(
                        ("attrConfig", name, "type"),
                        f'attrConfig[{quote(name)}]: type {quote(typ)} is not "string", "bool" or "number"',
                    )
                for i, raw in strings(conf.get("broadcastToPeers")):
                    err = self.reference_error(raw.strip())
                    if err:
                        self.error(("attrConfig", name, "broadcastToPeers", i), err)
        for n, rec in items(self.data.get("extraDNSRecords")):
            if not rec.get("Name"):
                self.error(("extraDNSRecords", n), "a DNS record needs a Name")
            value = rec.get("Value")
            if not isinstance(value, str) or not sel.is_address(value) or "/" in value or "-" in value:
                self.error(
                    ("extraDNSRecords", n, "Value") if "Value" in rec else ("extraDNSRecords", n),
                    f"DNS record Value {quote(str(value or ''))} is not an IP address",
                )
