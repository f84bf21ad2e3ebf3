"""Semantic checks of a policy file, with Tailscale's own messages where its control plane gives one.

Input is the canonical data of :mod:`derptool.policy.shape` (documented key spelling, ``null`` members
dropped). Values of the wrong type were already reported there and are skipped here. Each check appends
:class:`~derptool.policy.problems.Finding` values with a path into that data.

Where a message is quoted from Tailscale's answers (see ``tests/data/tailscale-verdicts.json``) it is
reproduced exactly; elsewhere the wording follows the same style.

One module per part of the policy (:mod:`.definitions`, :mod:`.acls`, :mod:`.grants`, :mod:`.ssh`,
:mod:`.node_attrs`, :mod:`.tests`, :mod:`.options`), over the shared :mod:`.references` checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from derptool.policy.checks.acls import AclChecks
from derptool.policy.checks.definitions import DefinitionChecks
from derptool.policy.checks.grants import GrantChecks
from derptool.policy.checks.node_attrs import NodeAttrChecks
from derptool.policy.checks.options import OptionChecks
from derptool.policy.checks.ssh import SshChecks
from derptool.policy.checks.tests import PolicyTestChecks
from derptool.policy.derpcheck import check_derp_map
from derptool.policy.problems import Finding, Severity


class PolicyChecker(
    DefinitionChecks, AclChecks, GrantChecks, SshChecks, NodeAttrChecks, PolicyTestChecks, OptionChecks
):
    """Runs every semantic check over canonical policy data."""

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
            self.findings.extend(check_derp_map(self.data["derpMap"], ("derpMap",)))
        return self.findings


def check_policy(data: Mapping[str, Any]) -> list[Finding]:
    """All semantic findings for canonical policy *data*."""
    return PolicyChecker(data).run()


__all__ = ["PolicyChecker", "Severity", "check_policy"]
