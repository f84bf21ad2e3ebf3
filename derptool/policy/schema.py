"""JSON Schemas (draft 2020-12) and the committed policy shape, generated from the models, with deterministic output.

The models give the structure; :func:`_tighten` adds what ``derptool validate`` checks and JSON Schema can say
(the actions, name patterns of groups, tags, postures, ipsets and attributes, the grammar of grant ``ip``
entries and of ``checkPeriod``, ...), and :func:`_any_case` lets every member name be written in any letter
case, as Tailscale's server reads it (Go's ``encoding/json``), so an editor never flags a file Tailscale accepts.
What needs the whole policy (declared tags and groups, tests) or numbers (port ranges, durations up to 168h)
stays with ``validate``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel

from derptool.derpmap._validation import DERPMap
from derptool.policy.models import Policy
from derptool.policy.selectors import IP_PROTOCOL_NAMES
from derptool.policy.shape import POLICY_SPEC_FILE, model_spec, spec_data

DIALECT = "https://json-schema.org/draft/2020-12/schema"
PROJECT_URL = "https://github.com/derptool/derptool"
SCHEMA_BASE = "https://raw.githubusercontent.com/derptool/derptool/main/schemas/"
"""Where each schema's ``$id`` points: the committed ``schemas/`` folder of the repository's main branch,
served as the file itself (``derptool schema --out DIR`` writes the same files from an installed copy)."""


def _schema(model: type[BaseModel], *, title: str, description: str, file: str) -> dict[str, Any]:
    body = model.model_json_schema(by_alias=True, mode="validation")
    body.pop("title", None)
    body.pop("description", None)
    out: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": SCHEMA_BASE + file,
        "title": title,
        "description": description,
    }
    out.update(body)
    return out


def policy_json_schema() -> dict[str, Any]:
    """The schema of a tailnet policy file (``policy.hujson``; editors read HuJSON as JSONC)."""
    return _any_case(
        _tighten(
            _schema(
                Policy,
                title="Tailscale policy file",
                description="Tailnet policy file (policy.hujson) as Tailscale's control plane accepts it. Member names "
                "are matched case-insensitively by the server; the schema lists the documented spelling. Semantic "
                "rules (selectors, ports, declared tags) are checked by `derptool validate`.",
                file="policy.schema.json",
            )
        )
    )


def derpmap_json_schema() -> dict[str, Any]:
    """The schema of a DERP map (``tailcfg.DERPMap``), as served or as a policy ``derpMap``."""
    return _any_case(
        _schema(
            DERPMap,
            title="Tailscale DERP map",
            description="DERP map with tailcfg names (tailcfg.DERPMap). In a policy file's derpMap a region may be "
            "null to remove it from the default map.",
            file="derpmap.schema.json",
        )
    )


# -- what validate checks and JSON Schema can say -------------------------------------------------------

_WS = r"\s*"


_META = re.compile(r"([.^$*+?()\[\]{}|\\/])")


def _ci(word: str, *, fold: bool = True) -> str:
    """A regular expression (ECMA-262, also in Unicode mode) for *word* in any letter case: as Go's
    ``strings.EqualFold`` compares member names (*fold*: the Kelvin sign also matches k, the long s matches s),
    or as ``strings.ToLower`` before a lookup (the Kelvin sign only)."""
    extra = {"k": "\u212a", "s": "\u017f"} if fold else {"k": "\u212a"}
    out = []
    for ch in word:
        if ch.isalpha():
            out.append(f"[{ch.lower()}{ch.upper()}{extra.get(ch.lower(), '')}]")
        else:
            out.append(_META.sub(r"\\\1", ch))
    return "".join(out)


def _grant_ip_pattern() -> str:
    """``*``, ``PORTS`` or ``PROTO:PORTS`` (see :func:`~derptool.policy.selectors.parse_proto_port_range`)."""
    names = "|".join(_ci(n, fold=False) for n in sorted(IP_PROTOCOL_NAMES, key=lambda n: (-len(n), n)))
    ports = r"0*[1-9][0-9]*(-[0-9]+)?"
    return rf"^{_WS}(\*|{ports}|(\*|[0-9]+|{names}):(\*|{ports})){_WS}$"


_DURATION = r"^(always|[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+))$"


def _tighten(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the constraints of ``derptool validate`` that JSON Schema can express (strings only: ``null``, which
    Go reads as the zero value, stays allowed everywhere)."""
    defs = schema["$defs"]
    props = schema["properties"]

    def string(where: dict[str, Any], **keywords: Any) -> None:
        where.update(keywords)

    def items(where: dict[str, Any], **keywords: Any) -> None:
        array = next(b for b in where["anyOf"] if b.get("type") == "array")
        array["items"].update(keywords)

    def names(where: dict[str, Any], pattern: str) -> None:
        where["propertyNames"] = {"pattern": pattern}

    string(defs["ACL"]["properties"]["action"], pattern=rf"^{_WS}accept{_WS}$", examples=["accept"])
    ssh = defs["SSHRule"]["properties"]
    string(ssh["action"], pattern=rf"^{_WS}(accept|check){_WS}$", examples=["accept", "check"])
    string(ssh["checkPeriod"], pattern=_DURATION, examples=["12h", "always"])
    items(ssh["users"], pattern=r"^(?!\s*\*?\s*$)")
    items(ssh["acceptEnv"], minLength=1)
    items(ssh["recorder"], pattern=r"^tag:")
    grant = defs["Grant"]["properties"]
    items(grant["ip"], pattern=_grant_ip_pattern())
    items(grant["via"], pattern=rf"^{_WS}tag:")
    names(props["groups"], r"^group:[\s\S]")
    names(props["tagOwners"], r"^tag:[A-Za-z][A-Za-z0-9-]*$")
    names(props["postures"], r"^posture:[\s\S]")
    names(props["ipsets"], r"^ipset:[\s\S]")
    names(props["attrConfig"], r"^custom:[\s\S]")
    names(props["hosts"], r"^(?=[\s\S]*\S)[^@]*$")
    names(defs["AutoApprovers"]["properties"]["services"], r"^(svc|tag):")
    string(defs["AttrConfig"]["properties"]["type"], enum=["string", "bool", "number", None])
    string(props["OneCGNATRoute"], enum=["", "mac-always", "mac-never", None])
    string(defs["DNSRecord"]["properties"]["Name"], minLength=1)
    # VS Code's own keywords (other tools ignore them): HuJSON has comments and trailing commas
    schema["allowComments"] = schema["allowTrailingCommas"] = True
    return schema


def _any_case(schema: dict[str, Any]) -> dict[str, Any]:
    """Let each member of a closed object (``additionalProperties: false``) be spelled in any letter case: the
    documented spelling stays in ``properties`` (for completion and hover), every other spelling matches a
    ``patternProperties`` entry that refers to the same schema."""

    def close(obj: dict[str, Any], pointer: str) -> None:
        if obj.get("additionalProperties") is False and "properties" in obj:
            obj["patternProperties"] = {
                f"^{_ci(name)}$": {"$ref": f"{pointer}/properties/{name.replace('~', '~0').replace('/', '~1')}"}
                for name in obj["properties"]
            }

    close(schema, "#")
    for name, definition in schema.get("$defs", {}).items():
        close(definition, f"#/$defs/{name}")
    return schema


def dumps(schema: dict[str, Any]) -> str:
    """Stable text of a schema: sorted keys, two-space indent, final newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_files() -> dict[str, str]:
    """File name to text for every schema derptool publishes."""
    return {
        "policy.schema.json": dumps(policy_json_schema()),
        "derpmap.schema.json": dumps(derpmap_json_schema()),
    }


def policy_spec_text() -> str:
    """The text of ``derptool/data/policy-shape.json``: the policy's shape spec, read by
    :func:`~derptool.policy.shape.policy_spec` without building the models."""
    return json.dumps(spec_data(model_spec(Policy)), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m derptool.policy.schema: rewrite derptool/data/policy-shape.json
    POLICY_SPEC_FILE.write_text(policy_spec_text(), encoding="utf-8")
