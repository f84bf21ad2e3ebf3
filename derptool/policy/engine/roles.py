"""User roles and the autogroups and capabilities they give.

A user's ``role`` in the tailnet file is one of Tailscale's roles: ``owner``, ``admin``, ``member``,
``network-admin``, ``it-admin``, ``billing-admin``, ``auditor``. The role autogroups name the devices of
users with a role: ``autogroup:owner`` (the owner), ``autogroup:admin`` (admins and the owner, as the
recordings show for a ``nodeAttrs`` target), ``autogroup:network-admin``, ``autogroup:it-admin``,
``autogroup:billing-admin``, ``autogroup:auditor``; ``autogroup:member`` stays every user-owned device
whatever the role. Tagged devices belong to no user, so to no role autogroup. Users without a role are in
none of the role autogroups.
"""

from __future__ import annotations

from derptool.policy.engine.tailnet import ROLES, Node, Tailnet, role_error

ROLE_GROUPS: dict[str, frozenset[str]] = {
    "autogroup:owner": frozenset({"owner"}),
    "autogroup:admin": frozenset({"owner", "admin"}),
    "autogroup:network-admin": frozenset({"network-admin"}),
    "autogroup:it-admin": frozenset({"it-admin"}),
    "autogroup:billing-admin": frozenset({"billing-admin"}),
    "autogroup:auditor": frozenset({"auditor"}),
}
"""Each role autogroup and the roles whose users' devices it holds."""

IS_ADMIN = "https://tailscale.com/cap/is-admin"
IS_OWNER = "https://tailscale.com/cap/is-owner"


def role_nodes(tailnet: Tailnet, group: str) -> list[Node]:
    """The user-owned devices of users whose role is in the role autogroup *group*, in tailnet order."""
    roles = ROLE_GROUPS.get(group, frozenset())
    return [n for n in tailnet.nodes if not n.tagged and n.user is not None and n.user.role in roles]


def role_caps(node: Node) -> dict[str, None]:
    """The capabilities a device has from its user's role, as the recordings show them.

    The owner's devices carry ``is-admin`` and ``is-owner``, admins' ``is-admin``; tagged devices carry
    ``is-owner``. A user without a role gives none.
    """
    if node.tagged:
        return {IS_OWNER: None}
    role = node.user.role if node.user is not None else None
    if role == "owner":
        return {IS_ADMIN: None, IS_OWNER: None}
    if role == "admin":
        return {IS_ADMIN: None}
    return {}


__all__ = ["IS_ADMIN", "IS_OWNER", "ROLES", "ROLE_GROUPS", "role_caps", "role_error", "role_nodes"]
