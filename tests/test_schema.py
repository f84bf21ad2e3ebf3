"""The JSON Schemas: generated from the models, committed in schemas/, and kept fresh."""

from __future__ import annotations

import json
from pathlib import Path

from derptool.policy.schema import DIALECT, derpmap_json_schema, policy_json_schema, schema_files

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


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
    for section in ("acls", "grants", "ssh", "groups", "hosts", "tagOwners", "autoApprovers", "nodeAttrs",
                    "postures", "defaultSrcPosture", "ipsets", "tests", "sshTests", "derpMap", "disableIPv4",
                    "OneCGNATRoute", "randomizeClientPort", "attrConfig"):
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
    examples = Path(__file__).resolve().parent.parent / "examples" / "policies"
    for path in examples.glob("*.hujson"):
        data = hujson.loads(path.read_bytes())
        assert set(data) <= set(schema["properties"]), path.name
    json.dumps(schema)  # serialisable
