"""Checks of ``tests`` and ``sshTests``: what makes a test fail whatever the tailnet."""

from __future__ import annotations

from derptool._types import JsonPath
from derptool.policy import selectors as sel
from derptool.policy._go import quote
from derptool.policy.checks._base import items, strings
from derptool.policy.checks.references import ReferenceChecks


class PolicyTestChecks(ReferenceChecks):
    """``tests`` and ``sshTests``."""

    def check_tests(self) -> None:
        """``tests``: what makes a test fail whatever the tailnet (Tailscale answers ``test(s) failed``).

        Tailscale accepts any destination text and runs the test; a destination that is not one host and
        one port (a CIDR, ``*``, a port list or range) never passes, nor does a test without a source or
        without ``accept``/``deny``. Whether the others pass depends on the tailnet: see
        :mod:`derptool.policy.engine.tests` (``derptool validate --tailnet``).
        """
        failed = "test(s) failed: "
        for n, test in items(self.data.get("tests")):
            path: JsonPath = ("tests", n)
            src = test.get("src", test.get("user", ""))
            if isinstance(src, str):
                if src.strip() == "":
                    self.error((*path, "src") if "src" in test else path, failed + "test src must be specified")
                else:
                    err = self.reference_error(src.strip())
                    if err:
                        self.error((*path, "src" if "src" in test else "user"), f"{failed}test src: {err}")
            lists = [k for k in ("accept", "deny", "allow") if test.get(k)]
            if not lists:
                self.error(path, failed + 'a test needs "accept" or "deny" destinations')
            proto = test.get("proto")
            if isinstance(proto, str) and proto and sel.protocol_number(proto) is None:
                self.error((*path, "proto"), sel.protocol_error(proto))
            for key in ("accept", "deny", "allow"):
                for i, dest in strings(test.get(key)):
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
        for n, test in items(self.data.get("sshTests")):
            path: JsonPath = ("sshTests", n)
            src = test.get("src", "")
            if isinstance(src, str) and src.strip() == "":
                self.error((*path, "src") if "src" in test else path, "SSH test src must be specified")
            elif isinstance(src, str):
                err = self.reference_error(src.strip())
                if err:  # Tailscale runs the test and fails it: the source stands for nothing
                    self.error((*path, "src"), f"test(s) failed: SSH test src: {err}")
            for i, raw in strings(test.get("dst")):
                item = raw.strip()
                where = (*path, "dst", i)
                k = sel.kind(item)
                if item == "autogroup:internet" or (k == "ip" and "/" in item) or k == "wildcard":
                    self.error(where, f"SSH tests dst contains disallowed element {quote(item)}")
                elif k == "tag" and item not in self.tags:
                    self.error(where, f"SSH tests dst contains unknown tag {quote(item)}")
            if not any(test.get(k) for k in ("accept", "check", "deny")):
                self.error(path, 'an SSH test needs "accept", "check" or "deny" users')
