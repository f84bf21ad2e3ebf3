"""SSH access gained and lost: who may log in where as which user, and with which action.

Tailscale SSH takes the first rule (in order) whose principals hold the source and whose ``sshUsers`` map
the requested user to a non-empty local user: an explicit entry, else the ``*`` entry (``=``: the same
name). Per destination node and login, the nodes that get ``accept`` and those that get ``check`` are bit
masks; a login no rule names explicitly is the ``*`` row ("any other user"). A node whose SSH rules are
identical on both sides is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from derptool._types import JsonPath
from derptool.policy.engine.diff.view import PolicyView, SSHEntry
from derptool.policy.engine.tailnet import Node, Tailnet

ANY_USER = "*"


@dataclass(frozen=True, order=True)
class SSHRow:
    """One SSH permission: source node, destination node, login user, ``accept`` or ``check``."""

    src: str
    dst: str
    user: str
    action: str

    def to_json(self) -> dict[str, str]:
        """``{"src", "dst", "user", "action"}``."""
        return {"src": self.src, "dst": self.dst, "user": self.user, "action": self.action}


def _verdicts(
    entries: Sequence[SSHEntry], users: list[str], tailnet: Tailnet, masks: dict[frozenset[int], int]
) -> dict[tuple[str, str], int]:
    """``(user, action)`` -> mask of the source nodes that get that action for that login."""
    out: dict[tuple[str, str], int] = {}
    for user in users:
        decided = 0
        for e in entries:
            table = dict(e.users)
            local = table[user] if user in table else table.get(ANY_USER)
            if not local:
                continue
            mask = masks.get(e.principals)
            if mask is None:
                mask = 0
                for ip in e.principals:
                    node = tailnet.by_ip.get(ip)
                    if node is not None:
                        mask |= 1 << node.index
                masks[e.principals] = mask
            new = mask & ~decided
            decided |= mask
            if new:
                out[(user, e.action)] = out.get((user, e.action), 0) | new
    return out


def _users(entries: Sequence[SSHEntry]) -> set[str]:
    return {u for e in entries for u, _ in e.users}


def diff_ssh(old: PolicyView, new: PolicyView) -> tuple[list[SSHRow], list[SSHRow]]:
    """SSH permissions gained and lost (rows sorted)."""
    gained: list[SSHRow] = []
    lost: list[SSHRow] = []
    nodes: Sequence[Node] = old.tailnet.nodes
    names = [n.name for n in nodes]
    masks_old: dict[frozenset[int], int] = {}
    masks_new: dict[frozenset[int], int] = {}
    for node in nodes:
        a, b = old.ssh(node), new.ssh(new.tailnet.nodes[node.index])
        if a == b:
            continue
        users = sorted(_users(a) | _users(b) | {ANY_USER})
        va = _verdicts(a, users, old.tailnet, masks_old)
        vb = _verdicts(b, users, new.tailnet, masks_new)
        for key in va.keys() | vb.keys():
            ma, mb = va.get(key, 0), vb.get(key, 0)
            for rows, mask in ((gained, mb & ~ma), (lost, ma & ~mb)):
                i = 0
                while mask:
                    if mask & 1:
                        rows.append(SSHRow(names[i], node.name, key[0], key[1]))
                    mask >>= 1
                    i += 1
    return sorted(gained), sorted(lost)


def ssh_origin(view: PolicyView, row: SSHRow) -> JsonPath | None:
    """The SSH rule of *view* that decides *row* (the first that admits the source for that login)."""
    tailnet = view.tailnet
    src, dst = tailnet.by_name.get(row.src), tailnet.by_name.get(row.dst)
    if src is None or dst is None:
        return None
    for e in view.ssh(dst):
        table = dict(e.users)
        local = table.get(row.user) if row.user in table else table.get(ANY_USER)
        if local and any(ip in e.principals for ip in src.ips):
            return e.origin
    return None


__all__ = ["ANY_USER", "SSHRow", "diff_ssh", "ssh_origin"]
