"""Geofenced egress grants: send the internet traffic of some users through exit nodes in one place.

A grant ``{"src": [...], "dst": ["autogroup:internet"], "ip": ["*"], "via": ["tag:exit-eu"]}`` lets the
sources reach the internet only through exit nodes tagged ``tag:exit-eu``. Tags must be declared in
``tagOwners``, so the plan also lists the entries the tags need. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from derptool import hujson
from derptool.edit.document import ApplyResult, Document
from derptool.errors import ApplyError, UsageError
from derptool.policy.selectors import check_tag_name, is_address, kind, parse_proto_port_range

INTERNET = "autogroup:internet"
_NUMERIC = re.compile(r"[0-9.]+|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*")
"""What can only be meant as an address (a host alias name has letters and no colon)."""


@dataclass(frozen=True)
class EgressPlan:
    """The grant to add, the ``tagOwners`` entries its tags need, and the comment explaining it."""

    grant: dict[str, Any]
    tag_owners: dict[str, list[str]]
    comment: list[str]
    notes: list[str] = field(default_factory=list)

    def fragment(self) -> dict[str, Any]:
        """``{"tagOwners": {...}, "grants": [grant]}`` as plain data."""
        return {"tagOwners": self.tag_owners, "grants": [self.grant]}


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return list(dict.fromkeys(out))


def plan_egress(
    src: list[str],
    via: list[str],
    dst: list[str] | None = None,
    *,
    owners: list[str] | None = None,
    ip: list[str] | None = None,
) -> EgressPlan:
    """Build a ``via`` grant for *src* through exit nodes (or routers) tagged *via*.

    *dst* defaults to ``autogroup:internet`` (exit-node traffic); CIDRs, hosts or app-connector tags route
    those destinations through the tagged routers instead. Raises :class:`UsageError` for malformed values.
    """
    sources = _split(src)
    routers = _split(via)
    targets = _split(dst) or [INTERNET]
    owner_list = _split(owners) or ["autogroup:admin"]
    caps = _split(ip) or ["*"]
    if not sources:
        raise UsageError("give --src: who the rule is for (users, group:..., tag:..., autogroup:member, *)")
    if not routers:
        raise UsageError("give --via tag:...: the exit nodes (or subnet routers) the traffic must go through")
    for s in sources:
        k = kind(s)
        if s == INTERNET or s == "autogroup:self":
            raise UsageError(f"--src {s}: not valid as a source")
        if k == "tag" and (err := check_tag_name(s)):
            raise UsageError(f"--src {s}: {err}")
    for v in routers:
        if kind(v) != "tag":
            raise UsageError(f"--via {v}: via can only be a tag (tag:NAME), the tag of the exit nodes")
        if err := check_tag_name(v):
            raise UsageError(f"--via {v}: {err}")
    for d in targets:
        if d in ("0.0.0.0/0", "::/0"):
            raise UsageError(
                f"--dst {d}: to send all internet traffic through --via, leave --dst out (it defaults to {INTERNET})"
            )
        if d in ("autogroup:self", "autogroup:danger-all"):
            raise UsageError(f"--dst {d}: not valid as a destination of a via grant")
        if kind(d) == "tag" and (err := check_tag_name(d)):
            raise UsageError(f"--dst {d}: {err}")
        if ":" in d and kind(d) == "host" and not is_address(d):
            raise UsageError(f"--dst {d}: a destination is a selector or CIDR without a port; use --ip for ports")
        if kind(d) == "host" and (_NUMERIC.fullmatch(d) or "/" in d):
            raise UsageError(f"--dst {d}: not a valid IP address or CIDR prefix (examples: 10.0.0.0/8, fd7a::/48)")
    for c in caps:
        parsed = parse_proto_port_range(c)
        if isinstance(parsed, str):
            raise UsageError(f"--ip {c}: {parsed} (forms: *, 443, 8000-8100, tcp:443, udp:*, *:8096)")
    for o in owner_list:
        if kind(o) not in ("user", "group", "autogroup", "tag"):
            raise UsageError(f"--owner {o}: a tag owner is a user, group:..., tag:... or autogroup:...")
    grant: dict[str, Any] = {"src": sources, "dst": targets, "ip": caps, "via": routers}
    tags = [t for t in [*sources, *routers, *targets] if kind(t) == "tag"]
    tag_owners = {t: list(owner_list) for t in dict.fromkeys(tags)}
    internet = targets == [INTERNET]
    who = ", ".join(sources)
    through = " or ".join(routers)
    if internet:
        comment = [
            f"Geofenced egress: internet traffic of {who} leaves only through exit nodes tagged {through}.",
            "Those nodes must advertise as exit nodes (approve them, or list the tags in autoApprovers.exitNode),",
            "and clients must use one of them as exit node (e.g. the suggested one, or set by MDM).",
        ]
    else:
        comment = [
            f"Routed access: {who} reach {', '.join(targets)} only through routers tagged {through}",
            "(subnet routers or app connectors advertising these destinations).",
        ]
    notes = []
    if any(kind(s) == "group" for s in sources):
        notes.append("groups in --src must be defined in the policy's groups section")
    return EgressPlan(grant, tag_owners, comment, notes)


def grant_hujson(grant: dict[str, Any]) -> str:
    """One grant on one line: ``{"src": [...], "dst": [...], "ip": ["*"], "via": [...]}``."""
    parts = [f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in grant.items()]
    return "{" + ", ".join(parts) + "}"


def render_egress_json(plan: EgressPlan) -> str:
    """The fragment as plain JSON text (newline-terminated)."""
    return json.dumps(plan.fragment(), indent=2, ensure_ascii=False) + "\n"


def render_egress_hujson(plan: EgressPlan, *, header: list[str] | None = None) -> str:
    """The fragment as HuJSON: ``tagOwners`` and the grant, with comments explaining the rule."""
    lines = [f"// {h}" if h else "//" for h in header or []]
    lines += ["{"]
    if plan.tag_owners:
        lines.append("\t// Tags must have owners: who may apply them to devices.")
        lines.append('\t"tagOwners": {')
        for tag, owners in plan.tag_owners.items():
            lines.append(f"\t\t{json.dumps(tag)}: {json.dumps(owners, ensure_ascii=False)},")
        lines += ["\t},", ""]
    lines.append('\t"grants": [')
    lines += [f"\t\t// {c}" for c in plan.comment]
    lines.append(f"\t\t{grant_hujson(plan.grant)},")
    lines += ["\t],", "}"]
    text = "\n".join(lines) + "\n"

    fmt = getattr(hujson, "format", None)
    return text if fmt is None else bytes(fmt(text.encode())).decode()


# -- applying to a policy file ----------------------------------------------------------------------


def _grant_key(grant: Any) -> Any:
    if not isinstance(grant, dict):
        return grant
    return {str(k).lower(): v for k, v in grant.items()}


def apply_grants(src: bytes | Document, plan: EgressPlan, *, file: str = "<policy>") -> ApplyResult:
    """Append the plan's grant (unless present) and the ``tagOwners`` entries missing from the policy.

    *src* is the policy's bytes or the :class:`Document` already opened on them (then *file* is its own).
    """
    doc = src if isinstance(src, Document) else Document.open(src, file)
    file = doc.file
    unit = doc.indent
    done: list[str] = []
    notes: list[str] = []
    owners = doc.get("tagOwners")
    if owners is not None and not owners.is_object:
        raise ApplyError(f'{file}: "{owners.name}" must be an object of tag: [owners], it is not')
    grants = doc.get("grants")
    if grants is not None and not grants.is_array:
        raise ApplyError(f'{file}: "{grants.name}" must be an array of grants, it is not')
    present = set(owners.names()) if owners is not None else set()
    missing = {t: o for t, o in plan.tag_owners.items() if t not in present}
    if missing:
        if owners is None:
            members = [(t, json.dumps(o, ensure_ascii=False), None) for t, o in missing.items()]
            doc.add(
                ("tagOwners",),
                doc.object_text(members, 1),
                lead=["Tags must have owners: who may apply them to devices."],
            )
        else:
            for tag, who in missing.items():
                doc.add((*owners.path, tag), json.dumps(who, ensure_ascii=False))
        done.append(f"tagOwners: {', '.join(missing)} added")
    wanted = _grant_key(plan.grant)
    if grants is None:
        inner = unit * 2
        lines = ["["] + [f"{inner}// {c}" for c in plan.comment] + [f"{inner}{grant_hujson(plan.grant)},", unit + "]"]
        doc.add(("grants",), "\n".join(lines))
        done.append("grants: 1 grant added")
    elif any(_grant_key(g) == wanted for g in grants.data() or []):
        pass
    else:
        doc.add((*grants.path, "-"), grant_hujson(plan.grant), lead=plan.comment)
        done.append("grants: 1 grant added")
    groups = doc.get("groups")
    defined = set(groups.data() or {}) if groups is not None and groups.is_object else set()
    undefined = [s for s in plan.grant["src"] if s.startswith("group:") and s not in defined]
    if undefined:
        notes.append(f"{', '.join(undefined)} not defined in {file}'s groups section; define before using")
    summary = f"{file}: " + "; ".join(done)
    return doc.finish(
        summary=summary, notes=notes, unchanged=f"{file}: already up to date (the grant and its tags are there)"
    )
