"""Checks of ``grants``: sources, destinations, ``ip`` entries, app capabilities, ``via``."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from derptool._types import JsonPath
from derptool.policy import selectors as sel
from derptool.policy._go import quote
from derptool.policy.checks._base import items, strings
from derptool.policy.checks.references import ReferenceChecks

ALL_V4 = ipaddress.ip_network("0.0.0.0/0")
ALL_V6 = ipaddress.ip_network("::/0")
SERVER_CAPS = frozenset({"relay-target", "funnel", "ingress", "file-sharing-target", "file-send"})
"""``tailscale.com/cap/*`` names that the server generates itself and refuses in grants."""
_CAP_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def capability_error(name: str) -> str | None:
    """Why an app capability name is refused (it must be ``{domain}/{path}``, not one of the server's own), or None."""
    domain, slash, rest = name.partition("/")
    if not slash or not rest or not _CAP_DOMAIN.match(domain):
        return "capability name must have the form {domain}/{path}"
    if (
        domain.lower() == "tailscale.com"
        and rest.lower().startswith("cap/")
        and rest[len("cap/") :].lower() in SERVER_CAPS
    ):
        return "capability name must not be in the tailscale.com domain"
    return None


class GrantChecks(ReferenceChecks):
    """``grants``."""

    def check_grants(self) -> None:
        """``grants``: src, dst, ip, app, via."""
        for n, rule in items(self.data.get("grants")):
            path: JsonPath = ("grants", n)
            srcs, dsts = rule.get("src"), rule.get("dst")
            ips, app, via = rule.get("ip"), rule.get("app"), rule.get("via")
            self.check_srcs((*path, "src"), srcs, section="grants")
            self.check_empty(rule, path, ("src", "dst"))
            has_self = has_internet = False
            for i, raw in strings(dsts):
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
            for i, raw in strings(ips):
                self.check_grant_ip((*path, "ip", i), raw.strip())
            if isinstance(app, Mapping):
                if app and has_internet:
                    self.error((*path, "app"), "cannot use app grants with autogroup:internet")
                for name in app:
                    err = capability_error(name)
                    if err:
                        self.error_key((*path, "app", name), err)
            for i, raw in strings(via):
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
