"""Tailscale SSH: the ``tailcfg.SSHPolicy`` each node receives from the policy's ``ssh`` rules.

A node that is a destination of a rule gets that rule with its sources as ``principals`` (one
``nodeIP`` per address; users' devices first, by user, then tagged devices, once per tag as Tailscale
lists them), ``sshUsers`` (``root`` always present, ``"*": "="`` for ``autogroup:nonroot``) and the
action. ``check`` rules come before ``accept`` rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from derptool._types import JsonPath
from derptool.policy.engine.addresses import IPSet, addr_text
from derptool.policy.engine.aliases import SELF, Resolver, str_list
from derptool.policy.engine.control import DEFAULT_CONTROL_URL, check_control_url
from derptool.policy.engine.posture import PostureGate, required_postures
from derptool.policy.engine.tailnet import Node, Tailnet

ACCEPT = {
    "accept": True,
    "allowAgentForwarding": True,
    "allowLocalPortForwarding": True,
    "allowRemotePortForwarding": True,
}
CHECK_PATH = "/machine/ssh/action/$SRC_NODE_ID/to/$DST_NODE_ID?local_user=$LOCAL_USER"
NONROOT = "autogroup:nonroot"


def localpart_domain(user: str) -> str | None:
    """The domain of ``localpart:*@<domain>``, or None when *user* is not that form."""
    if not user.startswith("localpart:"):
        return None
    local, at, domain = user[len("localpart:") :].rpartition("@")
    return domain if at and local == "*" and domain and "*" not in domain else None


@dataclass
class SSHRule:
    """One compiled SSH rule, with the policy rule it came from."""

    principals: list[str]
    ssh_users: dict[str, str]
    action: str
    accept_env: list[str] | None
    origin: JsonPath
    principal_nodes: list[Node] = field(default_factory=list)

    def to_json(self, control_url: str = DEFAULT_CONTROL_URL) -> dict[str, Any]:
        """``tailcfg.SSHRule`` JSON."""
        out: dict[str, Any] = {
            "principals": [{"nodeIP": ip} for ip in self.principals],
            "sshUsers": dict(self.ssh_users),
            "action": dict(ACCEPT) if self.action == "accept" else {"holdAndDelegate": control_url + CHECK_PATH},
        }
        if self.accept_env:
            out["acceptEnv"] = list(self.accept_env)
        return out


@dataclass
class _Compiled:
    origin: JsonPath
    action: str
    users: dict[str, str]
    localparts: dict[int, str]
    accept_env: list[str] | None
    by_user: dict[int, list[Node]]
    tagged: list[Node]
    src: IPSet
    self_dst: bool
    dst: IPSet | None
    dst_nodes: frozenset[int] = frozenset()
    src_nodes: frozenset[int] = frozenset()


class SSHCompiler:
    """The ``ssh`` rules of a policy, resolved once; :meth:`for_node` gives a node's SSH policy."""

    def __init__(self, policy: Mapping[str, Any], tailnet: Tailnet, resolver: Resolver | None = None) -> None:
        self.tailnet = tailnet
        self.resolver = resolver or Resolver(policy, tailnet)
        self.policy = policy
        self.gate = PostureGate(policy, tailnet)
        self.rules: list[_Compiled] = []
        raw = policy.get("ssh")
        for i, rule in enumerate(raw if isinstance(raw, list) else []):
            if isinstance(rule, Mapping):
                compiled = self._compile(i, rule)
                if compiled is not None:
                    self.rules.append(compiled)
        self._everyone = [k for k, c in enumerate(self.rules) if c.self_dst]
        self._by_node: dict[int, list[int]] = {}
        for k, c in enumerate(self.rules):
            if c.self_dst:
                continue
            for idx in c.dst_nodes | (c.src_nodes if c.localparts else frozenset()):
                self._by_node.setdefault(idx, []).append(k)

    def _compile(self, i: int, rule: Mapping[str, Any]) -> _Compiled | None:
        action = str(rule.get("action") or "").strip()
        if action not in ("accept", "check"):
            return None
        srcs = str_list(rule.get("src"))
        src = self.resolver.resolve_all(srcs)
        if not src:
            return None
        users = str_list(rule.get("users"))
        user_map: dict[str, str] = {}
        if NONROOT in users:
            user_map["*"] = "="
        user_map["root"] = "root" if "root" in users else ""
        localparts: dict[int, str] = {}
        for u in users:
            domain = localpart_domain(u)
            if domain is not None:
                for tu in self.tailnet.users:
                    local, at, dom = tu.email.rpartition("@")
                    if at and dom.lower() == domain.lower():
                        localparts[tu.id] = local
            elif u not in ("root", NONROOT):
                user_map[u] = u
        by_user: dict[int, list[Node]] = {}
        tagged: list[Node] = []
        src_nodes = self._nodes(srcs, src)
        posture = required_postures(self.policy, rule)
        if posture:
            src_nodes = [n for n in src_nodes if self.gate.allows(n, posture)]
        for n in src_nodes:
            if n.tagged:
                tagged.append(n)
            elif n.user is not None:
                by_user.setdefault(n.user.id, []).append(n)
        dsts = str_list(rule.get("dst"))
        others = [d for d in dsts if d != SELF]
        dst = self.resolver.resolve_all(others) if others else None
        env = str_list(rule.get("acceptEnv")) or None
        dst_nodes = frozenset(n.index for n in self._nodes(others, dst)) if dst is not None else frozenset()
        return _Compiled(
            ("ssh", i),
            action,
            user_map,
            localparts,
            env,
            dict(sorted(by_user.items())),
            tagged,
            src,
            SELF in dsts,
            dst,
            dst_nodes,
            frozenset(n.index for n in src_nodes),
        )

    def _nodes(self, selectors: list[str], ips: IPSet) -> list[Node]:
        """The nodes with an address in *ips*, found through the selectors' node lists where they have one."""
        found: dict[int, Node] = {}
        for s in selectors:
            if s.startswith(("tag:", "group:", "autogroup:member", "autogroup:tagged")) or "@" in s:
                found.update((n.index, n) for n in self.resolver.nodes(s))
            else:
                return [n for n in self.tailnet.nodes if any(ips.contains(ip) for ip in n.ips)]
        return sorted(found.values(), key=lambda n: n.index)

    def for_node(self, node: Node) -> list[SSHRule]:
        """The SSH rules *node* receives, check rules first."""
        out: list[SSHRule] = []
        mine = self._by_node.get(node.index, [])
        for k in sorted({*mine, *self._everyone}) if self._everyone else mine:
            out.extend(self._node_rules(self.rules[k], node))
        return [r for r in out if r.action == "check"] + [r for r in out if r.action != "check"]

    def _rule(self, c: _Compiled, nodes: list[Node], users: dict[str, str], *, per_tag: bool = False) -> SSHRule:
        principals: list[str] = []
        for n in nodes:
            for _ in range(max(1, len(n.tags)) if per_tag else 1):
                principals.extend(addr_text(ip) for ip in n.ips)
        return SSHRule(principals, users, c.action, c.accept_env, c.origin, list(nodes))

    def _node_rules(self, c: _Compiled, node: Node) -> list[SSHRule]:
        out: list[SSHRule] = []

        def emit(nodes: list[Node], uid: int | None, tagged: list[Node]) -> None:
            if not nodes and not tagged:
                return
            rule = self._rule(c, nodes, c.users)
            rule.principals.extend(self._rule(c, tagged, c.users, per_tag=True).principals)
            rule.principal_nodes.extend(tagged)
            out.append(rule)
            if uid is not None and uid in c.localparts:
                lp = c.localparts[uid]
                out.append(SSHRule(list(rule.principals), {lp: lp}, c.action, c.accept_env, c.origin, list(nodes)))

        if c.self_dst and not node.tagged and node.user is not None:
            emit(c.by_user.get(node.user.id, []), node.user.id, [])
        if c.dst is not None:
            if node.index in c.dst_nodes:
                if c.localparts:
                    for uid, nodes in c.by_user.items():
                        emit(nodes, uid, [])
                    if c.tagged:
                        emit([], None, c.tagged)
                else:
                    emit([n for nodes in c.by_user.values() for n in nodes], None, c.tagged)
            elif c.localparts and node.index in c.src_nodes:
                if node.tagged:
                    emit([node], None, [])
                elif node.user is not None:
                    emit(c.by_user.get(node.user.id, []), node.user.id, [])
        return out


def ssh_policy_json(rules: list[SSHRule], control_url: str = DEFAULT_CONTROL_URL) -> dict[str, Any]:
    """``tailcfg.SSHPolicy`` JSON."""
    return {"rules": [r.to_json(control_url) for r in rules]}


__all__ = [
    "DEFAULT_CONTROL_URL",
    "SSHCompiler",
    "SSHRule",
    "check_control_url",
    "localpart_domain",
    "ssh_policy_json",
]
