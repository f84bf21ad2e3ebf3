"""The policy engine: what Tailscale's control plane makes of a policy for a given tailnet.

``load_tailnet(path)`` reads a tailnet file (or ``tailscale status --json``, headscale's lists, the API's
device list: :mod:`.importers`);
``compile_policy(policy, tailnet)`` gives each node's packet filter, SSH policy and peers;
``run_tests`` evaluates the policy's ``tests`` and ``sshTests``; ``explain`` says which rules allow a
connection; ``egress`` lists the exit nodes and subnet routes each node may use. Everything is pure:
data in, data out.
"""

from __future__ import annotations

from derptool.policy.engine.compile import Compiled, compile_policy
from derptool.policy.engine.egress import egress, via_violations
from derptool.policy.engine.explain import explain
from derptool.policy.engine.importers import import_tailnet, load_tailnet, parse_tailnet
from derptool.policy.engine.source import load_policy, parse_policy
from derptool.policy.engine.tailnet import Node, Tailnet, TailnetError, User
from derptool.policy.engine.tests import run_tests

__all__ = [
    "Compiled",
    "Node",
    "Tailnet",
    "TailnetError",
    "User",
    "compile_policy",
    "egress",
    "explain",
    "import_tailnet",
    "load_policy",
    "load_tailnet",
    "parse_policy",
    "parse_tailnet",
    "run_tests",
    "via_violations",
]
