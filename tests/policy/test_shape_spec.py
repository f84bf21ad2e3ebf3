"""The committed policy shape (derptool/data/policy-shape.json) is the one the models give, and the engine
canonicalises policy data with it exactly as validate does."""

from __future__ import annotations

import json

from derptool.policy.engine.source import parse_policy
from derptool.policy.models import Policy
from derptool.policy.schema import policy_spec_text
from derptool.policy.shape import POLICY_SPEC_FILE, check_shape, model_spec, policy_spec, spec_from_data


def test_committed_policy_shape_is_up_to_date() -> None:
    committed = POLICY_SPEC_FILE.read_text(encoding="utf-8")
    assert committed == policy_spec_text(), f"{POLICY_SPEC_FILE} is stale: run 'python -m derptool.policy.schema'"
    assert policy_spec() == model_spec(Policy)


def test_spec_data_round_trips() -> None:
    spec = model_spec(Policy)
    assert spec_from_data(json.loads(policy_spec_text())) == spec


def test_engine_reads_the_canonical_data_validate_checks() -> None:
    src = {
        "ACLs": [
            {
                "Action": "accept",
                "SRC": ["group:Dev"],
                "Dst": ["tag:web:443"],
                "proto": None,
                "SrcPosture": ["posture:x"],
            }
        ],
        "Groups": {"group:Dev": ["alice@example.com"]},
        "TagOwners": {"tag:web": ["group:Dev"]},
        "SSH": [{"action": "check", "src": ["group:Dev"], "dst": ["tag:web"], "Users": ["root"], "CheckPeriod": "1h"}],
        "Tests": [{"Src": "alice@example.com", "Accept": ["tag:web:443"]}],
    }
    source = parse_policy(json.dumps(src).encode())
    canonical, shape = check_shape(src, Policy)
    assert source.data == canonical
    assert source.data["acls"] == [
        {"action": "accept", "src": ["group:Dev"], "dst": ["tag:web:443"], "srcPosture": ["posture:x"]}
    ]
    assert set(source.data["groups"]) == {"group:Dev"}  # names chosen by the author keep their spelling
    assert source.data["ssh"][0]["checkPeriod"] == "1h"
    assert source.originals[("acls", 0)] == ("ACLs", 0)
    assert source.originals[("tests", 0)] == ("Tests", 0)
    assert shape.findings == []


def test_canonical_data_shares_what_needs_no_change_and_never_edits_the_input() -> None:
    """A large policy is not held twice: parts already canonical are the input's own objects; a part with
    a renamed key, a null to drop or a number to convert is a new object, and the input stays as decoded."""
    import copy

    from derptool.policy.validate import decode

    data = decode(
        b'{"groups": {"group:a": ["a@example.com"]}, "hosts": {"h": "10.0.0.1"},'
        b' "acls": [{"action": "accept", "src": ["group:a"], "dst": ["h:22"]},'
        b' {"Action": "accept", "src": ["*"], "dst": ["*:*"], "proto": null}],'
        b' "derpMap": {"Regions": {"900": {"RegionID": 900.0, "Nodes": []}}}}'
    )
    before = copy.deepcopy(data)
    canonical, shape = check_shape(data, policy_spec())
    assert data == before
    assert canonical["groups"] is data["groups"] and canonical["hosts"] is data["hosts"]
    assert canonical["acls"][0] is data["acls"][0]
    renamed = canonical["acls"][1]
    assert renamed is not data["acls"][1] and renamed == {"action": "accept", "src": ["*"], "dst": ["*:*"]}
    assert renamed["src"] is data["acls"][1]["src"]  # the unchanged list inside is still shared
    region = canonical["derpMap"]["Regions"][900]
    assert region["RegionID"] == 900 and type(region["RegionID"]) is int
    assert shape.original_path(("acls", 1, "action")) == ("acls", 1, "Action")


def test_a_duplicate_key_is_still_found_in_an_object_decoded_as_a_plain_dict() -> None:
    from derptool.policy import validate_bytes

    problems = validate_bytes(b'{"hosts": {"h": "10.0.0.1", "h": "10.0.0.2"}, "acls": []}')
    assert [p.message for p in problems] == ['duplicate key "h": only the last value counts']
