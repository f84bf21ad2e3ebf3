"""The JSON Schemas: generated from the models, committed in schemas/, and kept fresh."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from derptool.policy import validate_bytes
from derptool.policy.schema import DIALECT, derpmap_json_schema, policy_json_schema, schema_files
from tests.policy.test_grant_ip import ACCEPTED, REJECTED
from tests.support.repo import EXAMPLES, REPO

SCHEMAS = REPO / "schemas"


def test_committed_schemas_are_up_to_date() -> None:
    for name, text in schema_files().items():
        committed = (SCHEMAS / name).read_text(encoding="utf-8")
        assert committed == text, f"schemas/{name} is stale: run 'derptool schema --out schemas'"


def test_generation_is_deterministic() -> None:
    assert schema_files() == schema_files()


def test_policy_schema_shape() -> None:
    schema = policy_json_schema()
    assert schema["$schema"] == DIALECT == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "Tailscale policy file"
    assert schema["description"]
    props = schema["properties"]
    for section in (
        "acls",
        "grants",
        "ssh",
        "groups",
        "hosts",
        "tagOwners",
        "autoApprovers",
        "nodeAttrs",
        "postures",
        "defaultSrcPosture",
        "ipsets",
        "tests",
        "sshTests",
        "derpMap",
        "disableIPv4",
        "OneCGNATRoute",
        "randomizeClientPort",
        "attrConfig",
    ):
        assert section in props, section
        assert props[section].get("description"), section
    assert schema["additionalProperties"] is False
    assert "checkPeriod" in schema["$defs"]["SSHRule"]["properties"]


def test_derpmap_schema_shape() -> None:
    schema = derpmap_json_schema()
    assert schema["$schema"] == DIALECT
    assert schema["title"] == "Tailscale DERP map"
    assert {"Regions", "HomeParams", "omitDefaultRegions"} <= set(schema["properties"])
    node = schema["$defs"]["DERPNode"]["properties"]
    assert {"Name", "RegionID", "HostName", "IPv4", "IPv6", "STUNPort", "DERPPort"} <= set(node)
    assert all(v.get("description") for v in node.values())


def test_examples_match_the_policy_schema() -> None:
    """A light structural check of the examples against the schema (names of members at each level)."""
    from derptool import hujson

    schema = policy_json_schema()
    examples = sorted(EXAMPLES.glob("*.hujson"))
    assert len(examples) >= 3
    for path in examples:
        data = hujson.loads(path.read_bytes())
        assert set(data) <= set(schema["properties"]), path.name
    json.dumps(schema)  # serialisable


# -- the schema as strict as validate where JSON Schema can say it, never stricter ---------


def _schema_errors(data: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(policy_json_schema())
    return [e.message for e in validator.iter_errors(data)]


def _validate_errors(data: Any) -> list[str]:
    return [p.message for p in validate_bytes(json.dumps(data).encode(), "p") if p.severity == "error"]


def test_the_policy_schema_is_a_valid_2020_12_schema() -> None:
    """Every regular expression compiles and the schema follows its meta-schema."""
    jsonschema.Draft202012Validator.check_schema(policy_json_schema())
    jsonschema.Draft202012Validator.check_schema(derpmap_json_schema())


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.hujson")), ids=lambda p: p.name)
def test_examples_pass_the_schema(path: Path) -> None:
    """The example policies (valid for validate) are valid for the schema."""
    from derptool import hujson

    assert _schema_errors(hujson.loads(path.read_bytes())) == []


RULE = {"src": ["*"], "dst": ["*"], "ip": ["*"]}
SSH = {"action": "check", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot"]}

# Policies validate rejects, with what the schema can say about them: both must reject each.
REJECTED_BY_BOTH: list[tuple[str, dict[str, Any]]] = [
    ("acl action", {"acls": [{"action": "deny", "src": ["*"], "dst": ["*:*"]}]}),
    ("ssh action", {"ssh": [{**SSH, "action": "allow"}]}),
    ("checkPeriod", {"ssh": [{**SSH, "checkPeriod": "5 minutes"}]}),
    ("ssh user *", {"ssh": [{**SSH, "users": ["*"]}]}),
    ("acceptEnv empty", {"ssh": [{**SSH, "acceptEnv": [""]}]}),
    ("recorder not a tag", {"ssh": [{**SSH, "recorder": ["group:x"]}]}),
    ("grant ip port 0", {"grants": [{**RULE, "ip": ["tcp:0"]}]}),
    ("grant ip icmp alone", {"grants": [{**RULE, "ip": ["icmp"]}]}),
    ("grant ip port list", {"grants": [{**RULE, "ip": ["80,443"]}]}),
    ("grant ip named port", {"grants": [{**RULE, "ip": ["tcp:ssh"]}]}),
    ("grant ip unknown proto", {"grants": [{**RULE, "ip": ["http:80"]}]}),
    ("grant ip empty proto", {"grants": [{**RULE, "ip": [":80"]}]}),
    ("via not a tag", {"grants": [{**RULE, "dst": ["10.0.0.0/8"], "via": ["group:x"]}]}),
    ("group name", {"groups": {"eng": ["a@example.com"]}}),
    ("group name empty", {"groups": {"group:": ["a@example.com"]}}),
    ("tag name", {"tagOwners": {"tag:1x": []}}),
    ("tag name characters", {"tagOwners": {"tag:a_b": []}}),
    ("posture name", {"postures": {"latest": ["node:tsVersion >= '1.60'"]}}),
    ("ipset name", {"ipsets": {"prod": ["add 10.0.0.0/8"]}}),
    ("attribute name", {"attrConfig": {"team": {"type": "string"}}}),
    ("attribute type", {"attrConfig": {"custom:team": {"type": "int"}}}),
    ("host name with @", {"hosts": {"a@b": "10.0.0.1"}}),
    ("service approver", {"autoApprovers": {"services": {"web": ["tag:x"]}}, "tagOwners": {"tag:x": []}}),
    ("OneCGNATRoute", {"OneCGNATRoute": "always"}),
    ("DNS record name", {"extraDNSRecords": [{"Name": "", "Value": "100.64.0.1"}]}),
    ("unknown key", {"acls": [], "$schema": "./schemas/policy.schema.json"}),
]


@pytest.mark.parametrize(("case", "policy"), REJECTED_BY_BOTH, ids=[c for c, _ in REJECTED_BY_BOTH])
def test_schema_rejects_what_validate_rejects(case: str, policy: dict[str, Any]) -> None:
    """Enums (actions, attribute types, OneCGNATRoute), name patterns (groups, tags, postures, ipsets,
    custom attributes, hosts, services), the grant ip grammar and closed objects, as validate checks them."""
    assert _validate_errors(policy), f"{case}: validate accepts it"
    assert _schema_errors(policy), f"{case}: the schema accepts what validate rejects"


# Policies validate accepts: the schema must accept each (it is never stricter than Tailscale).
ACCEPTED_BY_BOTH: list[tuple[str, dict[str, Any]]] = [
    (
        "keys in any case",
        {
            "ACLs": [{"Action": "accept", "SRC": ["*"], "Dst": ["*:*"]}],
            "TagOwners": {"tag:x": []},
            "DERPMap": {"regions": {"7": None}},
            "Grants": [{"Src": ["*"], "DST": ["*"], "IP": ["*"]}],
        },
    ),
    ("action with spaces", {"acls": [{"action": " accept ", "src": ["*"], "dst": ["*:*"]}]}),
    ("ssh accept", {"ssh": [{**SSH, "action": "accept"}]}),
    (
        "checkPeriod forms",
        {
            "ssh": [
                {**SSH, "checkPeriod": "always"},
                {**SSH, "checkPeriod": "1h30m"},
                {**SSH, "checkPeriod": "90m"},
                {**SSH, "checkPeriod": "0.5h"},
            ]
        },
    ),
    (
        "grant ip forms",
        {
            "grants": [
                {
                    **RULE,
                    "ip": [
                        "*:8096",
                        "0:*",
                        "47",
                        "TCP:80-90",
                        "icmpv6:*",
                        "6:22",
                        "Udp:*",
                        " tcp:443 ",
                        "080",
                        "255:*",
                        "*:*",
                    ],
                }
            ]
        },
    ),
    (
        "nulls",
        {
            "acls": None,
            "grants": [{**RULE, "via": None}],
            "OneCGNATRoute": None,
            "attrConfig": {"custom:x": {"type": None}},
        },
    ),
    (
        "names",
        {
            "groups": {"group:eng": []},
            "tagOwners": {"tag:Web-1": []},
            "postures": {"posture:x": []},
            "ipsets": {"ipset:x": ["add 10.0.0.0/8"]},
            "attrConfig": {"custom:x": {"type": "bool"}},
            "hosts": {"db": "10.0.0.1"},
            "OneCGNATRoute": "mac-never",
        },
    ),
]


@pytest.mark.parametrize(("case", "policy"), ACCEPTED_BY_BOTH, ids=[c for c, _ in ACCEPTED_BY_BOTH])
def test_schema_accepts_what_validate_accepts(case: str, policy: dict[str, Any]) -> None:
    """Member names in any letter case (as Go reads them), stripped actions, every grant ip form and
    null are not flagged by an editor when validate (and Tailscale) take them."""
    assert _validate_errors(policy) == [], case
    assert _schema_errors(copy.deepcopy(policy)) == [], case


def test_grant_ip_pattern_agrees_with_the_parser_on_forms() -> None:
    """The schema's grant ip pattern accepts every form the parser accepts; it rejects every form the
    parser rejects for its shape (what it leaves to validate: numbers out of range, ranges backwards)."""
    pattern = policy_json_schema()["$defs"]["Grant"]["properties"]["ip"]["anyOf"][0]["items"]["pattern"]
    for entry, _ in ACCEPTED:
        assert re.search(pattern, entry), entry
    numeric = ("65536", "256", "90-80", "-1")  # out of range or backwards: validate's job
    for entry, _ in REJECTED:
        if not any(n in entry for n in numeric):
            assert not re.search(pattern, entry), entry


def test_readme_tells_how_editors_find_the_schema() -> None:
    """No ``$schema`` key in a policy (Tailscale rejects unknown keys): the README maps files to the
    schema in VS Code and JetBrains, and says what the schema cannot check."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert '"json.schemas"' in readme and '"fileMatch"' in readme
    assert "JSON Schema Mappings" in readme
    assert "cannot" in readme[readme.index('"json.schemas"') :][:3000]
