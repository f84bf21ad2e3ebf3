"""Checks of ``ssh`` rules: action, sides, login users, ``checkPeriod``, environment, recorders."""

from __future__ import annotations

from derptool._types import JsonPath
from derptool.policy import selectors as sel
from derptool.policy._go import format_duration, parse_duration, quote
from derptool.policy.checks._base import items, strings
from derptool.policy.checks.references import ReferenceChecks

MAX_CHECK_PERIOD_NS = 168 * 3600 * 10**9
MIN_CHECK_PERIOD_NS = 60 * 10**9


class SshChecks(ReferenceChecks):
    """``ssh``."""

    def check_ssh(self) -> None:
        """``ssh``: action, src, dst, users, checkPeriod, acceptEnv, recorder."""
        for n, rule in items(self.data.get("ssh")):
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
            for i, raw in strings(dsts):
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
                for i, user in strings(users):
                    if user.strip() in ("", "*"):
                        self.error((*path, "users", i), f"user {quote(user)} is not valid")
            period = rule.get("checkPeriod")
            if isinstance(period, str) and period != "":
                self.check_period((*path, "checkPeriod"), period, stripped)
            for i, env in strings(rule.get("acceptEnv")):
                if env == "":
                    self.error((*path, "acceptEnv", i), "acceptEnv values cannot be empty")
            for i, tag in strings(rule.get("recorder")):
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
